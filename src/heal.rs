//! Heal: plan the fixes the findings propose, apply them under the safety
//! rules, validate again. Nothing here knows any check by name.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;

use crate::checks::{self, CheckOptions, Selection};
use crate::finding::{Finding, Findings};
use crate::fsutil;
use crate::manifest::Manifest;
use crate::runtime::account::Account;
use crate::safety::confined::Root;
use crate::safety::lock::{self, LOCK_WAIT};
use crate::safety::{atomic, history, precondition, retention, ApplyCtx, Outcome, Progress};

/// What happened to one planned fix.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionRecord {
    pub id: String,
    pub action: String,
    pub outcome: Outcome,
    /// A short detail, or the error for a failed action. Never a secret.
    pub detail: String,
}

/// The result of `heal`: the findings before, the actions, the findings after.
pub struct HealResult {
    pub before: Findings,
    pub actions: Vec<ActionRecord>,
    /// `None` when nothing was applied, so the disk is as `before` says.
    pub after: Option<Findings>,
    pub run_id: Option<String>,
}

impl HealResult {
    /// The findings that describe the disk now.
    pub fn current(&self) -> &Findings {
        self.after.as_ref().unwrap_or(&self.before)
    }
}

/// The fixable findings, in the order their fixes must run: by phase, then
/// in the order the checks reported them.
pub fn plan(findings: &Findings) -> Vec<&Finding> {
    let mut planned: Vec<&Finding> = findings.problems.iter().filter(|f| f.fixable()).collect();
    planned.sort_by_key(|f| f.fix.as_ref().map(|fix| fix.phase));
    planned
}

/// Validates, applies every safe fix, validates again.
///
/// A converged root is never written to: the lock (which creates
/// `.preflight/`) is taken only once something is known to need a fix, or
/// when the lock file already exists, in which case validation runs once,
/// under the lock. Long fixes report how far they are to `progress`.
pub fn heal(
    manifest: &Manifest,
    options: &CheckOptions,
    selection: &Selection,
    progress: &dyn Progress,
) -> anyhow::Result<HealResult> {
    heal_only(manifest, options, selection, &|_| true, progress)
}

/// `heal`, applying only the fixes of findings `allow` accepts (`watch`
/// holds back the ones its circuit breaker has tripped on).
pub fn heal_only(
    manifest: &Manifest,
    options: &CheckOptions,
    selection: &Selection,
    allow: &dyn Fn(&Finding) -> bool,
    progress: &dyn Progress,
) -> anyhow::Result<HealResult> {
    let wanted = |findings: &Findings| plan(findings).into_iter().any(allow);
    // The fixes of these passes may be applied: they fingerprint what they read.
    let applying = CheckOptions { fingerprint_logs: true, ..options.clone() };
    let (_lock, before) = match lock::acquire_existing(&manifest.root, LOCK_WAIT)? {
        Some(lock) => (lock, checks::run_all(manifest, &applying, selection)?),
        None => {
            let history = history::mark(&manifest.root);
            let first = checks::run_all(manifest, &applying, selection)?;
            if !wanted(&first) {
                return Ok(unchanged(first));
            }
            let lock = lock::acquire(&manifest.root, LOCK_WAIT)?;
            if history::mark(&manifest.root) == history {
                // No run changed anything since the first look: it stands
                // (a large file is not read and hashed twice), and each fix
                // still checks its file again before it writes.
                (lock, first)
            } else {
                // Another heal finished while this one waited: look again.
                (lock, checks::run_all(manifest, &applying, selection)?)
            }
        }
    };
    if !wanted(&before) {
        return Ok(unchanged(before));
    }
    sweep_interrupted_writes(manifest)?;
    let run_id = new_run_id();
    let actions = apply_plan(manifest, &before, &run_id, allow, progress)?;
    let mut after = checks::run_all(manifest, options, selection)?;
    // A fix that just failed is not offered again as if it could work.
    for failed in actions.iter().filter(|a| a.outcome == Outcome::Failed) {
        for finding in after.problems.iter_mut().filter(|f| f.id == failed.id) {
            finding.fix = None;
        }
    }
    Ok(HealResult { before, actions, after: Some(after), run_id: Some(run_id) })
}

fn unchanged(findings: Findings) -> HealResult {
    HealResult { before: findings, actions: Vec::new(), after: None, run_id: None }
}

/// Applies the fixes of `findings` that `allow` accepts, in plan order,
/// recording each action in the history under `run_id`. The caller holds
/// the heal lock. Every operation is checked again by the applier when it
/// acts: a plan made earlier cannot take it outside the root.
pub fn apply_plan(
    manifest: &Manifest,
    findings: &Findings,
    run_id: &str,
    allow: &dyn Fn(&Finding) -> bool,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<ActionRecord>> {
    let mut ctx = ApplyCtx::new(&manifest.root, run_id).with_progress(progress);
    let owner = app_owner(manifest)?;
    let mut actions = Vec::new();
    let mut entries = Vec::new();
    for finding in plan(findings).into_iter().filter(|f| allow(f)) {
        let fix = finding.fix.as_ref().expect("planned findings have a fix");
        // From here on, what undoes each act is in the history before it.
        ctx.begin(&finding.id, &fix.action)?;
        let result = fix.ops.iter().try_fold(Vec::new(), |mut details, op| {
            let detail = ctx.apply(op)?;
            details.push(detail);
            Ok::<_, anyhow::Error>(details)
        });
        let mut entry = history::Entry {
            run: run_id.to_string(),
            time: now(),
            id: finding.id.clone(),
            action: fix.action.clone(),
            ..Default::default()
        };
        let (outcome, detail) = match result {
            Err(e) if precondition::is_skip(&e) => {
                // Nothing changed: the copies it made are not kept.
                ctx.discard();
                ctx.take_database();
                (Outcome::Skipped, format!("{e:#}"))
            }
            result => {
                let change = ctx.take_changes();
                let given = match owner {
                    Some((uid, gid)) if result.is_ok() => ctx.give_created(&change, uid, gid),
                    _ => Ok(()),
                };
                entry.saved = ctx.take_saved();
                // Hashed as the action left each path: rollback compares
                // the disk with the state the last action on a path left.
                entry.set_undo(change.records(&manifest.root).context("cannot record what heal changed")?);
                let outcome = match result.and_then(|details| given.map(|()| details)) {
                    Ok(details) => (Outcome::Done, details.join("; ")),
                    Err(e) => (Outcome::Failed, format!("{e:#}")),
                };
                let (sql, database_undo) = ctx.take_database();
                entry.sql = sql;
                entry.database_undo = database_undo.filter(|_| outcome.0 == Outcome::Done);
                outcome
            }
        };
        entry.outcome = outcome;
        entry.detail.clone_from(&detail);
        // Durable before the next action: a heal killed later still leaves
        // what undoes this one.
        history::append_unpruned(&manifest.root, std::slice::from_ref(&entry))?;
        entries.push(entry);
        actions.push(ActionRecord { id: finding.id.clone(), action: fix.action.clone(), outcome, detail });
    }
    if !entries.is_empty() {
        // The run is complete: its lines, write-ahead notes included, give
        // way to one entry per action.
        history::rewrite_run(&manifest.root, run_id, &entries)?;
    }
    // Under the heal lock, and after the history was pruned: backups go with their runs.
    retention::prune(&manifest.root, retention::bounds())?;
    Ok(actions)
}

/// Who owns what heal creates: the `[app] user` when heal runs as root
/// (the app must be able to write what heal made for it), else nobody is
/// given anything and new paths are the running user's.
fn app_owner(manifest: &Manifest) -> anyhow::Result<Option<(u32, u32)>> {
    let Some(name) = manifest.app.as_ref().and_then(|a| a.user.as_deref()) else { return Ok(None) };
    if fsutil::current_uid() != 0 {
        return Ok(None);
    }
    match Account::lookup(name).with_context(|| format!("cannot look up [app] user {name:?}"))? {
        Some(account) => Ok(Some((account.uid, account.gid))),
        None => {
            anyhow::bail!("[app] user {name:?} does not exist on this machine; heal would create files it cannot own")
        }
    }
}

/// The current time as the history writes it (RFC 3339, seconds, UTC).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Removes temporary files a killed heal left next to the files it was
/// replacing, in every folder that holds a declared path.
fn sweep_interrupted_writes(manifest: &Manifest) -> anyhow::Result<()> {
    let mut folders: Vec<&Path> = manifest.declared_paths().map(|p| p.parent().unwrap_or(Path::new(""))).collect();
    folders.sort_unstable();
    folders.dedup();
    let root = Root::open(&manifest.root)?;
    for folder in folders {
        // A folder that is missing or not reachable beneath the root holds
        // no temporary file of ours.
        if let Ok(dir) = root.open_dir(folder) {
            atomic::sweep_temp_files(&dir)?;
        }
    }
    Ok(())
}

/// A run ID that sorts by time: `20261123T154200.123Z`.
pub fn new_run_id() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string().replace(['-', ':'], "")
}
