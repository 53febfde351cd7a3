//! File-system primitives shared by everyone: staying inside the root,
//! durable folder entries, permission bits, the process's identity.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why a path may not be used.
#[derive(Debug, thiserror::Error)]
pub enum Escape {
    #[error("goes through the symlink `{}`, which points outside the root", .0.display())]
    SymlinkOut(PathBuf),
    #[error("goes through the symlink `{}`, which points nowhere", .0.display())]
    Dangling(PathBuf),
}

/// Checks that `rel` (relative to `root`) does not leave the root through a
/// symlink at any level that exists today.
pub fn confine(root: &Path, rel: &Path) -> Result<(), Escape> {
    let Ok(canonical_root) = root.canonicalize() else {
        return Ok(()); // no root yet: nothing under it can point out
    };
    let mut current = root.to_path_buf();
    let mut shown = PathBuf::new();
    for component in rel.components() {
        current.push(component);
        shown.push(component);
        let Ok(meta) = fs::symlink_metadata(&current) else {
            return Ok(()); // the rest does not exist yet
        };
        if meta.file_type().is_symlink() {
            match current.canonicalize() {
                Ok(target) if target.starts_with(&canonical_root) => {}
                Ok(_) => return Err(Escape::SymlinkOut(shown)),
                Err(_) => return Err(Escape::Dangling(shown)),
            }
        }
    }
    Ok(())
}

/// The absolute path of `rel`, refused when it leaves the root.
pub fn resolve(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    confine(root, rel)
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, format!("{}: {e}", rel.display())))?;
    Ok(root.join(rel))
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The process umask, read without changing it for longer than an instant.
pub fn umask() -> u32 {
    // SAFETY: umask only swaps an integer in the process; it is set back at once.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old as u32
    }
}

/// Permission bits of a path (not following a final symlink).
pub fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.mode() & 0o7777
}

/// The user ID this process runs as.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (and parents) with mode 0700: the tool's own private folders.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn confine_accepts_paths_that_do_not_exist_yet() {
        let root = tempfile::tempdir().unwrap();
        assert!(confine(root.path(), Path::new("a/b/c")).is_ok());
    }

    #[test]
    fn confine_refuses_a_symlink_out_of_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("data")).unwrap();
        let err = confine(root.path(), Path::new("data/x.json")).unwrap_err();
        assert!(matches!(err, Escape::SymlinkOut(p) if p == Path::new("data")));
    }

    #[test]
    fn confine_accepts_a_symlink_that_stays_inside() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("real")).unwrap();
        symlink(root.path().join("real"), root.path().join("alias")).unwrap();
        assert!(confine(root.path(), Path::new("alias/x")).is_ok());
    }
}
