//! Child processes that never outlive their test, and the one way tests
//! wait for what a process does: polling for an observable event, never a
//! fixed sleep.

use std::fs;
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A child process that is killed (SIGKILL) and reaped when the guard is
/// dropped, so a test that fails half-way (a panic unwinds through it)
/// leaves no process behind. Every `.spawn()` in the tests goes through
/// it. A child the test already waited for is never signalled again:
/// `Child` remembers that it was reaped, and its PID may be reused.
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// Starts `command`; panics naming the program when it cannot start.
    pub fn spawn(command: &mut Command) -> ChildGuard {
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        ChildGuard { child: Some(child) }
    }

    /// Starts `command` and waits until the kernel shows the new program's
    /// command line. `spawn` returns while exec is still setting the
    /// program up, and in that window `/proc/PID/cmdline` reads empty: a
    /// check that reads it (the pidfile check does) would see an unknown
    /// program.
    pub fn spawn_and_wait_for_exec(command: &mut Command) -> ChildGuard {
        let mut guard = ChildGuard::spawn(command);
        let cmdline = format!("/proc/{}/cmdline", guard.id());
        eventually("the child's command line is visible", || {
            assert!(guard.try_wait().unwrap().is_none(), "{:?} exited at once", command.get_program());
            fs::read(&cmdline).is_ok_and(|bytes| !bytes.is_empty())
        });
        guard
    }

    /// Waits for the child to exit and collects its piped output.
    pub fn wait_with_output(mut self) -> Output {
        let child = self.child.take().expect("the guard holds its child until dropped");
        child.wait_with_output().expect("wait for the child")
    }
}

impl Deref for ChildGuard {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.child.as_ref().expect("the guard holds its child until dropped")
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the guard holds its child until dropped")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // Ok without a signal when already reaped
            let _ = child.wait();
        }
    }
}

/// How long [`eventually`] polls before it fails: a bound against a hang,
/// not a measured time.
pub const GIVE_UP: Duration = Duration::from_secs(60);

/// Polls `done` until it holds; fails naming `what` after [`GIVE_UP`].
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + GIVE_UP;
    while !done() {
        assert!(Instant::now() < give_up, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
