//! Where long work says how far it is: a rebuild, a backup, a log rewrite,
//! a salvage. The work reports to a `Progress` sink it is handed (through
//! `ApplyCtx`) and never knows who draws it, or whether anyone does: the
//! reporters own the terminal, and `Silent` is the default everywhere
//! (tests, `validate`, output that is not a terminal).

/// A sink for the progress of long operations.
pub trait Progress {
    /// Starts a task named `label` (a short phrase such as `rebuild table
    /// t in app.db`). `total` is the amount of work in the unit the caller
    /// will report in (bytes, rows), `None` when it is not known.
    fn task(&self, label: &str, total: Option<u64>) -> Box<dyn Task>;
}

/// One task in progress. Sendable, so that a callback SQLite calls can
/// report to it.
pub trait Task: Send + Sync {
    /// `done` units of the total are done; calls are cheap (no system call
    /// each) and `done` never decreases. May be called from any thread.
    fn advance(&self, done: u64);
    /// The task is over, whatever its outcome: whatever was drawn for it
    /// goes. Dropping a task without calling this ends it as well.
    fn finish(self: Box<Self>);
}

/// Reports nothing: the default sink.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn task(&self, _label: &str, _total: Option<u64>) -> Box<dyn Task> {
        Box::new(Silent)
    }
}

impl Task for Silent {
    fn advance(&self, _done: u64) {}
    fn finish(self: Box<Self>) {}
}

/// A sink that records every call, for tests of the code that reports.
#[cfg(test)]
pub mod recording {
    use std::sync::{Arc, Mutex};

    use super::{Progress, Task};

    /// What a task was told, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Event {
        Start(String, Option<u64>),
        Advance(String, u64),
        Finish(String),
    }

    #[derive(Default, Clone)]
    pub struct Recording(Arc<Mutex<Vec<Event>>>);

    impl Recording {
        pub fn events(&self) -> Vec<Event> {
            self.0.lock().unwrap().clone()
        }

        /// The updates of the task whose label starts with `label`.
        pub fn advances(&self, label: &str) -> Vec<u64> {
            self.events()
                .into_iter()
                .filter_map(|e| match e {
                    Event::Advance(l, done) if l.starts_with(label) => Some(done),
                    _ => None,
                })
                .collect()
        }

        /// Asserts that the task labelled `label…` started once with
        /// `total`, had at least `min` updates that never went down, and
        /// finished, after its last update.
        pub fn assert_task(&self, label: &str, min: usize) -> Option<u64> {
            let events = self.events();
            let is = |l: &str| l.starts_with(label);
            let started: Vec<Option<u64>> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Start(l, total) if is(l) => Some(*total),
                    _ => None,
                })
                .collect();
            assert_eq!(started.len(), 1, "{label}: one task expected in {events:?}");
            let done = self.advances(label);
            assert!(done.len() >= min, "{label}: {} updates, expected {min} or more: {done:?}", done.len());
            assert!(done.windows(2).all(|w| w[0] <= w[1]), "{label}: updates went down: {done:?}");
            let last_advance = events.iter().rposition(|e| matches!(e, Event::Advance(l, _) if is(l)));
            let finish = events.iter().position(|e| matches!(e, Event::Finish(l) if is(l)));
            assert!(finish.is_some(), "{label}: never finished: {events:?}");
            assert!(last_advance < finish, "{label}: updated after it finished: {events:?}");
            started[0]
        }
    }

    struct Recorded {
        label: String,
        log: Recording,
    }

    impl Progress for Recording {
        fn task(&self, label: &str, total: Option<u64>) -> Box<dyn Task> {
            self.0.lock().unwrap().push(Event::Start(label.to_string(), total));
            Box::new(Recorded { label: label.to_string(), log: self.clone() })
        }
    }

    impl Task for Recorded {
        fn advance(&self, done: u64) {
            self.log.0.lock().unwrap().push(Event::Advance(self.label.clone(), done));
        }

        fn finish(self: Box<Self>) {
            self.log.0.lock().unwrap().push(Event::Finish(self.label.clone()));
        }
    }
}
