//! Real deployments: configuration from the process environment, paths
//! the deployment provides (`create = false`, mounted volumes), volume
//! dirs that lead outside the root, the application's own user, and the
//! guard rails a launcher relies on. Every test drives the real binary on
//! a temporary root.

mod access;
mod env;
mod guards;
mod init;
mod provided;
mod volumes;

use std::path::Path;
use std::process::Command;

use crate::support::TestDir;

/// A root whose app (`bin/app`) says it started and lists `data/`.
pub fn with_app(manifest: &str) -> TestDir {
    let t = TestDir::with_manifest(manifest);
    t.write("bin/app", "#!/bin/sh\necho \"app started with $*\"\n");
    t.chmod("bin/app", 0o755);
    t
}

/// The built binary's path.
pub fn preflight() -> &'static str {
    env!("CARGO_BIN_EXE_preflight")
}

/// Whether this process runs as root (mounts, other users' files).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether a private mount namespace can be made here (`unshare -m`, as
/// root, with mount permitted): tests that mount skip otherwise, saying so.
pub fn can_mount() -> bool {
    let ok = is_root()
        && Command::new("unshare")
            .args(["-m", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs none \"$d\" && umount \"$d\"; rmdir \"$d\""])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: needs root and `unshare -m` with mount permitted");
    }
    ok
}

/// Runs `script` with `sh -c` in a private mount namespace, with the
/// binary as `$PREFLIGHT` and the root as the working directory.
pub fn in_mount_namespace(root: &Path, script: &str) -> std::process::Output {
    Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .current_dir(root)
        .env("PREFLIGHT", preflight())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}
