//! `preflight watch`: heal every interval while the application runs, until
//! SIGINT or SIGTERM (a second signal ends it at once). A circuit breaker,
//! fed by the persisted history, stops healing a finding that keeps coming
//! back: healed or tried `max_heals` times within the last hour (a failed
//! attempt counts: a fix that keeps failing must not run forever), it is no
//! longer healed and is reported as critical ("flapping") until the hour
//! has passed. A cooldown spaces two attempts at the same finding. A fix
//! held back by either is reported as such ("held"), in every format.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use preflight::finding::{Finding, Findings, Severity};
use preflight::heal::{self, ActionRecord, HealResult};
use preflight::manifest::Manifest;
use preflight::report::Report;
use preflight::safety::history;
use signal_hook::consts::{SIGINT, SIGTERM};

use super::{emit, options, progress, report_format, selection};
use crate::cli::{Cli, Format};

/// The window the breaker counts heals in.
const WINDOW: Duration = Duration::from_secs(3600);

/// `--max-heals` and `--cooldown`.
#[derive(Debug, Clone, Copy)]
pub struct Breaker {
    pub max_heals: u32,
    pub cooldown: Duration,
}

/// Recent attempts at one finding ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recent {
    /// Heals and failed attempts.
    count: u32,
    failed: u32,
    last: SystemTime,
}

impl Recent {
    /// `healed 3 times` or `tried 3 times (2 failed)`.
    fn tries(&self) -> String {
        match self.failed {
            0 => format!("healed {} times", self.count),
            failed => format!("tried {} times ({failed} failed)", self.count),
        }
    }
}

impl Breaker {
    fn tripped(&self, recent: Option<&Recent>) -> bool {
        recent.is_some_and(|r| r.count >= self.max_heals)
    }

    fn cooling(&self, recent: Option<&Recent>, now: SystemTime) -> bool {
        recent.is_some_and(|r| now.duration_since(r.last).unwrap_or_default() < self.cooldown)
    }
}

pub fn watch(cli: &Cli, manifest: &Manifest, interval: Duration, breaker: Breaker) -> anyhow::Result<u8> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first: a second signal while a heal runs ends at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot handle signals")?;
    }
    let mut recorded: HashSet<String> = HashSet::new();
    let mut shown: Option<Vec<(String, Severity, String)>> = None;
    let mut out = anstream::stdout();
    while !stop.load(Ordering::SeqCst) {
        match cycle(cli, manifest, breaker, &mut recorded) {
            Ok(result) => {
                let mut state = state_of(result.current());
                // A fix held back is said once, when it starts being held, not every cycle.
                let held = result.actions.iter().filter(|a| a.outcome == history::Outcome::Held);
                state.extend(held.map(|a| (format!("held {}", a.id), Severity::Warning, String::new())));
                let acted = result.actions.iter().any(|a| a.outcome != history::Outcome::Held);
                if acted || shown.as_ref() != Some(&state) {
                    // Machine formats get their documents alone, one per report.
                    let human = cli.format == Format::Human;
                    if human && (!cli.quiet || !state.is_empty() || !result.actions.is_empty()) {
                        writeln!(out, "watch {}", heal::now())?;
                    }
                    emit(&Report::heal(&result, cli.strict), report_format(cli), &mut out)?;
                    shown = Some(state);
                }
            }
            // A watch outlives a passing problem (a heal lock held too long).
            Err(e) => writeln!(anstream::stderr(), "preflight watch: {e:#}")?,
        }
        pause(interval, &stop);
    }
    writeln!(anstream::stderr(), "preflight watch: stopped")?;
    Ok(0)
}

/// One heal, holding back what the breaker or the cooldown forbids, with
/// flapping findings raised to critical.
fn cycle(
    cli: &Cli,
    manifest: &Manifest,
    breaker: Breaker,
    recorded: &mut HashSet<String>,
) -> anyhow::Result<HealResult> {
    let now = SystemTime::now();
    let recent = recent_heals(&history::read(&manifest.root)?, now);
    // A breaker that closed again (its hour passed) is recorded anew when it trips again.
    recorded.retain(|id| breaker.tripped(recent.get(id)));
    let allow = |f: &Finding| {
        let r = recent.get(&f.id);
        !breaker.tripped(r) && !breaker.cooling(r, now)
    };
    let progress = progress(cli);
    let mut result =
        heal::heal_only(manifest, &options(cli, false), &selection(cli, manifest)?, &allow, progress.as_ref())?;
    let held = held_back(&result.before, &recent, breaker, now);
    result.actions.extend(held);
    let findings = match result.after.as_mut() {
        Some(after) => after,
        None => &mut result.before,
    };
    let flapping = mark_flapping(findings, &recent, breaker);
    let run = heal::new_run_id();
    let new: Vec<history::Entry> = flapping
        .into_iter()
        .filter(|id| recorded.insert(id.clone()))
        .map(|id| history::Entry {
            run: run.clone(),
            time: heal::now(),
            action: "circuit breaker".into(),
            outcome: history::Outcome::Tripped,
            detail: format!(
                "{} within an hour; no longer healed automatically",
                recent.get(&id).map_or_else(|| format!("healed {} times", breaker.max_heals), Recent::tries)
            ),
            id,
            ..Default::default()
        })
        .collect();
    history::append(&manifest.root, &new)?;
    Ok(result)
}

/// Raises every finding the breaker tripped on to critical, saying why;
/// returns their IDs.
fn mark_flapping(findings: &mut Findings, recent: &HashMap<String, Recent>, breaker: Breaker) -> Vec<String> {
    let mut ids = Vec::new();
    for finding in findings.problems.iter_mut().filter(|f| f.fixable()) {
        if let Some(r) = recent.get(&finding.id).filter(|r| breaker.tripped(Some(r))) {
            finding.severity = Severity::Critical;
            finding.message =
                format!("{} (flapping: {} in the last hour; not healed again)", finding.message, r.tries());
            ids.push(finding.id.clone());
        }
    }
    ids
}

/// The fixes `allow` kept from running this cycle, as actions that say why.
fn held_back(
    findings: &Findings,
    recent: &HashMap<String, Recent>,
    breaker: Breaker,
    now: SystemTime,
) -> Vec<ActionRecord> {
    let mut held = Vec::new();
    for finding in heal::plan(findings) {
        let Some(r) = recent.get(&finding.id) else { continue };
        let detail = if breaker.tripped(Some(r)) {
            format!("held back by the circuit breaker: {} in the last hour", r.tries())
        } else if breaker.cooling(Some(r), now) {
            let ago = now.duration_since(r.last).unwrap_or_default().as_secs();
            let wait = breaker.cooldown.saturating_sub(now.duration_since(r.last).unwrap_or_default()).as_secs();
            format!("held back by the cooldown: last attempt {ago}s ago, next one in {wait}s")
        } else {
            continue;
        };
        let action = finding.fix.as_ref().map(|f| f.action.clone()).unwrap_or_default();
        held.push(ActionRecord { id: finding.id.clone(), action, outcome: history::Outcome::Held, detail });
    }
    held
}

/// Heals and failed attempts per finding ID within the last hour.
fn recent_heals(entries: &[history::Entry], now: SystemTime) -> HashMap<String, Recent> {
    let mut recent: HashMap<String, Recent> = HashMap::new();
    let tried = |e: &&history::Entry| matches!(e.outcome, history::Outcome::Done | history::Outcome::Failed);
    for entry in entries.iter().filter(tried).filter(|e| e.rollback_of.is_none()) {
        let Ok(time) = humantime::parse_rfc3339(&entry.time) else { continue };
        if now.duration_since(time).unwrap_or_default() > WINDOW {
            continue;
        }
        let r = recent.entry(entry.id.clone()).or_insert(Recent { count: 0, failed: 0, last: time });
        r.count += 1;
        r.failed += u32::from(entry.outcome == history::Outcome::Failed);
        r.last = r.last.max(time);
    }
    recent
}

/// What the report shows, to print only when it changes (a finding that
/// starts flapping keeps its ID and severity but not its message).
fn state_of(findings: &Findings) -> Vec<(String, Severity, String)> {
    findings.problems.iter().map(|f| (f.id.clone(), f.severity, f.message.clone())).collect()
}

/// Sleeps `interval`, waking early when asked to stop.
fn pause(interval: Duration, stop: &AtomicBool) {
    let end = Instant::now() + interval;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: &str, time: &str) -> history::Entry {
        history::Entry { id: id.into(), time: time.into(), outcome: history::Outcome::Done, ..Default::default() }
    }

    #[test]
    fn failed_attempts_count_toward_the_breaker() {
        let now = humantime::parse_rfc3339("2026-01-01T12:00:00Z").unwrap();
        let mut failed = done("a", "2026-01-01T11:58:00Z");
        failed.outcome = history::Outcome::Failed;
        let entries = [done("a", "2026-01-01T11:50:00Z"), failed];
        let recent = recent_heals(&entries, now);
        assert_eq!((recent["a"].count, recent["a"].failed), (2, 1));
        assert_eq!(recent["a"].tries(), "tried 2 times (1 failed)");
        assert!(Breaker { max_heals: 2, cooldown: Duration::ZERO }.tripped(recent.get("a")));
    }

    #[test]
    fn only_heals_within_the_hour_count() {
        let now = humantime::parse_rfc3339("2026-01-01T12:00:00Z").unwrap();
        let entries =
            [done("a", "2026-01-01T10:00:00Z"), done("a", "2026-01-01T11:30:00Z"), done("a", "2026-01-01T11:59:00Z")];
        let recent = recent_heals(&entries, now);
        assert_eq!(recent["a"].count, 2);
        let breaker = Breaker { max_heals: 2, cooldown: Duration::from_secs(120) };
        assert!(breaker.tripped(recent.get("a")));
        assert!(breaker.cooling(recent.get("a"), now));
        assert!(!breaker.tripped(recent.get("b")) && !breaker.cooling(recent.get("b"), now));
    }
}
