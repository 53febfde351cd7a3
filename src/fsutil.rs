//! File-system primitives shared by everyone: the string-based check that a
//! path stays inside the root (for read-only checks; writes go through
//! `safety::confined`), opening a regular file without blocking,
//! permission bits, the process's identity.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a path may not be used.
#[derive(Debug, thiserror::Error)]
pub enum Escape {
    #[error("goes through the symlink `{}`, which points outside the root", .0.display())]
    SymlinkOut(PathBuf),
    #[error("goes through the symlink `{}`, which points nowhere", .0.display())]
    Dangling(PathBuf),
}

/// The `volume = true` dirs of each root, by the root as given and as
/// canonical: each is a second root. It may itself be a symlink or a mount
/// point leading out of the root; beneath it the root's rules apply with
/// the volume's target as the boundary. Kept here, at the bottom, so that
/// every resolver (checks, the applier, rollback) confines the same way
/// without each carrying the manifest.
static VOLUMES: Mutex<Vec<(PathBuf, Vec<PathBuf>)>> = Mutex::new(Vec::new());

/// Declares the volume dirs (relative, normalised) of `root`, replacing
/// any declared before for it.
pub fn declare_volumes(root: &Path, volumes: &[PathBuf]) {
    let canonical = root.canonicalize().ok();
    let mut table = VOLUMES.lock().unwrap_or_else(|e| e.into_inner());
    table.retain(|(r, _)| r != root && Some(r) != canonical.as_ref());
    if volumes.is_empty() {
        return;
    }
    table.push((root.to_path_buf(), volumes.to_vec()));
    if let Some(canonical) = canonical.filter(|c| c != root) {
        table.push((canonical, volumes.to_vec()));
    }
}

/// The volume dirs declared for `root` (as declared, or canonical).
pub fn volumes(root: &Path) -> Vec<PathBuf> {
    let table = VOLUMES.lock().unwrap_or_else(|e| e.into_inner());
    table.iter().find(|(r, _)| r == root).map(|(_, v)| v.clone()).unwrap_or_default()
}

thread_local! {
    /// Folders `confine` found to be real folders, not symlinks, in the
    /// current `remembering_folders` scope of this thread.
    /// A handful of folders: a list compared byte for byte is cheaper than
    /// hashing paths component by component.
    static PLAIN_FOLDERS: RefCell<Option<Vec<PathBuf>>> = const { RefCell::new(None) };
}

/// Runs `f` with `confine` remembering the real folders it meets, so that
/// the many paths below one folder cost one `lstat` of it, not one each
/// (a validate of the shipped example made 90 of its 260 `statx` calls on
/// four folders). For one pass of read-only checks: a folder swapped for a
/// symlink during the pass is then seen only by the writes, which go
/// through `safety::confined` and resolve every path again.
pub fn remembering_folders<T>(f: impl FnOnce() -> T) -> T {
    struct Scope(Option<Vec<PathBuf>>);
    impl Drop for Scope {
        fn drop(&mut self) {
            PLAIN_FOLDERS.with(|folders| *folders.borrow_mut() = self.0.take());
        }
    }
    let _scope = Scope(PLAIN_FOLDERS.with(|folders| folders.borrow_mut().replace(Vec::new())));
    f()
}

fn known_plain_folder(path: &Path) -> bool {
    let bytes = path.as_os_str().as_encoded_bytes();
    PLAIN_FOLDERS.with(|folders| {
        folders.borrow().as_ref().is_some_and(|list| list.iter().any(|p| p.as_os_str().as_encoded_bytes() == bytes))
    })
}

fn remember_plain_folder(path: &Path) {
    PLAIN_FOLDERS.with(|folders| {
        if let Some(list) = folders.borrow_mut().as_mut() {
            list.push(path.to_path_buf());
        }
    });
}

/// Checks that `rel` (relative to `root`) does not leave the root through a
/// symlink at any level that exists today. A declared volume dir on the way
/// may lead anywhere; what lies beneath it must then stay inside its target.
pub fn confine(root: &Path, rel: &Path) -> Result<(), Escape> {
    let volumes = volumes(root);
    // Canonicalised only when a symlink is met: most paths have none, and
    // resolving the root costs a readlink per component on every call.
    let mut canonical_root: Option<PathBuf> = None;
    // Where the rest of the path must stay: the root, or a volume's target.
    let mut boundary: Option<PathBuf> = None;
    let mut current = root.to_path_buf();
    for (depth, component) in rel.components().enumerate() {
        current.push(component);
        if known_plain_folder(&current) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&current) else {
            return Ok(()); // the rest does not exist yet
        };
        if !meta.file_type().is_symlink() {
            if meta.is_dir() {
                remember_plain_folder(&current);
            }
            continue;
        }
        if canonical_root.is_none() {
            match root.canonicalize() {
                Ok(root) => canonical_root = Some(root),
                Err(_) => return Ok(()), // no root yet: nothing under it can point out
            }
        }
        let canonical_root = canonical_root.as_deref().unwrap_or(root);
        let target = current.canonicalize();
        // The path as far as here, as the manifest writes it.
        let shown: PathBuf = rel.components().take(depth + 1).collect();
        if volumes.contains(&shown) {
            match target {
                Ok(target) if !target.starts_with(canonical_root) => boundary = Some(target),
                Ok(_) => {}
                Err(_) => return Ok(()), // a volume not there yet holds nothing
            }
            continue;
        }
        match target {
            Ok(target) if target.starts_with(boundary.as_deref().unwrap_or(canonical_root)) => {}
            Ok(_) => return Err(Escape::SymlinkOut(shown)),
            Err(_) => return Err(Escape::Dangling(shown)),
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

/// Opens `path` for reading, refusing at once anything but a regular file:
/// a FIFO or a device is never opened in a blocking way.
pub fn open_regular(path: &Path) -> io::Result<fs::File> {
    open_regular_sized(path).map(|(file, _)| file)
}

/// `open_regular`, with the file's size when it was opened.
fn open_regular_sized(path: &Path) -> io::Result<(fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = file.metadata()?;
    let kind = rustix::fs::FileType::from_raw_mode(meta.mode());
    if kind != rustix::fs::FileType::RegularFile {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is not a regular file ({})", describe(kind))));
    }
    // Blocking again for ordinary reads. O_NONBLOCK is the only status
    // flag it was opened with, so no F_GETFL is needed to clear it.
    rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty())?;
    Ok((file, meta.len()))
}

/// The whole of a regular file, opened as `open_regular` does. Read with
/// the size its open saw: `File::read_to_end` would ask again (an `fstat`
/// and an `lseek` more per file, and a validate reads a dozen).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular_sized(path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    io::Read::read_to_end(&mut io::Read::take(&file, u64::MAX), &mut bytes)?;
    Ok(bytes)
}

/// `read_regular` as text; bytes that are not UTF-8 are an `InvalidData`
/// error, as `read_to_string` makes.
pub fn read_regular_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// What a file type is, for messages.
pub fn describe(kind: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType;
    match kind {
        FileType::RegularFile => "a file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Unknown => "of unknown type",
    }
}

pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The process umask, read without changing it where the kernel shows it.
pub fn umask() -> u32 {
    // Read where the kernel shows it (Linux 4.7+): swapping it, the
    // fallback, would race with another thread creating a file.
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let shown = status.lines().find_map(|line| line.strip_prefix("Umask:"));
    if let Some(mask) = shown.and_then(|value| u32::from_str_radix(value.trim(), 8).ok()) {
        return mask;
    }
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
    fn remembered_folders_last_one_scope_and_never_hide_a_symlink_found_first() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("data")).unwrap();
        symlink(outside.path(), root.path().join("link")).unwrap();
        remembering_folders(|| {
            for _ in 0..2 {
                assert!(confine(root.path(), Path::new("data/a.json")).is_ok());
                assert!(confine(root.path(), Path::new("link/a.json")).is_err(), "a symlink is never remembered");
            }
            assert!(known_plain_folder(&root.path().join("data")));
            assert!(!known_plain_folder(&root.path().join("link")));
        });
        // After the scope, the folder is looked at again.
        assert!(!known_plain_folder(&root.path().join("data")));
        fs::remove_dir(root.path().join("data")).unwrap();
        symlink(outside.path(), root.path().join("data")).unwrap();
        assert!(confine(root.path(), Path::new("data/a.json")).is_err());
    }

    #[test]
    fn open_regular_refuses_a_fifo_without_blocking() {
        let root = tempfile::tempdir().unwrap();
        let fifo = root.path().join("f");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(open_regular(&fifo).unwrap_err().to_string().contains("FIFO"));
        assert!(open_regular(root.path()).is_err());
        fs::write(root.path().join("r"), b"x").unwrap();
        assert!(open_regular(&root.path().join("r")).is_ok());
    }

    #[test]
    fn a_volume_dir_may_lead_out_and_is_a_root_of_its_own() {
        let root = tempfile::tempdir().unwrap();
        let volume = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        symlink(volume.path(), root.path().join("data")).unwrap();
        symlink(root.path().join("nowhere"), root.path().join("later")).unwrap();
        declare_volumes(root.path(), &[PathBuf::from("data"), PathBuf::from("later")]);
        assert!(confine(root.path(), Path::new("data/app.db")).is_ok());
        assert!(confine(root.path(), Path::new("later/app.db")).is_ok(), "a volume not mounted yet holds nothing");
        fs::create_dir(volume.path().join("inner")).unwrap();
        symlink(volume.path().join("inner"), volume.path().join("alias")).unwrap();
        assert!(confine(root.path(), Path::new("data/alias/x")).is_ok());
        symlink(elsewhere.path(), volume.path().join("out")).unwrap();
        let err = confine(root.path(), Path::new("data/out/x")).unwrap_err();
        assert!(matches!(err, Escape::SymlinkOut(p) if p == Path::new("data/out")));
        // Another root declares nothing: the same shape is refused there.
        let other = tempfile::tempdir().unwrap();
        symlink(volume.path(), other.path().join("data")).unwrap();
        assert!(confine(other.path(), Path::new("data/app.db")).is_err());
        declare_volumes(root.path(), &[]);
        assert!(confine(root.path(), Path::new("data/app.db")).is_err());
    }

    #[test]
    fn confine_accepts_a_symlink_that_stays_inside() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("real")).unwrap();
        symlink(root.path().join("real"), root.path().join("alias")).unwrap();
        assert!(confine(root.path(), Path::new("alias/x")).is_ok());
    }
}
