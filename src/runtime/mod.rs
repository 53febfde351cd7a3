//! Helpers for the runtime checks (locks, heartbeats, pidfiles, commands,
//! disk, prune): facts about processes, the host, the clock, the file
//! system and version strings. Each file holds one idea; none of them
//! writes to the disk except `remove`, which runs only inside heal.

pub mod clock;
pub mod diskfree;
pub mod exec;
pub mod host;
pub mod process;
pub mod remove;
pub mod size;
pub mod terminate;
pub mod version;
pub mod walk;
