//! `preflight rollback [RUN]`: undo the last (or the named) heal run, or
//! refuse with every reason when the disk changed after it. The rollback
//! is itself a run in the history, marked `rollback_of`.

use std::io::Write;

use anyhow::bail;
use preflight::heal::{self, history, history::Entry};
use serde_json::json;

use super::rollback_plan::Plan;
use super::root_only;
use crate::cli::{Cli, Format};

pub fn rollback(cli: &Cli, run: Option<&str>) -> anyhow::Result<u8> {
    let root = root_only(cli)?;
    if !history::path(&root).exists() {
        // Said before taking the lock, which would create `.preflight/`.
        bail!("nothing to roll back: no heal run is recorded in {}", history::path(&root).display());
    }
    // No heal may run while files are put back.
    let _lock = heal::lock::acquire(&root, heal::LOCK_WAIT)?;
    let entries = history::read(&root)?;
    let target = pick_run(&entries, run)?;
    let of_run: Vec<&Entry> = entries.iter().filter(|e| e.run == target).collect();
    let plan = Plan::of(&of_run);
    let kept_nothing: Vec<String> = of_run
        .iter()
        .filter(|e| e.outcome == "done" && e.created.is_empty() && e.replaced.is_empty() && e.modes.is_empty())
        .map(|e| format!("{}: {} (nothing was kept to undo it)", e.id, e.action))
        .collect();
    let refused = plan.check(&root);
    if !refused.is_empty() {
        return report(cli, &target, None, &[], &refused, &[]);
    }
    let run_id = heal::new_run_id();
    let mut done = Vec::new();
    for step in &plan.steps {
        let (action, outcome, detail) = match step.apply(&root) {
            Ok((action, detail)) => (action, "done", detail),
            Err(e) => (format!("undo {}", step.path().display()), "failed", format!("{e:#}")),
        };
        done.push(Entry {
            run: run_id.clone(),
            time: heal::now(),
            id: step.id().to_string(),
            action,
            outcome: outcome.into(),
            detail,
            rollback_of: Some(target.clone()),
            ..Default::default()
        });
    }
    history::append(&root, &done)?;
    report(cli, &target, Some(&run_id), &done, &[], &kept_nothing)
}

/// The named run, or the newest run that is not a rollback and was not
/// rolled back already.
fn pick_run(entries: &[Entry], wanted: Option<&str>) -> anyhow::Result<String> {
    let undone_by = |run: &str| entries.iter().find(|e| e.rollback_of.as_deref() == Some(run)).map(|e| e.run.clone());
    let Some(wanted) = wanted else {
        return entries
            .iter()
            .rev()
            .find(|e| e.rollback_of.is_none() && undone_by(&e.run).is_none())
            .map(|e| e.run.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("nothing to roll back: no heal run in the history that is not rolled back")
            });
    };
    let Some(entry) = entries.iter().find(|e| e.run == wanted) else {
        bail!("no run {wanted} in the history; `preflight history` lists the runs");
    };
    if let Some(of) = &entry.rollback_of {
        bail!("run {wanted} is the rollback of {of}; a rollback is not undone (heal again instead)");
    }
    if let Some(by) = undone_by(wanted) {
        bail!("run {wanted} was already rolled back by run {by}");
    }
    Ok(wanted.to_string())
}

/// Prints what was undone, or why nothing was; `left` lists actions of the
/// run that kept nothing to undo them with (a stale lock removed, a touch).
fn report(
    cli: &Cli,
    target: &str,
    run: Option<&str>,
    done: &[Entry],
    refused: &[String],
    left: &[String],
) -> anyhow::Result<u8> {
    let failed = done.iter().any(|e| e.outcome != "done");
    let code = u8::from(failed || !refused.is_empty());
    let mut out = anstream::stdout();
    if cli.format == Format::Json {
        let doc = json!({
            "version": 1, "command": "rollback", "status": if code == 0 { "ok" } else { "critical" },
            "exit_code": code, "rollback_of": target, "run": run, "actions": done, "refused": refused,
            "left_as_is": left,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(code);
    }
    if !refused.is_empty() {
        writeln!(out, "rollback of run {target} refused, nothing was changed:")?;
        for reason in refused {
            writeln!(out, "  {reason}")?;
        }
        return Ok(code);
    }
    for entry in done {
        let detail = if entry.detail.is_empty() { String::new() } else { format!(" ({})", entry.detail) };
        writeln!(out, "  {:<7} {}  {}{detail}", entry.outcome, entry.id, entry.action)?;
    }
    for note in left {
        writeln!(out, "  left    {note}")?;
    }
    let what = if done.is_empty() {
        "nothing recorded to undo"
    } else if failed {
        "some steps failed"
    } else {
        "done"
    };
    writeln!(out, "rollback of run {target}: {what}")?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(run: &str, rollback_of: Option<&str>) -> Entry {
        Entry { run: run.into(), rollback_of: rollback_of.map(Into::into), ..Default::default() }
    }

    #[test]
    fn the_default_run_is_the_newest_not_yet_undone() {
        let entries = [entry("r1", None), entry("r2", None), entry("r3", Some("r2"))];
        assert_eq!(pick_run(&entries, None).unwrap(), "r1");
        assert!(pick_run(&entries, Some("r2")).unwrap_err().to_string().contains("already rolled back"));
        assert!(pick_run(&entries, Some("r3")).is_err());
        assert!(pick_run(&entries[2..], None).is_err());
    }
}
