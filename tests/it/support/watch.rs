//! `preflight watch` running in the background for a test.

use super::{Background, Run, TestDir};

/// `preflight watch` in the background, stopped with SIGTERM by `stop`
/// (and killed by its guard if the test fails first).
pub struct Watch {
    process: Background,
}

impl Watch {
    pub fn start(t: &TestDir, args: &[&str]) -> Watch {
        let manifest = t.join("preflight.toml");
        let mut all = vec!["watch"];
        all.extend(args);
        all.extend(["-m", manifest.to_str().unwrap()]);
        Watch { process: Background::start(&all, t.path()) }
    }

    /// Its reports so far.
    pub fn output(&self) -> String {
        self.process.stdout()
    }

    /// SIGTERM, then the exit code and everything it printed.
    pub fn stop(mut self) -> Run {
        self.process.terminate();
        self.process.finish()
    }
}
