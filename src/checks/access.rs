//! Whether the application's account can use what the manifest declares:
//! search and write every declared dir, write every declared file and
//! database, and write the database's folder (SQLite creates its journal
//! there). The account is `[app] user`, else the user running preflight.
//! A check run as root that passes proves nothing about an app that runs
//! as someone else: that is what `[app] user` is for.
//!
//! Fixes: the owner's missing bits are added (`chmod`) when the path
//! belongs to the account and preflight may change it; run as root, a
//! declared path the account does not own is given to it (`chown`, then
//! the owner's bits). Folders above the declared paths are only reported.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::manifest::Manifest;
use crate::runtime::account::{self, Access, Account};
use crate::safety::{Fix, Op, Phase};

/// The account whose access is checked.
#[derive(Debug, Clone)]
pub struct Who {
    pub account: Account,
    /// From `[app] user` (else: the user running preflight).
    pub declared: bool,
}

impl Who {
    /// The account of `[app] user`, else the running user; `Err` says why
    /// the declared account cannot be used.
    pub fn of(manifest: &Manifest) -> Result<Who, String> {
        let Some(name) = manifest.app.as_ref().and_then(|a| a.user.as_deref()) else {
            return Ok(Who { account: Account::current(), declared: false });
        };
        match Account::lookup(name) {
            Ok(Some(account)) => Ok(Who { account, declared: true }),
            Ok(None) => Err(format!("[app] user {name:?} does not exist on this machine; create it or fix the name")),
            Err(e) => Err(format!("cannot look up [app] user {name:?}: {e}")),
        }
    }

    fn name(&self) -> String {
        if self.declared {
            format!("user {} (uid {})", self.account.name, self.account.uid)
        } else {
            format!("the user running preflight (uid {})", self.account.uid)
        }
    }
}

/// What a declared path must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Search and write: the app creates files in it.
    Dir,
    /// Write.
    File,
}

impl Need {
    fn access(self) -> Access {
        match self {
            Need::Dir => Access::WRITE_SEARCH,
            Need::File => Access::WRITE,
        }
    }

    /// Folders are settled before the files inside them are written.
    fn phase(self) -> Phase {
        match self {
            Need::Dir => Phase::Dirs,
            Need::File => Phase::Files,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Need::Dir => "search and write",
            Need::File => "write",
        }
    }
}

/// Why the account cannot use a path, and the fix when heal may make one.
#[derive(Debug)]
pub struct Denied {
    pub message: String,
    pub fix: Option<Fix>,
}

/// What stops `who` from using the existing declared path `rel` as `need`
/// says, or `None`. `declared_dirs` are reported on their own: a folder
/// above `rel` that is one of them is named, not fixed, here.
pub fn check(root: &Path, rel: &Path, need: Need, who: &Who, declared_dirs: &[PathBuf]) -> Option<Denied> {
    // Most paths looked at here do not exist (a database's journal files):
    // one stat settles those. Nothing it says is used unless the path is
    // then found to stay inside the root.
    let meta = fs::metadata(root.join(rel)).ok()?;
    let abs = fsutil::resolve(root, rel).ok()?;
    if let Some(denied) = unreachable(root, &abs, who, declared_dirs) {
        return Some(denied);
    }
    let access = need.access();
    if account::read_only_fs(&abs) {
        let message = format!("is on a read-only file system: {} cannot write it", who.name());
        return Some(Denied { message, fix: None });
    }
    if who.account.permits(&meta, access) {
        return None;
    }
    let message = format!("{} cannot {} it ({})", who.name(), need.verb(), describe(&meta));
    Some(Denied { fix: repair(rel, &meta, need, &who.account), message })
}

/// The first folder above `rel` the account cannot search, if any.
fn unreachable(root: &Path, abs: &Path, who: &Who, declared_dirs: &[PathBuf]) -> Option<Denied> {
    if who.account.is_root() {
        return None; // root searches every folder
    }
    let canonical = abs.canonicalize().ok()?;
    let mut above: Vec<&Path> = canonical.ancestors().skip(1).collect();
    above.reverse();
    let blocked =
        above.into_iter().find(|dir| fs::metadata(dir).is_ok_and(|m| !who.account.permits(&m, Access::SEARCH)))?;
    let meta = fs::metadata(blocked).ok()?;
    let canonical_root = root.canonicalize().ok()?;
    let declared = blocked.strip_prefix(&canonical_root).ok().filter(|r| declared_dirs.iter().any(|d| d == r));
    let message = match declared {
        Some(dir) => {
            format!("{} cannot reach it: {} is not searchable (see its own finding)", who.name(), dir.display())
        }
        None => format!(
            "{} cannot reach it: {} is not searchable ({}); preflight changes only declared paths",
            who.name(),
            blocked.display(),
            describe(&meta)
        ),
    };
    Some(Denied { message, fix: None })
}

fn describe(meta: &Metadata) -> String {
    format!("mode {:04o}, owner uid {}, group gid {}", fsutil::mode_of(meta), meta.uid(), meta.gid())
}

/// The ops that give `account` the access, when this process may run them.
fn repair(rel: &Path, meta: &Metadata, need: Need, account: &Account) -> Option<Fix> {
    let access = need.access();
    let running_as_root = fsutil::current_uid() == 0;
    let mode = fsutil::mode_of(meta);
    let with_bits = mode | access.owner_bits();
    let of = Some((meta.dev(), meta.ino()));
    let chmod = Op::SetMode { path: rel.to_path_buf(), mode: with_bits, of };
    if meta.uid() == account.uid {
        // The owner's bits are the owner's to set (and root's).
        let may = running_as_root || meta.uid() == fsutil::current_uid();
        return may.then(|| Fix::new(format!("chmod {with_bits:04o}"), need.phase(), vec![chmod]));
    }
    if !running_as_root {
        return None;
    }
    let chown = Op::SetOwner { path: rel.to_path_buf(), uid: account.uid, gid: account.gid, of };
    let mut ops = vec![chown];
    let mut action = format!("chown {}:{}", account.uid, account.gid);
    if with_bits != mode {
        ops.push(chmod);
        action.push_str(&format!(", chmod {with_bits:04o}"));
    }
    Some(Fix::new(action, need.phase(), ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn nobody() -> Who {
        let account = Account { name: "nobody".into(), uid: 65534, gid: 65534, groups: vec![65534] };
        Who { account, declared: true }
    }

    #[test]
    fn a_folder_the_app_cannot_write_is_reported_with_a_chown_as_root() {
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(root.path().join("data")).unwrap();
        let denied = check(root.path(), Path::new("data"), Need::Dir, &nobody(), &[]).expect("not writable");
        assert!(denied.message.contains("user nobody (uid 65534) cannot search and write it"), "{}", denied.message);
        let fix = denied.fix.map(|f| f.describe().join("; "));
        if fsutil::current_uid() == 0 {
            assert_eq!(fix.as_deref(), Some("chown 65534:65534 data"));
        } else {
            assert_eq!(fix, None, "only root may give a folder away");
        }
    }

    #[test]
    fn a_folder_above_that_blocks_the_way_is_named_not_fixed() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("data/inner")).unwrap();
        fs::set_permissions(root.path().join("data/inner"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::set_permissions(root.path().join("data"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        if fs::metadata(root.path().join("data")).unwrap().uid() == 65534 {
            return;
        }
        let declared = [PathBuf::from("data")];
        let denied = check(root.path(), Path::new("data/inner"), Need::Dir, &nobody(), &declared).unwrap();
        assert!(denied.message.contains("data is not searchable (see its own finding)"), "{}", denied.message);
        assert!(denied.fix.is_none());
        let denied = check(root.path(), Path::new("data/inner"), Need::Dir, &nobody(), &[]).unwrap();
        assert!(denied.message.contains("preflight changes only declared paths"), "{}", denied.message);
    }
}
