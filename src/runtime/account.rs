//! Who will use the declared paths: the `[app] user` account (looked up
//! with getpwnam and getgrouplist) or the user running preflight, and what
//! the permission bits let that account do. ACLs are not read: the bits
//! are what `chmod` and `chown` can fix, and what heal may change.

use std::ffi::{CStr, CString};
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// An account and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Every group, the primary one included.
    pub groups: Vec<u32>,
}

/// What an account must be able to do with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub write: bool,
    /// Search a folder (or execute a file).
    pub search: bool,
}

impl Access {
    pub const WRITE: Access = Access { write: true, search: false };
    pub const SEARCH: Access = Access { write: false, search: true };
    pub const WRITE_SEARCH: Access = Access { write: true, search: true };

    /// The permission bits this access needs, as owner (`0o300` for write
    /// and search), shifted for group (`>> 3`) and others (`>> 6`).
    pub fn owner_bits(self) -> u32 {
        (if self.write { 0o200 } else { 0 }) | (if self.search { 0o100 } else { 0 })
    }
}

impl Account {
    /// The account named `name`, `Ok(None)` when there is none.
    pub fn lookup(name: &str) -> io::Result<Option<Account>> {
        let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: `passwd` is plain data; getpwnam_r fills it with
            // pointers into `buf`, which outlives every use below.
            let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            // SAFETY: every pointer is valid for the call; the length is buf's.
            let rc =
                unsafe { libc::getpwnam_r(c_name.as_ptr(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
            if rc == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 2, 0);
                continue;
            }
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            if result.is_null() {
                return Ok(None);
            }
            let groups = group_list(&c_name, pwd.pw_gid);
            // SAFETY: pw_name points to a NUL-terminated string inside buf.
            let name = unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned();
            return Ok(Some(Account { name, uid: pwd.pw_uid, gid: pwd.pw_gid, groups }));
        }
    }

    /// The name of the account with `uid`, if there is one.
    pub fn name_of(uid: u32) -> Option<String> {
        let mut buf = vec![0u8; 4096];
        // SAFETY: as in `lookup`: plain data, filled with pointers into buf.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the length is buf's.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: pw_name points to a NUL-terminated string inside buf.
        Some(unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned())
    }

    /// The user running preflight (effective IDs and supplementary groups).
    pub fn current() -> Account {
        // SAFETY: these calls have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut groups = vec![gid];
        // SAFETY: a zero-length call only returns the count.
        let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        if count > 0 {
            let mut list = vec![0 as libc::gid_t; count as usize];
            // SAFETY: list holds `count` entries.
            let n = unsafe { libc::getgroups(count, list.as_mut_ptr()) };
            groups.extend(list.into_iter().take(n.max(0) as usize));
        }
        groups.sort_unstable();
        groups.dedup();
        Account { name: format!("uid {uid}"), uid, gid, groups }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the permission bits of `meta` grant `access` to this
    /// account. The owner's bits apply to the owner even when it is root
    /// (a read-only file was made so on purpose); root may use what others
    /// own, as the kernel lets it.
    pub fn permits(&self, meta: &Metadata, access: Access) -> bool {
        let mode = meta.mode();
        let want = access.owner_bits();
        if meta.uid() == self.uid {
            mode & want == want
        } else if self.is_root() {
            true
        } else if self.groups.contains(&meta.gid()) {
            mode & (want >> 3) == want >> 3
        } else {
            mode & (want >> 6) == want >> 6
        }
    }
}

/// Every group of `user` (primary `gid` included), from getgrouplist.
fn group_list(user: &CStr, gid: u32) -> Vec<u32> {
    let mut count: libc::c_int = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; count as usize];
        let asked = count;
        // SAFETY: groups holds `count` entries; getgrouplist writes at most that many and sets count.
        let rc = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            groups.sort_unstable();
            groups.dedup();
            return groups;
        }
        if count <= asked {
            count = asked * 2; // some libcs do not say how many are needed
        }
        if count > 65536 {
            return vec![gid];
        }
    }
}

/// Whether the file system holding `path` is mounted read-only: then no
/// account may write there, whatever the bits say.
pub fn read_only_fs(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: statvfs is plain data, filled by the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is valid for the call.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_flag & libc::ST_RDONLY != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn root_is_found_with_its_group() {
        let root = Account::lookup("root").unwrap().expect("every system has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        assert_eq!(Account::lookup("no-such-user-preflight").unwrap(), None);
        assert_eq!(Account::name_of(0).as_deref(), Some("root"));
    }

    #[test]
    fn bits_are_read_as_owner_group_or_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let meta = |mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            std::fs::metadata(&path).unwrap()
        };
        let owner = std::fs::metadata(&path).unwrap();
        let me = Account { name: "me".into(), uid: owner.uid(), gid: 4242, groups: vec![4242] };
        let groupie = Account { name: "g".into(), uid: owner.uid() + 1, gid: owner.gid(), groups: vec![owner.gid()] };
        let other = Account { name: "o".into(), uid: owner.uid() + 2, gid: 4343, groups: vec![4343] };
        assert!(me.permits(&meta(0o600), Access::WRITE));
        assert!(!me.permits(&meta(0o400), Access::WRITE));
        assert!(groupie.permits(&meta(0o620), Access::WRITE) && !groupie.permits(&meta(0o602), Access::WRITE));
        assert!(other.permits(&meta(0o602), Access::WRITE) && !other.permits(&meta(0o620), Access::WRITE));
        assert!(!other.permits(&meta(0o606), Access::WRITE_SEARCH), "search needs x");
    }
}
