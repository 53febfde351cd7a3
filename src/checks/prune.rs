//! `[[prune]]`: disposable files (old logs, caches) matching a glob. Files
//! older than `older_than`, beyond the `keep_last` newest, → one warning per
//! rule with their count and total size; heal removes them without a
//! quarantine copy (the manifest declared them disposable), and the plan
//! lists each file. Symlinks are never matched or followed, the walk never
//! leaves the root. A file modified in the future counts as new and is
//! reported: it would otherwise never age.

use std::collections::btree_map::{BTreeMap, Entry};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::bail;
use rustix::fs::FileType;

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::manifest::PruneSpec;
use crate::runtime::clock::{human, Age};
use crate::runtime::size::human_bytes;
use crate::runtime::walk;
use crate::safety::confined::Dir;
use crate::safety::{ApplyCtx, CustomOp, Fix, Op, Phase, STATE_DIR};

pub struct PruneCheck;

impl Check for PruneCheck {
    fn kind(&self) -> Kind {
        Kind::Prune
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        let now = SystemTime::now();
        for spec in &ctx.manifest.prunes {
            check_rule(ctx.root, spec, now, out);
        }
        Ok(())
    }
}

fn check_rule(root: &Path, spec: &PruneSpec, now: SystemTime, out: &mut Findings) {
    let id = Kind::Prune.id(&spec.glob);
    let severity = severity(spec.severity, Severity::Warning);
    let found = match walk::matches(root, spec.glob.as_str(), |p| spec.glob.is_match(p), Path::new(STATE_DIR)) {
        Ok(found) => found,
        Err(e) => {
            out.push(Finding::new(id, Area::Runtime, severity, format!("cannot look for files: {e:#}")));
            return;
        }
    };
    let files: Vec<Candidate> = found
        .into_iter()
        .map(|m| Candidate { mtime: m.meta.modified().unwrap_or(now), size: m.meta.len(), rel: m.rel })
        .collect();
    let future = files.iter().filter(|f| matches!(Age::of(f.mtime, now), Age::Future(_))).count();
    let skew = (future > 0).then(|| {
        let (noun, verb) = if future == 1 { ("file", "is") } else { ("files", "are") };
        format!("{future} matching {noun} {verb} dated in the future (a clock is skewed) and never age; kept")
    });
    let old = select(files, spec, now);
    match (old.is_empty(), skew) {
        (true, None) => out.pass(id, Area::Runtime),
        (true, Some(skew)) => out.push(Finding::new(id, Area::Runtime, severity, skew)),
        (false, skew) => out.push(finding(id, severity, spec, old, skew)),
    }
}

/// A matched file.
#[derive(Debug, Clone)]
struct Candidate {
    rel: PathBuf,
    mtime: SystemTime,
    size: u64,
}

/// The files to remove: all but the `keep_last` newest, older than
/// `older_than`, in path order.
fn select(mut files: Vec<Candidate>, spec: &PruneSpec, now: SystemTime) -> Vec<Candidate> {
    files.sort_by(|a, b| b.mtime.cmp(&a.mtime).then_with(|| a.rel.cmp(&b.rel)));
    let mut old: Vec<Candidate> = files
        .into_iter()
        .skip(spec.keep_last as usize)
        .filter(|f| Age::of(f.mtime, now).older_than(spec.older_than))
        .collect();
    old.sort_by(|a, b| a.rel.cmp(&b.rel));
    old
}

fn finding(id: String, severity: Severity, spec: &PruneSpec, old: Vec<Candidate>, skew: Option<String>) -> Finding {
    let total: u64 = old.iter().map(|f| f.size).sum();
    let noun = if old.len() == 1 { "file" } else { "files" };
    let mut message = format!("{} {noun} older than {} ({})", old.len(), human(spec.older_than), human_bytes(total));
    if let Some(skew) = skew {
        message.push_str(&format!("; {skew}"));
    }
    let op = PruneFiles { files: old.into_iter().map(|f| f.rel).collect(), older_than: spec.older_than };
    Finding::new(id, Area::Runtime, severity, message).with_fix(Fix::new(
        "remove old files",
        Phase::Runtime,
        vec![Op::Custom(Box::new(op))],
    ))
}

/// Removes the listed files that are still regular files older than
/// `older_than`; one fsync per folder at the end.
#[derive(Debug)]
struct PruneFiles {
    files: Vec<PathBuf>,
    older_than: Duration,
}

impl CustomOp for PruneFiles {
    fn describe(&self) -> Vec<String> {
        self.files.iter().map(|f| format!("remove {}", f.display())).collect()
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let now = SystemTime::now();
        let (mut removed, mut bytes, mut skipped) = (0usize, 0u64, 0usize);
        let mut failures = Vec::new();
        // One handle per folder, opened beneath the root once: every
        // removal happens in the folder that was opened, wherever a
        // symlink may be swapped in meanwhile.
        let mut folders: BTreeMap<PathBuf, Result<Dir, String>> = BTreeMap::new();
        for rel in &self.files {
            let (parent, name) = match (rel.parent(), rel.file_name()) {
                (Some(parent), Some(name)) => (parent, name),
                _ => continue,
            };
            let dir = match folders.entry(parent.to_path_buf()) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(ctx.handle()?.open_dir(parent).map_err(|err| err.to_string())),
            };
            let dir = match dir {
                Ok(dir) => dir,
                Err(why) => {
                    failures.push(format!("{}: {why}", rel.display()));
                    continue;
                }
            };
            match remove_if_old(dir, name, self.older_than, now) {
                Ok(Some(size)) => {
                    removed += 1;
                    bytes += size;
                }
                Ok(None) => skipped += 1,
                Err(e) => failures.push(format!("{}: {e:#}", rel.display())),
            }
        }
        for dir in folders.values().filter_map(|d| d.as_ref().ok()) {
            dir.sync()?;
        }
        let mut detail = format!("removed {removed} files ({})", human_bytes(bytes));
        if skipped > 0 {
            detail.push_str(&format!("; {skipped} skipped (changed or gone since the check)"));
        }
        if let Some(first) = failures.first() {
            bail!("{detail}; {} could not be removed, first: {first}", failures.len());
        }
        Ok(detail)
    }
}

/// Removes `name` from `dir` if it is still a regular file older than
/// `older_than`; returns its size, or `None` when it was left alone.
fn remove_if_old(dir: &Dir, name: &OsStr, older_than: Duration, now: SystemTime) -> anyhow::Result<Option<u64>> {
    let Some(stat) = dir.stat(name)? else { return Ok(None) };
    let modified = SystemTime::UNIX_EPOCH
        .checked_add(Duration::new(stat.st_mtime.max(0) as u64, stat.st_mtime_nsec.clamp(0, 999_999_999) as u32));
    let old = modified.is_some_and(|t| Age::of(t, now).older_than(older_than));
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile || !old {
        return Ok(None);
    }
    dir.unlink(name)?;
    Ok(Some(stat.st_size as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn files(ages_in_days: &[u64], now: SystemTime) -> Vec<Candidate> {
        ages_in_days
            .iter()
            .enumerate()
            .map(|(i, d)| Candidate { rel: format!("{i}.log").into(), mtime: now - DAY * (*d as u32), size: 10 })
            .collect()
    }

    fn spec(keep_last: u32) -> PruneSpec {
        PruneSpec {
            glob: crate::manifest::Pattern::compile("*.log".into()).unwrap(),
            older_than: 7 * DAY,
            keep_last,
            severity: None,
        }
    }

    fn names(c: &[Candidate]) -> Vec<String> {
        c.iter().map(|c| c.rel.display().to_string()).collect()
    }

    #[test]
    fn only_files_older_than_the_limit_are_selected() {
        let now = SystemTime::now();
        assert_eq!(names(&select(files(&[1, 30, 8, 7], now), &spec(0), now)), ["1.log", "2.log"]);
    }

    #[test]
    fn keep_last_spares_the_newest_even_when_old() {
        let now = SystemTime::now();
        let old = files(&[40, 30, 20, 10], now);
        assert_eq!(names(&select(old, &spec(2), now)), ["0.log", "1.log"]);
    }

    #[test]
    fn a_file_from_the_future_is_never_pruned() {
        let now = SystemTime::now();
        let mut f = files(&[30], now);
        f[0].mtime = now + 3 * DAY;
        assert!(select(f, &spec(0), now).is_empty());
    }
}
