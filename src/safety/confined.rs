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

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Uid, CWD};
use rustix::io::Errno;

use crate::fsutil::{self, describe};

/// The application root, opened once. Everything below is reached from it.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: Dir,
    /// The `volume = true` dirs declared for this root (relative): the one
    /// kind of symlink followed, at the volume's own path only.
    volumes: Vec<PathBuf>,
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
    /// symlink (the user chose it); nothing beneath it is, except a
    /// declared volume dir itself (`fsutil::declare_volumes`).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| with_path(e.into(), &format!("cannot open the root {}", path.display())))?;
        let volumes = fsutil::volumes(path);
        Ok(Root { path: path.to_path_buf(), dir: Dir { fd, rel: PathBuf::new() }, volumes })
    }

    /// The root's path, for messages and for programs that need a path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root folder itself.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The deepest declared volume `rel` lies in (or is), and the rest of
    /// `rel` beneath it.
    fn volume_of<'r>(&self, rel: &'r Path) -> Option<(&Path, &'r Path)> {
        let volume = self.volumes.iter().filter(|v| rel.starts_with(v)).max_by_key(|v| v.components().count())?;
        Some((volume, rel.strip_prefix(volume).ok()?))
    }

    /// A declared volume dir, opened following its own symlink (the
    /// manifest declared it may lead anywhere, a mount or a link); its
    /// parents are reached like any path. Created when missing and asked.
    fn open_volume(&self, volume: &Path, create: Option<(u32, &mut Vec<PathBuf>)>) -> io::Result<Dir> {
        let (parent, name) = split(volume)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let Some((mode, created)) = create else {
            let fd = rfs::openat(&self.open_dir(parent)?.fd, name, flags, Mode::empty())
                .map_err(|e| with_path(e.into(), &format!("cannot open {}", volume.display())))?;
            return Ok(Dir { fd, rel: volume.to_path_buf() });
        };
        let folder = self.create_dir_all(parent, mode, created)?;
        let fd = match rfs::openat(&folder.fd, name, flags, Mode::empty()) {
            Err(Errno::NOENT) => {
                match rfs::mkdirat(&folder.fd, name, Mode::from_raw_mode(mode)) {
                    Ok(()) => created.push(volume.to_path_buf()),
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(with_path(e.into(), &format!("cannot create {}", volume.display()))),
                }
                rfs::openat(&folder.fd, name, dir_flags(), Mode::empty())
            }
            other => other,
        };
        let fd = fd.map_err(|e| with_path(e.into(), &format!("cannot open {}", volume.display())))?;
        Ok(Dir { fd, rel: volume.to_path_buf() })
    }

    /// The folder at `rel`; it must exist and be reached without a symlink.
    pub fn open_dir(&self, rel: &Path) -> io::Result<Dir> {
        match self.volume_of(rel) {
            Some((volume, rest)) => self.open_volume(volume, None)?.open_dir_beneath(rest),
            None => self.dir.open_dir_beneath(rel),
        }
    }

    /// The folder at `rel`, created with `mode` where missing (each folder
    /// created is pushed to `created`, relative to the root).
    pub fn create_dir_all(&self, rel: &Path, mode: u32, created: &mut Vec<PathBuf>) -> io::Result<Dir> {
        match self.volume_of(rel) {
            Some((volume, rest)) => {
                self.open_volume(volume, Some((mode, &mut *created)))?.walk(rest, Some((mode, created)))
            }
            None => self.dir.walk(rel, Some((mode, created))),
        }
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

    /// What `rel` is, not following a final symlink (but a volume dir is
    /// its target); `None` when missing (its folder included).
    pub fn stat(&self, rel: &Path) -> io::Result<Option<Stat>> {
        if self.volumes.iter().any(|v| v == rel) {
            return match self.open_volume(rel, None) {
                Ok(dir) => Ok(Some(rfs::fstat(&dir.fd)?)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
        }
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

    /// Sets the permission bits of `rel` (see `Dir::chmod`; a volume dir is
    /// changed through its own handle). Returns the bits it had.
    pub fn chmod(&self, rel: &Path, mode: u32) -> io::Result<u32> {
        if self.volumes.iter().any(|v| v == rel) {
            let dir = self.open_volume(rel, None)?;
            let before = rfs::fstat(&dir.fd)?.st_mode & 0o7777;
            rfs::fchmod(&dir.fd, Mode::from_raw_mode(mode))?;
            return Ok(before);
        }
        let (dir, name) = self.parent(rel)?;
        dir.chmod(&name, mode)
    }

    /// Gives `rel` to `uid`:`gid` (see `Dir::chown`; a volume dir through
    /// its own handle). Returns the owner it had.
    pub fn chown(&self, rel: &Path, uid: u32, gid: u32) -> io::Result<(u32, u32)> {
        if self.volumes.iter().any(|v| v == rel) {
            let dir = self.open_volume(rel, None)?;
            let before = rfs::fstat(&dir.fd)?;
            rfs::fchown(&dir.fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
            return Ok((before.st_uid, before.st_gid));
        }
        let (dir, name) = self.parent(rel)?;
        dir.chown(&name, uid, gid)
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
    /// umask). Returns whether it was created; an existing folder is fine,
    /// and left with the mode it has: it is not this call's.
    pub fn mkdir(&self, name: &OsStr, mode: Option<u32>) -> io::Result<bool> {
        let created = match rfs::mkdirat(&self.fd, one(name)?, Mode::from_raw_mode(mode.unwrap_or(0o777))) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(with_path(e.into(), &format!("cannot create {}", self.shown(name).display()))),
        };
        let dir = self.open_dir(name)?;
        if let Some(mode) = mode.filter(|_| created) {
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

    /// Gives `name` (a file or a folder, never through a symlink) to
    /// `uid`:`gid`. A file with several links is refused. Returns the
    /// owner it had.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<(u32, u32)> {
        let shown = self.shown(name);
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&self.fd, one(name)?, flags, Mode::empty())
            .map_err(|e| with_path(e.into(), &format!("cannot open {}", shown.display())))?;
        let stat = rfs::fstat(&fd)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {}
            FileType::RegularFile if stat.st_nlink > 1 => return Err(linked(&shown, stat.st_nlink)),
            FileType::RegularFile => {}
            other => return Err(refused(&shown, &format!("is not a regular file or folder ({})", describe(other)))),
        }
        // AT_EMPTY_PATH acts on the O_PATH handle itself: the inode checked.
        let (owner, group) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        rfs::chownat(&fd, "", owner, group, AtFlags::EMPTY_PATH)
            .map_err(|e| with_path(e.into(), &format!("cannot chown {}", shown.display())))?;
        Ok((stat.st_uid, stat.st_gid))
    }

    /// Removes `name` and everything beneath it, never following a symlink
    /// (one inside is removed as a link). Already gone is fine.
    pub fn remove_all(&self, name: &OsStr) -> io::Result<()> {
        let Some(stat) = self.stat(name)? else { return Ok(()) };
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return self.unlink(name);
        }
        let folder = self.open_dir(name)?;
        for (entry, kind) in folder.entries()? {
            match kind {
                FileType::Directory | FileType::Unknown => folder.remove_all(&entry)?,
                _ => folder.unlink(&entry)?,
            }
        }
        self.rmdir(name)
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
#[path = "confined_tests.rs"]
mod tests;
