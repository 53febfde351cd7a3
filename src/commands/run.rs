//! `preflight run -- CMD ARGS…`: launcher mode. Validate, heal when
//! something is fixable, validate again; then replace this process with
//! CMD (so its signals, output and exit code are the application's) when
//! the result allows a start. Reports go to stderr: stdout is the app's.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use preflight::checks::{self, Unready};
use preflight::finding::Severity;
use preflight::heal::{self, HealResult};
use preflight::report::Report;

use super::{emit, load_manifest, options, progress, report_format, selection, ArgumentError};
use crate::cli::Cli;

/// `--retry-timeout` and `--sleep`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub timeout: Option<Duration>,
    pub sleep: Duration,
}

/// Heals until the result allows a start (or the retry time is up), then
/// execs `cmd`. Returns only when CMD is not started.
pub fn run(cli: &Cli, retry: Retry, cmd: &[OsString]) -> anyhow::Result<u8> {
    let Some(program) = cmd.first() else { bail!("no command given: use `preflight run -- CMD ARGS…`") };
    // Refused before anything is healed: a typo in a unit file should not
    // change the disk and then fail.
    find_program(program)?;
    let attempt = heal_until_ready(cli, retry)?;
    let result = attempt.result();
    let report = Report { command: "run", ..Report::heal(result, cli.strict) };
    let mut err = anstream::stderr();
    let code = emit(&report, report_format(cli), &mut err)?;
    if code == 1 {
        let why = attempt.refusal(cli.strict);
        let _ = writeln!(err, "preflight: not starting {}: {why}", program.to_string_lossy());
        return Ok(1);
    }
    let _ = err.flush();
    let mut command = std::process::Command::new(program);
    let error = preflight::runtime::exec::default_signals(command.args(&cmd[1..])).exec();
    Err(error).with_context(|| format!("cannot start {}", program.to_string_lossy()))
}

/// One attempt of `run`.
enum Attempt {
    /// Validated, and healed when something was fixable.
    Healed(HealResult),
    /// Paths the deployment provides are not there: validated only,
    /// nothing healed.
    Waiting(Vec<Unready>, HealResult),
}

impl Attempt {
    fn result(&self) -> &HealResult {
        match self {
            Attempt::Healed(r) | Attempt::Waiting(_, r) => r,
        }
    }

    fn ready(&self, strict: bool) -> bool {
        matches!(self, Attempt::Healed(r) if Report::heal(r, strict).exit_code() != 1)
    }

    /// Why the app is not started, in words that match the cause.
    fn refusal(&self, strict: bool) -> String {
        match self {
            Attempt::Waiting(unready, _) => {
                let list: Vec<String> = unready.iter().map(ToString::to_string).collect();
                format!("waiting for what the deployment provides: {}", list.join("; "))
            }
            Attempt::Healed(r) if r.current().count(Severity::Critical) == 0 && strict => {
                "warnings remain, and --strict counts them as critical".into()
            }
            Attempt::Healed(_) => "critical findings remain".into(),
        }
    }
}

/// Validates, then heals only when every path the deployment provides
/// (`create = false`, expected mounts) is there: before that, a heal could
/// build an empty database where a volume is about to be mounted.
fn attempt(cli: &Cli) -> anyhow::Result<Attempt> {
    let manifest = load_manifest(cli)?;
    let (options, selection) = (options(cli, false), selection(cli, &manifest)?);
    let unready = checks::unready(&manifest);
    if unready.is_empty() {
        return Ok(Attempt::Healed(
            heal::heal(&manifest, &options, &selection, progress(cli).as_ref()).context("heal stopped")?,
        ));
    }
    let findings = checks::run_all(&manifest, &options, &selection)?;
    Ok(Attempt::Waiting(unready, HealResult { before: findings, actions: Vec::new(), after: None, run_id: None }))
}

/// Attempts once, or again every `sleep` until the result is 0 or 2 (only
/// 0 with `--strict`) or `timeout` has passed. An error (a manifest on a
/// volume not yet mounted) is retried too, except an argument error; the
/// last result is returned when time is up.
fn heal_until_ready(cli: &Cli, retry: Retry) -> anyhow::Result<Attempt> {
    let deadline = retry.timeout.map(|t| Instant::now() + t);
    let mut number = 1;
    loop {
        let result = attempt(cli);
        let why = match &result {
            Ok(a) if a.ready(cli.strict) => return result,
            Ok(a) => a.refusal(cli.strict),
            Err(e) if e.is::<ArgumentError>() => return result,
            Err(e) => format!("{e:#}"),
        };
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default();
        if left < retry.sleep || left.is_zero() {
            return result;
        }
        if !cli.quiet {
            let _ = writeln!(
                anstream::stderr(),
                "preflight: attempt {number}: {why}; trying again in {} ({} left)",
                humantime::format_duration(retry.sleep),
                humantime::format_duration(Duration::from_millis(left.as_millis() as u64 / 100 * 100))
            );
        }
        std::thread::sleep(retry.sleep);
        number += 1;
    }
}

/// Where `program` would be found by exec: a path as given, else the
/// first executable of that name on `PATH`.
fn find_program(program: &OsStr) -> anyhow::Result<PathBuf> {
    let name = Path::new(program);
    if name.components().count() > 1 || program.to_string_lossy().contains('/') {
        return match is_executable(name) {
            true => Ok(name.to_path_buf()),
            false => bail!("cannot start {}: no such executable file", name.display()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .with_context(|| format!("cannot start {}: no such program on PATH", name.display()))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_or_by_their_path() {
        assert!(find_program(OsStr::new("sh")).is_ok());
        assert!(find_program(OsStr::new("/bin/sh")).is_ok());
        let err = find_program(OsStr::new("no-such-program-preflight")).unwrap_err();
        assert!(err.to_string().contains("no such program on PATH"), "{err}");
        assert!(find_program(OsStr::new("./missing")).is_err());
    }
}
