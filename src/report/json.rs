//! `--format json`: one JSON document per run, for machines.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::Report;
use crate::finding::Findings;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut doc = json!({
        "version": 1,
        "command": report.command,
        "status": report.status(),
        "exit_code": report.exit_code(),
        "findings": findings(report.findings),
        "summary": summary(report.current()),
    });
    if let Some(plan) = &report.plan {
        doc["plan"] = json!(plan);
    }
    if report.healed {
        doc["actions"] = json!(report.actions);
        doc["after"] = findings(report.current());
    }
    write_doc(&doc, out)
}

/// A run that could not happen (bad manifest, I/O error) still answers in JSON.
pub fn render_error(command: &str, message: &str, out: &mut dyn Write) -> io::Result<()> {
    let doc = json!({"version": 1, "command": command, "status": "critical", "exit_code": 1, "error": message, "findings": []});
    write_doc(&doc, out)
}

fn write_doc(doc: &Value, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, doc)?;
    writeln!(out)
}

fn findings(findings: &Findings) -> Value {
    findings
        .problems
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "area": f.area,
                "severity": f.severity,
                "message": f.message,
                "fixable": f.fixable(),
            })
        })
        .collect()
}

fn summary(findings: &Findings) -> Value {
    use crate::finding::Severity::*;
    json!({"critical": findings.count(Critical), "warning": findings.count(Warning), "ok": findings.passed.len()})
}
