//! Helpers for the runtime checks (locks, heartbeats, pidfiles, commands,
//! disk, prune): facts about processes, the host, the clock, the file
//! system and version strings. Each file holds one idea. Nothing here
//! changes the disk; `exec` runs the manifest's commands.

pub mod account;
pub mod clock;
pub mod content;
pub mod diskfree;
pub mod exec;
pub mod host;
pub mod mounts;
pub mod process;
pub mod size;
pub mod version;
pub mod walk;
