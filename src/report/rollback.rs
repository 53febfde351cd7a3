//! `preflight rollback`: what was undone, or why nothing was.

use std::io::{self, Write};

use serde_json::json;

use crate::safety::rollback::Rollback;
use crate::safety::Outcome;

/// Prints the rollback's result; `json` for machines.
pub fn render(result: &Rollback, json: bool, out: &mut dyn Write) -> io::Result<()> {
    let code = u8::from(result.failed());
    let target = &result.target;
    if json {
        let doc = json!({
            "version": 1, "command": "rollback", "status": if code == 0 { "ok" } else { "critical" },
            "exit_code": code, "rollback_of": target, "run": result.run, "actions": result.done,
            "refused": result.refused, "left_as_is": result.left, "restored_with": result.restored_with,
        });
        return writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    if !result.refused.is_empty() {
        writeln!(out, "rollback of run {target} refused, nothing was changed:")?;
        for reason in &result.refused {
            writeln!(out, "  {}", super::escape(reason))?;
        }
        return Ok(());
    }
    for entry in &result.done {
        let detail = if entry.detail.is_empty() { String::new() } else { format!(" ({})", entry.detail) };
        writeln!(
            out,
            "  {:<7} {}  {}{}",
            entry.outcome.as_str(),
            super::escape(&entry.id),
            super::escape(&entry.action),
            super::escape(&detail)
        )?;
    }
    if result.run.is_some() {
        for note in &result.restored_with {
            writeln!(out, "  undone  {}", super::escape(note))?;
        }
    }
    for note in &result.left {
        writeln!(out, "  left    {}", super::escape(note))?;
    }
    let what = if result.done.is_empty() {
        "nothing recorded to undo"
    } else if result.done.iter().any(|e| e.outcome != Outcome::Done) {
        "some steps failed"
    } else {
        "done"
    };
    writeln!(out, "rollback of run {target}: {what}")
}
