//! Whether a folder is a mount point now, and whether the machine expects
//! one there. A volume that is not mounted yet is an empty folder on the
//! parent's file system: writing into it would put an application's data
//! where the real volume later hides it.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Whether `dir` (an existing folder) is a mount point: another device
/// than its parent folder, or listed in `/proc/self/mountinfo` (a bind
/// mount of the same file system keeps the device number).
pub fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let dir = dir.canonicalize()?;
    let Some(parent) = dir.parent() else {
        return Ok(true); // `/` is always mounted
    };
    if fs::metadata(&dir)?.dev() != fs::metadata(parent)?.dev() {
        return Ok(true);
    }
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let listed = mountinfo_targets(&table).any(|target| target == dir);
    Ok(listed)
}

/// Whether `/etc/fstab` names `dir` as a mount target. The table is read
/// once per process, and `dir` resolved only when a target there has its
/// name: preflight runs on every start, and most folders are in no table.
pub fn in_fstab(dir: &Path) -> bool {
    static TARGETS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let targets =
        TARGETS.get_or_init(|| fstab_targets(&fs::read_to_string("/etc/fstab").unwrap_or_default()).collect());
    let named = |t: &&PathBuf| t.file_name().is_some() && t.file_name() == dir.file_name();
    if !targets.iter().any(|t| named(&t)) {
        return false;
    }
    dir.canonicalize().is_ok_and(|abs| targets.contains(&abs))
}

/// The mount points of a `/proc/self/mountinfo` text (its fifth field).
fn mountinfo_targets(text: &str) -> impl Iterator<Item = PathBuf> + '_ {
    text.lines().filter_map(|line| line.split(' ').nth(4)).map(unescape)
}

/// The mount targets of an fstab text (its second field), swap left out.
fn fstab_targets(text: &str) -> impl Iterator<Item = PathBuf> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter(|target| target.starts_with('/'))
        .map(unescape)
}

/// Both files write a space as `\040` (and a tab, newline, backslash as
/// their octal codes).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_gives_the_fifth_field_unescaped() {
        let text = "36 35 98:0 /mnt1 /mnt/my\\040volume rw,noatime master:1 - ext3 /dev/root rw\n\
                    22 1 0:21 / /proc rw - proc proc rw\n";
        let targets: Vec<PathBuf> = mountinfo_targets(text).collect();
        assert_eq!(targets, [PathBuf::from("/mnt/my volume"), PathBuf::from("/proc")]);
    }

    #[test]
    fn fstab_gives_mount_targets_without_comments_or_swap() {
        let text = "# <fs> <target> <type>\nUUID=1 / ext4 defaults 0 1\n/dev/sdb1 /srv/volumes/app ext4 nofail 0 2\n\
                    /swapfile none swap sw 0 0\n";
        let targets: Vec<PathBuf> = fstab_targets(text).collect();
        assert_eq!(targets, [PathBuf::from("/"), PathBuf::from("/srv/volumes/app")]);
    }

    #[test]
    fn the_root_is_a_mount_point_and_a_fresh_folder_is_not() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plain")).unwrap();
        assert!(!is_mount_point(&dir.path().join("plain")).unwrap());
    }
}
