//! Helpers for the runtime checks (locks, heartbeats, pidfiles, commands,
//! disk, prune): facts about processes, the host, the clock, the file
//! system and version strings, and the few actions heal takes on them.
//! Each file holds one idea. Only `remove` and `terminate` (custom heal
//! operations) change anything, and `exec` runs the manifest's commands.

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
