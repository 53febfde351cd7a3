//! Undo records written ahead: before an action acts on a path, what
//! undoes that act (the copy kept, the state before, the state the act
//! will leave) is appended to the history and made durable, as an entry
//! with outcome `pending`. The action's own entry follows when it ends,
//! and the run's end replaces both. A heal killed at any point leaves in
//! the history enough to undo what it had done.

use std::path::Path;
use std::time::SystemTime;

use super::history::{self, Entry, Outcome};
use super::journal::Undo;

/// The action in progress, when the run keeps a history (rollback's own
/// steps do not).
#[derive(Debug, Default)]
pub struct Ahead {
    action: Option<(String, String)>,
}

impl Ahead {
    /// Notes that an action starts. Not made durable on its own: the first
    /// record written ahead of an act carries it to the disk.
    pub fn begin(&mut self, root: &Path, run: &str, id: &str, action: &str) -> anyhow::Result<()> {
        self.action = Some((id.to_string(), action.to_string()));
        history::append_lines(root, &[self.entry(run, Undo::default())], false)
    }

    /// The action in progress ended; further acts belong to no action.
    pub fn end(&mut self) {
        self.action = None;
    }

    /// Appends `undo` for the action in progress and waits until it is on
    /// disk. Nothing to write outside an action, or with nothing to undo.
    pub fn record(&self, root: &Path, run: &str, undo: Undo) -> anyhow::Result<()> {
        if self.action.is_none() || undo.is_empty() {
            return Ok(());
        }
        history::append_lines(root, &[self.entry(run, undo)], true)
    }

    fn entry(&self, run: &str, undo: Undo) -> Entry {
        let (id, action) = self.action.clone().unwrap_or_default();
        let mut entry = Entry {
            run: run.to_string(),
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            id,
            action,
            outcome: Outcome::Pending,
            ..Default::default()
        };
        entry.set_undo(undo);
        entry
    }
}
