//! The harness every area of the integration binary shares, one idea per
//! file:
//!
//! - `root`: [`TestDir`], a temporary application root with a manifest
//!   and small file helpers;
//! - `binary`: the real `preflight` binary run in a root ([`Run`]), every
//!   run checked for a leaked secret;
//! - `snapshot`: every file and folder under a root, modes and bytes, for
//!   "nothing changed" assertions;
//! - `process`: [`ChildGuard`], so no process a test starts outlives it,
//!   and [`eventually`], to wait for an event instead of a fixed time;
//! - `watch`: [`Watch`], `preflight watch` in the background;
//! - `pg`: [`pg::PgServer`], a throw-away PostgreSQL server per test.

mod binary;
pub mod pg;
mod process;
mod root;
mod snapshot;
mod watch;

pub use binary::{run_preflight, Background, Run, SECRET_MARK};
pub use process::{eventually, ChildGuard};
pub use root::TestDir;
pub use snapshot::{snapshot, Snapshot};
pub use watch::Watch;
