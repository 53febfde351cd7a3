//! Confined file operations: every create, write, rename, chmod and delete
//! heal makes is relative to a directory handle opened beneath the root,
//! one component at a time, never following a symlink (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel has it, else
//! `openat` with `O_NOFOLLOW` per component). Paths are never re-resolved
//! from a string after a check: a folder swapped for a symlink at any
//! moment can only make an operation fail, never act outside the root.
//!
//! Files are opened `O_NONBLOCK | O_NOFOLLOW` and checked with `fstat`
//! before use: a FIFO, socket or device where a file is expected is
//! refused at once instead of blocking. A file changed in place (touched,
//! chmodded, appended to) must have a single link: another name of it may
//! live outside the root.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use crate::fsutil::describe;

/// The application root, opened once. Everything below is reached from it.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: Dir,
}

/// A folder beneath the root, held open: what is done through it happens
/// in that folder, wherever it has been moved or however it was reached.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// Relative to the root, for messages.
    rel: PathBuf,
}

/// Identity of a file: device and inode.
pub type Identity = (u64, u64);

impl Root {
    /// Opens the root folder. The root itself may be reached through a
    /// symlink (the user chose it); nothing beneath it is.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| with_path(e.into(), &format!("cannot open the root {}", path.display())))?;
        Ok(Root { path: path.to_path_buf(), dir: Dir { fd, rel: PathBuf::new() } })
    }

    /// The root's path, for messages and for programs that need a path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root folder itself.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The folder at `rel`; it must exist and be reached without a symlink.
    pub fn open_dir(&self, rel: &Path) -> io::Result<Dir> {
        self.dir.open_dir_beneath(rel)
    }

    /// The folder at `rel`, created with `mode` where missing (each folder
    /// created is pushed to `created`, relative to the root).
    pub fn create_dir_all(&self, rel: &Path, mode: u32, created: &mut Vec<PathBuf>) -> io::Result<Dir> {
        self.dir.walk(rel, Some((mode, created)))
    }

    /// The folder holding `rel` and the last component's name.
    pub fn parent(&self, rel: &Path) -> io::Result<(Dir, OsString)> {
        let (parent, name) = split(rel)?;
        Ok((self.open_dir(parent)?, name.to_os_string()))
    }

    /// Like `parent`, creating missing folders (mode 0777 less the umask).
    pub fn create_parent(&self, rel: &Path, created: &mut Vec<PathBuf>) -> io::Result<(Dir, OsString)> {
        let (parent, name) = split(rel)?;
        Ok((self.create_dir_all(parent, 0o777, created)?, name.to_os_string()))
    }

    /// What `rel` is, not following a final symlink; `None` when missing
    /// (its folder included).
    pub fn stat(&self, rel: &Path) -> io::Result<Option<Stat>> {
        match self.parent(rel) {
            Ok((dir, name)) => dir.stat(&name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The regular file at `rel`, open for reading; `None` when missing.
    pub fn open_read(&self, rel: &Path) -> io::Result<Option<File>> {
        match self.parent(rel) {
            Ok((dir, name)) => dir.open_read(&name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether `openat2` is known not to work here (old kernel, seccomp).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

impl Dir {
    /// The folder's path relative to the root.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// A second handle on the same folder.
    pub fn try_clone(&self) -> io::Result<Dir> {
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?;
        Ok(Dir { fd, rel: self.rel.clone() })
    }

    fn shown(&self, name: &OsStr) -> PathBuf {
        self.rel.join(name)
    }

    /// The folder at `rel` beneath this one, without following a symlink.
    pub fn open_dir_beneath(&self, rel: &Path) -> io::Result<Dir> {
        if rel.as_os_str().is_empty() || rel == Path::new(".") {
            let fd = rfs::openat(&self.fd, ".", dir_flags(), Mode::empty())?;
            return Ok(Dir { fd, rel: self.rel.clone() });
        }
        if !NO_OPENAT2.load(Ordering::Relaxed) && plain(rel) {
            let resolve =
                rfs::ResolveFlags::BENEATH | rfs::ResolveFlags::NO_SYMLINKS | rfs::ResolveFlags::NO_MAGICLINKS;
            match rfs::openat2(&self.fd, rel, dir_flags(), Mode::empty(), resolve) {
                Ok(fd) => return Ok(Dir { fd, rel: self.rel.join(rel) }),
                Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::OPNOTSUPP) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                // The walk below finds which component is at fault, and is as safe.
                Err(_) => {}
            }
        }
        self.walk(rel, None)
    }

    /// Walks `rel` one component at a time with `O_NOFOLLOW`, creating
    /// missing folders when asked.
    fn walk(&self, rel: &Path, mut create: Option<(u32, &mut Vec<PathBuf>)>) -> io::Result<Dir> {
        let mut current = rfs::openat(&self.fd, ".", dir_flags(), Mode::empty())?;
        let mut shown = self.rel.clone();
        for component in rel.components() {
            let name = match component {
                Component::Normal(name) => name,
                Component::CurDir => continue,
                _ => return Err(refused(rel, "leaves the root")),
            };
            shown.push(name);
            let opened = match rfs::openat(&current, name, dir_flags(), Mode::empty()) {
                Err(Errno::NOENT) if create.is_some() => {
                    let (mode, created) = create.as_mut().expect("checked above");
                    match rfs::mkdirat(&current, name, Mode::from_raw_mode(*mode)) {
                        Ok(()) => created.push(shown.clone()),
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(with_path(e.into(), &format!("cannot create {}", shown.display()))),
                    }
                    rfs::openat(&current, name, dir_flags(), Mode::empty())
                }
                other => other,
            };
            current = match opened {
                Ok(fd) => fd,
                Err(e) => return Err(not_a_folder(&current, name, &shown, e)),
            };
        }
        Ok(Dir { fd: current, rel: shown })
    }

    /// What `name` is, not following a symlink; `None` when missing.
    pub fn stat(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        match rfs::statat(&self.fd, one(name)?, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(with_path(e.into(), &format!("cannot inspect {}", self.shown(name).display()))),
        }
    }

    /// The folder `name` in this one.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        self.open_dir_beneath(Path::new(one(name)?))
    }

    /// Opens the regular file `name` for reading; `None` when missing.
    pub fn open_read(&self, name: &OsStr) -> io::Result<Option<File>> {
        match self.open_file(name, OFlags::RDONLY, None) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens `name` to change it in place (append, lock), creating it with
    /// `mode` when `create` is set. Refused unless it is a regular file
    /// with a single link.
    pub fn open_in_place(&self, name: &OsStr, flags: OFlags, create: Option<u32>) -> io::Result<File> {
        let file = self.open_file(name, flags, create)?;
        single_link(&file, &self.shown(name))?;
        Ok(file)
    }

    /// The identity of `name`, which is about to be changed in place by a
    /// program that opens it by path (SQLite): refused unless it is a
    /// regular file with a single link.
    pub fn identity_in_place(&self, name: &OsStr) -> io::Result<Identity> {
        let shown = self.shown(name);
        let Some(stat) = self.stat(name)? else {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} is gone", shown.display())));
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile if stat.st_nlink > 1 => Err(linked(&shown, stat.st_nlink)),
            FileType::RegularFile => Ok((stat.st_dev, stat.st_ino)),
            other => Err(refused(&shown, &format!("is not a regular file ({})", describe(other)))),
        }
    }

    /// Creates `name`, which must not exist, for writing.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&self.fd, one(name)?, flags, Mode::from_raw_mode(mode))
            .map_err(|e| with_path(e.into(), &format!("cannot create {}", self.shown(name).display())))?;
        Ok(File::from(fd))
    }

    /// Opens a file without following a symlink and without blocking, and
    /// refuses anything but a regular file before a byte is read.
    fn open_file(&self, name: &OsStr, flags: OFlags, create: Option<u32>) -> io::Result<File> {
        let shown = self.shown(name);
        let mut flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        if create.is_some() {
            flags |= OFlags::CREATE;
        }
        let mode = Mode::from_raw_mode(create.unwrap_or(0));
        let fd = match rfs::openat(&self.fd, one(name)?, flags, mode) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Err(refused(&shown, "is a symlink")),
            Err(Errno::NXIO) => return Err(refused(&shown, "is not a regular file (a FIFO or a socket)")),
            Err(e) => return Err(with_path(e.into(), &format!("cannot open {}", shown.display()))),
        };
        let stat = rfs::fstat(&fd)?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(refused(&shown, &format!("is not a regular file ({})", describe(kind))));
        }
        // Blocking again for ordinary reads and writes.
        rfs::fcntl_setfl(&fd, rfs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
        Ok(File::from(fd))
    }

    /// Creates the folder `name` with exactly `mode` (not narrowed by the
    /// umask). Returns whether it was created; an existing folder is fine.
    pub fn mkdir(&self, name: &OsStr, mode: Option<u32>) -> io::Result<bool> {
        let created = match rfs::mkdirat(&self.fd, one(name)?, Mode::from_raw_mode(mode.unwrap_or(0o777))) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(with_path(e.into(), &format!("cannot create {}", self.shown(name).display()))),
        };
        let dir = self.open_dir(name)?;
        if let Some(mode) = mode {
            rfs::fchmod(&dir.fd, Mode::from_raw_mode(mode))?;
        }
        Ok(created)
    }

    /// Removes the file (or symlink) `name` from this folder.
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        rfs::unlinkat(&self.fd, one(name)?, AtFlags::empty())
            .map_err(|e| with_path(e.into(), &format!("cannot remove {}", self.shown(name).display())))
    }

    /// Removes the empty folder `name`.
    pub fn rmdir(&self, name: &OsStr) -> io::Result<()> {
        rfs::unlinkat(&self.fd, one(name)?, AtFlags::REMOVEDIR)
            .map_err(|e| with_path(e.into(), &format!("cannot remove {}", self.shown(name).display())))
    }

    /// Renames `from` to `to`, both in this folder. Without `replace`, an
    /// existing `to` makes it fail (`AlreadyExists`).
    pub fn rename(&self, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
        let (from, to) = (one(from)?, one(to)?);
        let result = if replace {
            rfs::renameat(&self.fd, from, &self.fd, to)
        } else {
            match rfs::renameat_with(&self.fd, from, &self.fd, to, rfs::RenameFlags::NOREPLACE) {
                // A file system without RENAME_NOREPLACE: link then unlink,
                // which also fails when `to` exists.
                Err(Errno::INVAL | Errno::NOSYS) => rfs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty())
                    .and_then(|()| rfs::unlinkat(&self.fd, from, AtFlags::empty())),
                other => other,
            }
        };
        result.map_err(|e| with_path(e.into(), &format!("cannot rename into {}", self.shown(to).display())))
    }

    /// Sets the permission bits of `name` (a file or a folder, never
    /// through a symlink). A file with several links is refused. Returns
    /// the bits it had.
    pub fn chmod(&self, name: &OsStr, mode: u32) -> io::Result<u32> {
        let shown = self.shown(name);
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&self.fd, one(name)?, flags, Mode::empty())
            .map_err(|e| with_path(e.into(), &format!("cannot open {}", shown.display())))?;
        let stat = rfs::fstat(&fd)?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        match kind {
            FileType::Directory => {}
            FileType::RegularFile if stat.st_nlink > 1 => return Err(linked(&shown, stat.st_nlink)),
            FileType::RegularFile => {}
            other => return Err(refused(&shown, &format!("is not a regular file or folder ({})", describe(other)))),
        }
        // An O_PATH handle cannot be fchmod-ed; its /proc entry names
        // exactly that inode, so the change lands on what was checked.
        let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        match rfs::chmodat(CWD, proc.as_str(), Mode::from_raw_mode(mode), AtFlags::empty()) {
            Ok(()) => {}
            Err(Errno::NOENT) => {
                // No /proc: an ordinary handle on the same inode.
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
                let again = rfs::openat(&self.fd, one(name)?, flags, Mode::empty())?;
                let now = rfs::fstat(&again)?;
                if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino) {
                    return Err(refused(&shown, "changed while it was being changed"));
                }
                rfs::fchmod(&again, Mode::from_raw_mode(mode))?;
            }
            Err(e) => return Err(with_path(e.into(), &format!("cannot chmod {}", shown.display()))),
        }
        Ok(stat.st_mode & 0o7777)
    }

    /// Sets the modification time of `name` to now, creating it empty
    /// (0666 less the umask) when missing. Returns whether it was created.
    pub fn touch(&self, name: &OsStr) -> io::Result<bool> {
        let existed = self.stat(name)?.is_some();
        let file = self.open_in_place(name, OFlags::WRONLY, Some(0o666))?;
        file.set_modified(std::time::SystemTime::now())?;
        Ok(!existed)
    }

    /// Makes the folder's entries durable.
    pub fn sync(&self) -> io::Result<()> {
        rfs::fsync(&self.fd).map_err(Into::into)
    }

    /// The names in this folder, with their types as the folder lists them.
    pub fn entries(&self) -> io::Result<Vec<(OsString, FileType)>> {
        let mut out = Vec::new();
        for entry in rfs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                out.push((name.to_os_string(), entry.file_type()));
            }
        }
        Ok(out)
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The identity of an open file, refused unless it has a single link.
pub fn single_link(file: &File, shown: &Path) -> io::Result<Identity> {
    let stat = rfs::fstat(file)?;
    if stat.st_nlink > 1 {
        return Err(linked(shown, stat.st_nlink));
    }
    Ok((stat.st_dev, stat.st_ino))
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Only `Normal` components (and `.`): what `openat2` can take as is.
fn plain(rel: &Path) -> bool {
    rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A single path component: no separator, not `.` or `..`.
fn one(name: &OsStr) -> io::Result<&OsStr> {
    if name.is_empty() || name == "." || name == ".." || name.as_bytes().contains(&b'/') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a file name")));
    }
    Ok(name)
}

/// `rel` split into its folder and its last component.
fn split(rel: &Path) -> io::Result<(&Path, &OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) if plain(rel) => Ok((parent, name)),
        _ => Err(refused(rel, "is not a path beneath the root")),
    }
}

/// Why the component `name` (in `parent`) could not be opened as a folder.
fn not_a_folder(parent: &OwnedFd, name: &OsStr, shown: &Path, error: Errno) -> io::Error {
    if matches!(error, Errno::LOOP | Errno::NOTDIR) {
        if let Ok(stat) = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            return match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => refused(shown, "is a symlink"),
                other => refused(shown, &format!("is not a folder ({})", describe(other))),
            };
        }
    }
    with_path(error.into(), &format!("cannot open {}", shown.display()))
}

/// An operation refused to stay inside the root or on a regular file.
fn refused(shown: &Path, why: &str) -> io::Error {
    let hint = if why.contains("symlink") {
        "; heal never follows a symlink beneath the root, so it cannot act outside it"
    } else {
        ""
    };
    io::Error::new(io::ErrorKind::PermissionDenied, format!("`{}` {why}{hint}", shown.display()))
}

fn linked(shown: &Path, links: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "`{}` has {links} hard links (another may be outside the root); it is not changed in place",
            shown.display()
        ),
    )
}

fn with_path(error: io::Error, context: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn folders_are_created_and_reopened_beneath_the_root() {
        let (dir, root) = root();
        let mut created = Vec::new();
        let d = root.create_dir_all(Path::new("a/b"), 0o750, &mut created).unwrap();
        assert_eq!(created, [Path::new("a"), Path::new("a/b")]);
        assert_eq!(d.rel(), Path::new("a/b"));
        d.create_new(OsStr::new("f"), 0o600).unwrap();
        assert!(dir.path().join("a/b/f").is_file());
        assert!(root.open_dir(Path::new("a/b")).is_ok());
    }

    #[test]
    fn a_symlink_at_any_level_is_refused() {
        let (dir, root) = root();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        symlink(outside.path(), dir.path().join("a/link")).unwrap();
        symlink(outside.path(), dir.path().join("top")).unwrap();
        for rel in ["a/link", "top", "top/x"] {
            let err = root.open_dir(Path::new(rel)).unwrap_err();
            assert!(err.to_string().contains("is a symlink"), "{rel}: {err}");
        }
        let err = root.create_dir_all(Path::new("top/new"), 0o700, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`top` is a symlink"), "{err}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn a_folder_swapped_during_the_walk_never_leads_outside() {
        // Both ways in: openat2 (when the kernel has it) and the
        // component walk that replaces it elsewhere.
        let (dir, root) = root();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/data")).unwrap();
        symlink(outside.path(), dir.path().join("a/link")).unwrap();
        let (a, b) = (dir.path().join("a/data"), dir.path().join("a/link"));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let swapper = {
            let stop = stop.clone();
            let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
            let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: two valid NUL-terminated paths.
                    unsafe {
                        libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE)
                    };
                }
            })
        };
        let mut opened = 0;
        for i in 0..4000 {
            let rel = Path::new("a/data");
            let found = if i % 2 == 0 { root.open_dir(rel) } else { root.dir().walk(rel, None) };
            if let Ok(d) = found {
                opened += 1;
                let _ = d.create_new(OsStr::new(&format!("f{i}")), 0o600);
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(opened > 0, "the folder was never reached");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none(), "a file was created outside");
    }

    #[test]
    fn dot_dot_and_absolute_paths_are_refused() {
        let (_dir, root) = root();
        assert!(root.open_dir(Path::new("../x")).is_err());
        assert!(root.open_dir(Path::new("/tmp")).is_err());
        assert!(root.parent(Path::new("a/../../x")).is_err());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (dir, root) = root();
        let fifo = dir.path().join("f");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = root.open_read(Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = root.dir().open_in_place(OsStr::new("f"), OFlags::WRONLY, Some(0o600)).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
    }

    #[test]
    fn a_file_with_two_links_is_not_changed_in_place() {
        let (dir, root) = root();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("beat"), b"").unwrap();
        std::fs::hard_link(outside.path().join("beat"), dir.path().join("beat")).unwrap();
        let before = std::fs::metadata(outside.path().join("beat")).unwrap();
        assert!(root.dir().touch(OsStr::new("beat")).unwrap_err().to_string().contains("2 hard links"));
        assert!(root.dir().chmod(OsStr::new("beat"), 0o600).is_err());
        let after = std::fs::metadata(outside.path().join("beat")).unwrap();
        assert_eq!(before.modified().unwrap(), after.modified().unwrap());
        assert_eq!(before.permissions(), after.permissions());
    }

    #[test]
    fn chmod_does_not_follow_a_symlink() {
        let (dir, root) = root();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("t"), b"").unwrap();
        symlink(outside.path().join("t"), dir.path().join("l")).unwrap();
        assert!(root.dir().chmod(OsStr::new("l"), 0o777).is_err());
        std::fs::write(dir.path().join("f"), b"").unwrap();
        root.dir().chmod(OsStr::new("f"), 0o640).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.path().join("f")).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn rename_without_replace_keeps_an_existing_target() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("a"), b"new").unwrap();
        std::fs::write(dir.path().join("b"), b"old").unwrap();
        let err = root.dir().rename(OsStr::new("a"), OsStr::new("b"), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"old");
        root.dir().rename(OsStr::new("a"), OsStr::new("b"), true).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"new");
    }
}
