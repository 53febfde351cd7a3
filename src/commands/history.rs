//! `preflight history`: the persisted log of heal runs, newest first, as
//! text or JSON; `--stats` counts, per finding ID, how often it was found,
//! healed and failed, to show an installation's recurring problems.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;
use preflight::heal::history::{self, Entry};
use serde::Serialize;
use serde_json::json;

use super::root_only;
use crate::cli::{Cli, Format};

/// The entries of one run, in the order they were written.
#[derive(Debug, Serialize)]
pub struct Run<'a> {
    pub run: &'a str,
    pub time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<&'a str>,
    pub actions: Vec<&'a Entry>,
}

/// Groups entries by run, newest run first.
pub fn runs(entries: &[Entry]) -> Vec<Run<'_>> {
    let mut runs: Vec<Run> = Vec::new();
    for entry in entries {
        match runs.iter_mut().find(|r| r.run == entry.run) {
            Some(run) => run.actions.push(entry),
            None => runs.push(Run {
                run: &entry.run,
                time: &entry.time,
                rollback_of: entry.rollback_of.as_deref(),
                actions: vec![entry],
            }),
        }
    }
    runs.reverse();
    runs
}

/// How one finding ID fared across the history.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Heal runs that acted on it (a finding nobody could fix is not logged).
    pub found: usize,
    pub healed: usize,
    pub failed: usize,
    /// Times `watch`'s circuit breaker stopped healing it.
    pub tripped: usize,
    pub last: String,
}

/// Per finding ID, rollbacks left out.
pub fn stats(entries: &[Entry]) -> BTreeMap<&str, Stat> {
    let mut stats: BTreeMap<&str, Stat> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.rollback_of.is_none()) {
        let stat = stats.entry(entry.id.as_str()).or_default();
        stat.found += 1;
        match entry.outcome.as_str() {
            "done" => stat.healed += 1,
            "failed" => stat.failed += 1,
            "tripped" => stat.tripped += 1,
            _ => {}
        }
        stat.last.clone_from(&entry.time);
    }
    stats
}

pub fn history(cli: &Cli, only_run: Option<&str>, json: bool, want_stats: bool) -> anyhow::Result<u8> {
    let root = root_only(cli)?;
    let entries = history::read(&root)?;
    let json = json || cli.format == Format::Json;
    let mut out = anstream::stdout();
    if want_stats {
        let stats = stats(&entries);
        if json {
            let rows: Vec<_> = stats
                .iter()
                .map(|(id, s)| {
                    json!({"id": id, "found": s.found, "healed": s.healed, "failed": s.failed, "tripped": s.tripped, "last": s.last})
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&json!({"version": 1, "stats": rows}))?)?;
        } else {
            print_stats(&stats, &mut out)?;
        }
        return Ok(0);
    }
    let mut runs = runs(&entries);
    if let Some(id) = only_run {
        runs.retain(|r| r.run == id);
        if runs.is_empty() {
            bail!("no run {id} in {}; `preflight history` lists the runs", history::path(&root).display());
        }
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&json!({"version": 1, "runs": runs}))?)?;
    } else {
        print_runs(&runs, &mut out)?;
    }
    Ok(0)
}

fn print_runs(runs: &[Run], out: &mut dyn Write) -> anyhow::Result<()> {
    if runs.is_empty() {
        writeln!(out, "no heal run recorded yet")?;
    }
    for run in runs {
        let what = run.rollback_of.map(|r| format!(" (rollback of {r})")).unwrap_or_default();
        writeln!(out, "run {}  {}{what}", run.run, run.time)?;
        for entry in &run.actions {
            let detail = if entry.detail.is_empty() { String::new() } else { format!(": {}", entry.detail) };
            writeln!(out, "  {:<7} {}  {}{detail}", entry.outcome, entry.id, entry.action)?;
            for saved in &entry.saved {
                writeln!(out, "          kept {}", saved.display())?;
            }
        }
    }
    Ok(())
}

fn print_stats(stats: &BTreeMap<&str, Stat>, out: &mut dyn Write) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(run: &str, id: &str, outcome: &str) -> Entry {
        Entry { run: run.into(), time: run.into(), id: id.into(), outcome: outcome.into(), ..Default::default() }
    }

    #[test]
    fn runs_are_grouped_newest_first() {
        let entries = [entry("r1", "a", "done"), entry("r1", "b", "done"), entry("r2", "a", "failed")];
        let runs = runs(&entries);
        assert_eq!(runs.iter().map(|r| r.run).collect::<Vec<_>>(), ["r2", "r1"]);
        assert_eq!(runs[1].actions.len(), 2);
    }

    #[test]
    fn stats_count_outcomes_and_leave_rollbacks_out() {
        let mut undo = entry("r4", "a", "done");
        undo.rollback_of = Some("r3".into());
        let entries = [entry("r1", "a", "done"), entry("r2", "a", "failed"), entry("r3", "a", "tripped"), undo];
        let stats = stats(&entries);
        assert_eq!(stats["a"], Stat { found: 3, healed: 1, failed: 1, tripped: 1, last: "r3".into() });
    }
}
