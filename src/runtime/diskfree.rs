//! Free space of the file system holding a path, via `statvfs(2)`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Space on one file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Available to an unprivileged user (`f_bavail`), which is what the
    /// application can actually use.
    pub available: u64,
    pub total: u64,
}

/// The space of the file system that holds `path`. A path that does not
/// exist yet is measured at its nearest existing ancestor.
pub fn space(path: &Path) -> io::Result<Space> {
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
    let c_path = CString::new(existing.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value for it.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is a valid, writable struct.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let fragment = stat.f_frsize as u64;
    Ok(Space {
        available: (stat.f_bavail as u64).saturating_mul(fragment),
        total: (stat.f_blocks as u64).saturating_mul(fragment),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_directory_has_a_size() {
        let dir = tempfile::tempdir().unwrap();
        let space = space(dir.path()).unwrap();
        assert!(space.total > 0);
        assert!(space.available <= space.total);
    }

    #[test]
    fn a_missing_path_is_measured_at_its_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let there = space(dir.path()).unwrap();
        let below = space(&dir.path().join("not/yet")).unwrap();
        assert_eq!(there.total, below.total);
    }
}
