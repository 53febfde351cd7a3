//! `preflight history`: runs newest first, or per-finding statistics, as
//! text or JSON.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::json;

use crate::safety::history::{Run, Stat};

/// Prints the runs.
pub fn runs(runs: &[Run], json: bool, out: &mut dyn Write) -> io::Result<()> {
    if json {
        return writeln!(out, "{}", pretty(&json!({"version": 1, "runs": runs})));
    }
    print_runs(runs, out)
}

/// Prints the statistics per finding ID.
pub fn stats(stats: &BTreeMap<&str, Stat>, json: bool, out: &mut dyn Write) -> io::Result<()> {
    if json {
        let rows: Vec<_> = stats.iter().map(|(id, s)| json!({"id": id, "found": s.found, "healed": s.healed, "failed": s.failed, "tripped": s.tripped, "last": s.last})).collect();
        return writeln!(out, "{}", pretty(&json!({"version": 1, "stats": rows})));
    }
    print_stats(stats, out)
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn print_runs(runs: &[Run], out: &mut dyn Write) -> io::Result<()> {
    if runs.is_empty() {
        writeln!(out, "no heal run recorded yet")?;
    }
    for run in runs {
        let what = run.rollback_of.map(|r| format!(" (rollback of {r})")).unwrap_or_default();
        writeln!(out, "run {}  {}{what}", run.run, run.time)?;
        for entry in &run.actions {
            let detail = if entry.detail.is_empty() { String::new() } else { format!(": {}", entry.detail) };
            writeln!(out, "  {:<7} {}  {}{detail}", entry.outcome.as_str(), super::escape(&entry.id), entry.action)?;
            for saved in &entry.saved {
                writeln!(out, "          kept {}", saved.display())?;
            }
        }
    }
    Ok(())
}

fn print_stats(stats: &BTreeMap<&str, Stat>, out: &mut dyn Write) -> io::Result<()> {
    if stats.is_empty() {
        writeln!(out, "no heal run recorded yet")?;
        return Ok(());
    }
    let width = stats.keys().map(|k| k.chars().count()).max().unwrap_or(2).clamp(2, 48);
    writeln!(out, "{:<width$}  found  healed  failed  tripped  last", "id")?;
    let mut rows: Vec<_> = stats.iter().collect();
    // The recurring problems first.
    rows.sort_by(|a, b| b.1.found.cmp(&a.1.found).then(a.0.cmp(b.0)));
    for (id, s) in rows {
        writeln!(out, "{id:<width$}  {:>5}  {:>6}  {:>6}  {:>7}  {}", s.found, s.healed, s.failed, s.tripped, s.last)?;
    }
    Ok(())
}
