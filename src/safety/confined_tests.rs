//! Tests of the confined file operations: symlinks at any level, swaps
//! during a walk, volumes, FIFOs, hard links, renames.

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

#[test]
fn a_declared_volume_is_followed_and_nothing_beneath_it_is() {
    let (dir, _) = root();
    let volume = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(volume.path(), dir.path().join("data")).unwrap();
    symlink(elsewhere.path(), volume.path().join("out")).unwrap();
    fsutil::declare_volumes(dir.path(), &[PathBuf::from("data")]);
    let root = Root::open(dir.path()).unwrap();
    let d = root.create_dir_all(Path::new("data/sub"), 0o750, &mut Vec::new()).unwrap();
    d.create_new(OsStr::new("f"), 0o600).unwrap();
    assert!(volume.path().join("sub/f").is_file());
    let err = root.create_dir_all(Path::new("data/out/x"), 0o750, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("`data/out` is a symlink"), "{err}");
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none());
    fsutil::declare_volumes(dir.path(), &[]);
    assert!(Root::open(dir.path()).unwrap().open_dir(Path::new("data")).is_err(), "undeclared, it is a symlink");
}
