//! Running a manifest's command line (`[[command]] run` and `fix`) with a
//! time limit and bounded captured output.
//!
//! A line made only of plain words (`python3 --version`) is split on white
//! space and run directly: no shell, so the program is looked up in `PATH`
//! first and "not installed" is told apart from "failed". A line with any
//! shell syntax (quotes, `$`, pipes, redirections, `;`, `&&`, globs, `~`,
//! a leading `VAR=value`) is run as `sh -c LINE`, exactly as written.
//! The child gets no stdin, runs in the root, in its own process group so
//! a timeout kills everything it started.

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Bytes kept of each of stdout and stderr; the rest is read and dropped.
pub const MAX_CAPTURE: usize = 64 * 1024;

/// How long to wait for output pipes after the command ended: a process it
/// left in the background may hold them open.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// How a command line is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Plain words: the program and its arguments.
    Direct { program: String, args: Vec<String> },
    /// Shell syntax: `sh -c LINE`.
    Shell(String),
}

impl Invocation {
    /// Decides between a direct run and `sh -c` (see the module comment).
    pub fn of(line: &str) -> Invocation {
        const SHELL: &[char] = &[
            '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~', '{', '}', '!',
        ];
        let mut words = line.split_whitespace().map(str::to_string);
        let program = words.next().unwrap_or_default();
        if line.contains(SHELL) || line.contains('\n') || program.contains('=') || program.is_empty() {
            return Invocation::Shell(line.to_string());
        }
        Invocation::Direct { program, args: words.collect() }
    }
}

/// What a finished (or killed) command produced.
#[derive(Debug)]
pub struct Outcome {
    /// `None` when it was killed at the time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// `exit status 3` or `killed by signal 9`, for messages.
    pub fn status_text(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match self.status {
            None => "timed out".into(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => s.to_string(),
            },
        }
    }
}

/// Why a command could not be started at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("`{0}` was not found on PATH")]
    NotFound(String),
    #[error("cannot start `{program}`: {source}")]
    Spawn { program: String, source: io::Error },
}

/// Gives the program `command` starts the default disposition of SIGXFSZ:
/// preflight ignores it for its own writes (see main.rs), and an ignored
/// signal survives exec. (std already does the same for SIGPIPE.)
pub fn default_signals(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal() is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            Ok(())
        })
    }
}

/// Runs `line` in `cwd`, killing it (and its process group) after `timeout`.
pub fn run(line: &str, cwd: &Path, timeout: Duration) -> Result<Outcome, ExecError> {
    let mut command = match Invocation::of(line) {
        Invocation::Direct { program, args } => {
            let path = find_program(&program, cwd).ok_or_else(|| ExecError::NotFound(program.clone()))?;
            let mut c = Command::new(path);
            // The program sees its name as written, as it would from a shell.
            c.arg0(&program).args(args);
            c
        }
        Invocation::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
    };
    command.current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    default_signals(&mut command);
    let program = line.split_whitespace().next().unwrap_or(line).to_string();
    let mut child = command.spawn().map_err(|source| ExecError::Spawn { program, source })?;
    let stdout = capture(child.stdout.take());
    let stderr = capture(child.stderr.take());
    let status = wait_with_timeout(&mut child, timeout);
    let grace = Instant::now() + PIPE_GRACE;
    Ok(Outcome { status, stdout: collect(stdout, grace), stderr: collect(stderr, grace) })
}

/// The executable `program` names: a path (relative to `cwd`) when it
/// contains `/`, else the first executable file of that name on `PATH`.
pub fn find_program(program: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let path = cwd.join(program);
        return is_executable(&path).then_some(path);
    }
    let search = std::env::var_os("PATH")?;
    std::env::split_paths(&search)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Polls the child until it exits or the time is up; then kills its whole
/// process group and reaps it. `None` means it was killed.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(25));
            }
            // Out of time, or waiting failed: stop it either way.
            _ => break,
        }
    }
    if let Ok(group) = i32::try_from(child.id()) {
        // SAFETY: the child leads its own group (process_group(0)) and has not
        // been reaped, so the group ID cannot have been reused.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

type Captured = mpsc::Receiver<Vec<u8>>;

/// Reads a pipe to its end on a thread, keeping the first `MAX_CAPTURE` bytes.
fn capture(pipe: Option<impl Read + Send + 'static>) -> Option<Captured> {
    let mut pipe = pipe?;
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = MAX_CAPTURE.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = send.send(kept);
    });
    Some(receive)
}

/// The captured text, or what is known of it when the pipe is still open at
/// `deadline` (the reader thread is then left to finish on its own).
fn collect(captured: Option<Captured>, deadline: Instant) -> String {
    let Some(receive) = captured else { return String::new() };
    let wait = deadline.saturating_duration_since(Instant::now());
    match receive.recv_timeout(wait) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_run_directly_and_shell_syntax_through_sh() {
        assert_eq!(
            Invocation::of("python3 --version"),
            Invocation::Direct { program: "python3".into(), args: vec!["--version".into()] }
        );
        assert!(matches!(Invocation::of("node -v --x=1"), Invocation::Direct { .. }));
        for line in ["a | b", "echo $HOME", "x && y", "echo 'a b'", "FOO=1 tool", "ls *.py", "cd ~", "a > f"] {
            assert!(matches!(Invocation::of(line), Invocation::Shell(_)), "{line}");
        }
    }

    #[test]
    fn output_and_status_are_captured() {
        let dir = tempfile::tempdir().unwrap();
        let out = run("sh -c 'echo out; echo err >&2; exit 3'", dir.path(), Duration::from_secs(10)).unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status_text(), "exit status 3");
        assert!(!out.success());
    }

    #[test]
    fn a_missing_program_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = run("no-such-tool-xyz --version", dir.path(), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ExecError::NotFound(p) if p == "no-such-tool-xyz"));
    }

    #[test]
    fn a_hanging_command_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let out = run("sleep 30 | cat", dir.path(), Duration::from_millis(200)).unwrap();
        assert!(out.timed_out());
        assert_eq!(out.status_text(), "timed out");
    }

    #[test]
    fn output_beyond_the_bound_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let out = run("head -c 200000 /dev/zero", dir.path(), Duration::from_secs(10)).unwrap();
        assert!(out.success());
        assert_eq!(out.stdout.len(), MAX_CAPTURE);
    }
}
