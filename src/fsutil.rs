//! File-system primitives shared by checks and heal: staying inside the
//! root, atomic replacement, permission bits.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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

/// Name prefix of the temporary files of atomic writes. A heal killed
/// mid-write leaves one behind; the next heal removes it (`sweep_temp_files`).
pub const TEMP_PREFIX: &str = ".preflight-tmp-";

/// Removes leftover temporary files of interrupted writes from `dir`.
/// Call only under the heal lock: then no other writer owns them.
pub fn sweep_temp_files(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let is_temp = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// folder, fsync, rename over the target, fsync the folder. A crash leaves
/// either the old or the new file. `mode` defaults to the old file's mode.
pub fn atomic_write(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir)?;
    tmp.write_all(contents)?;
    let mode = mode.or_else(|| fs::metadata(path).ok().map(|m| m.mode() & 0o7777));
    if let Some(mode) = mode {
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    } else {
        // tempfile creates 0600; a new ordinary file gets the usual 0644 less umask.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o666 & !umask()))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
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

use std::os::unix::fs::DirBuilderExt;

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

    #[test]
    fn atomic_write_replaces_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        atomic_write(&path, b"new", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode_of(&fs::metadata(&path).unwrap()), 0o640);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
