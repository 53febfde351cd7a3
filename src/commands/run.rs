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
use preflight::heal::{self, HealResult};
use preflight::report::Report;

use super::{emit, load_manifest, options, report_format, selection};
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
    let result = heal_until_ready(cli, retry)?;
    let report = Report { command: "run", ..Report::heal(&result, cli.strict) };
    let mut err = anstream::stderr();
    let code = emit(&report, report_format(cli), &mut err)?;
    if code == 1 {
        let _ = writeln!(err, "preflight: not starting {}: critical findings remain", program.to_string_lossy());
        return Ok(1);
    }
    let _ = err.flush();
    let error = std::process::Command::new(program).args(&cmd[1..]).exec();
    Err(error).with_context(|| format!("cannot start {}", program.to_string_lossy()))
}

/// Heals once, or again every `sleep` until the result is 0 or 2 (only 0
/// with `--strict`) or `timeout` has passed. An error (a manifest on a
/// volume not yet mounted) is retried too; the last one is returned when
/// time is up.
fn heal_until_ready(cli: &Cli, retry: Retry) -> anyhow::Result<HealResult> {
    let deadline = retry.timeout.map(|t| Instant::now() + t);
    let mut attempt = 1;
    loop {
        let result = load_manifest(cli)
            .and_then(|manifest| heal::heal(&manifest, &options(cli, false), &selection(cli)).context("heal stopped"));
        let why = match &result {
            Ok(r) if Report::heal(r, cli.strict).exit_code() != 1 => return result,
            Ok(_) => "critical findings remain".to_string(),
            Err(e) => format!("{e:#}"),
        };
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default();
        if left < retry.sleep || left.is_zero() {
            return result;
        }
        if !cli.quiet {
            let _ = writeln!(
                anstream::stderr(),
                "preflight: attempt {attempt}: {why}; trying again in {} ({} left)",
                humantime::format_duration(retry.sleep),
                humantime::format_duration(Duration::from_millis(left.as_millis() as u64 / 100 * 100))
            );
        }
        std::thread::sleep(retry.sleep);
        attempt += 1;
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
