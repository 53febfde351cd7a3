//! What the deployment provides rather than preflight: paths declared
//! `create = false` (a mounted volume, a restored database) and the mounts
//! a machine expects. Until they are there, nothing beneath them may be
//! created or changed: a database built in a volume's empty mount folder
//! would be hidden by the volume, and the app would start on it.
//! `run --retry-timeout` waits on `unready` before it heals anything.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::finding::{Finding, Findings, Kind};
use crate::manifest::{DirSpec, Manifest};
use crate::runtime::mounts;

/// A path the deployment must provide that is not there yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unready {
    /// Relative to the root.
    pub path: PathBuf,
    /// Why, e.g. `is missing` or `is not mounted yet`.
    pub why: String,
}

impl std::fmt::Display for Unready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.path.display(), self.why)
    }
}

/// Every path the deployment must provide that is not ready, in manifest
/// order: `create = false` dirs, files and databases that are missing, and
/// declared dirs expected to be mount points that are not mounted.
pub fn unready(manifest: &Manifest) -> Vec<Unready> {
    let root = &manifest.root;
    let mut out = unready_dirs(manifest);
    let files = manifest.files.iter().filter(|f| !f.create).map(|f| &f.path);
    let databases = manifest.databases.iter().filter(|d| !d.create).map(|d| &d.path);
    for path in files.chain(databases) {
        if fs::metadata(root.join(path)).is_err_and(|e| e.kind() == ErrorKind::NotFound) {
            out.push(Unready { path: path.clone(), why: "is missing (create = false: never created)".into() });
        }
    }
    out
}

/// Whether the deployment expects a mount at this dir: `volume = true`
/// with `create = false` says so in the manifest, and `/etc/fstab` says so
/// for the machine.
pub fn expects_mount(root: &Path, dir: &DirSpec) -> bool {
    let declared = dir.volume && !dir.create;
    declared || mounts::in_fstab(&root.join(&dir.path))
}

/// The state of one declared dir, when the deployment has not provided it.
pub fn dir_state(root: &Path, dir: &DirSpec) -> Option<Unready> {
    let abs = root.join(&dir.path);
    let unready = |why: &str| Some(Unready { path: dir.path.clone(), why: why.to_string() });
    let own = fs::symlink_metadata(&abs).ok()?;
    let link = own.file_type().is_symlink();
    // Only a symlink needs a second look, at what it points to.
    let meta = if link { fs::metadata(&abs) } else { Ok(own) };
    match meta {
        Err(e) if e.kind() == ErrorKind::NotFound && link => {
            return unready("is a symlink to a folder that does not exist (yet)")
        }
        Err(_) => return None,
        Ok(meta) if !meta.is_dir() => return None,
        Ok(_) => {}
    }
    // A symlink is the deployment's own pointer to the volume: it counts.
    if link || !expects_mount(root, dir) {
        return None;
    }
    match mounts::is_mount_point(&abs) {
        Ok(false) => unready("is not mounted yet (a plain folder on its parent's file system)"),
        _ => None,
    }
}

/// The declared dirs the deployment has not provided: missing with
/// `create = false`, or not mounted where a mount is expected.
fn unready_dirs(manifest: &Manifest) -> Vec<Unready> {
    let missing = |d: &&DirSpec| !d.create && fs::symlink_metadata(manifest.root.join(&d.path)).is_err();
    let mut out: Vec<Unready> = manifest
        .dirs
        .iter()
        .filter(missing)
        .map(|d| Unready { path: d.path.clone(), why: "is missing (create = false: never created)".into() })
        .collect();
    out.extend(manifest.dirs.iter().filter_map(|d| dir_state(&manifest.root, d)));
    out
}

/// Takes the fix away from every finding about a path beneath a dir the
/// deployment has not provided (and from every `.env` finding when the
/// `.env` file lies beneath one), saying which dir it waits for.
pub fn hold_back(manifest: &Manifest, findings: &mut Findings) {
    let waiting = unready_dirs(manifest);
    if waiting.is_empty() {
        return;
    }
    let env_file = manifest.env.as_ref().map(|e| e.file.as_path());
    for finding in findings.problems.iter_mut().filter(|f| f.fixable()) {
        let Some(subject) = subject(&finding.id) else { continue };
        let is_env = finding.id.starts_with(Kind::Env.prefix());
        let blocked = waiting.iter().find(|w| {
            let beneath = |p: &str| Path::new(p).starts_with(&w.path) && Path::new(p) != w.path;
            beneath(subject) || (is_env && env_file.is_some_and(|e| e.starts_with(&w.path)))
        });
        if let Some(w) = blocked {
            hold(finding, w);
        }
    }
}

fn hold(finding: &mut Finding, waiting: &Unready) {
    finding.fix = None;
    finding.message.push_str(&format!("; not repaired while {waiting}"));
}

/// The path part of a finding ID: after the kind's prefix. The whole rest
/// is returned (it may go on with `:column:…`); `Path::starts_with`
/// compares whole components, so a suffix never makes a false match of a
/// folder, and a path with `:` in it still matches its own folder.
fn subject(id: &str) -> Option<&str> {
    Kind::ALL.iter().find_map(|k| id.strip_prefix(k.prefix())).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_what_follows_the_kind() {
        assert_eq!(subject("db:data/app.db:table:t"), Some("data/app.db:table:t"));
        assert_eq!(subject("dir:data/attachments"), Some("data/attachments"));
        assert_eq!(subject("disk"), None);
    }

    #[test]
    fn a_missing_volume_dir_and_a_plain_folder_where_a_mount_belongs_are_unready() {
        let root = tempfile::tempdir().unwrap();
        let dir =
            |path: &str, create, volume| DirSpec { path: path.into(), mode: None, create, volume, severity: None };
        assert_eq!(dir_state(root.path(), &dir("data", false, true)), None, "missing is the dir check's");
        fs::create_dir(root.path().join("data")).unwrap();
        let state = dir_state(root.path(), &dir("data", false, true)).unwrap();
        assert!(state.why.contains("not mounted"), "{state}");
        assert_eq!(dir_state(root.path(), &dir("data", true, true)), None, "create = true expects no mount");
        assert_eq!(dir_state(root.path(), &dir("data", false, false)), None, "create = false alone: it exists");
        std::os::unix::fs::symlink(root.path().join("nowhere"), root.path().join("link")).unwrap();
        let state = dir_state(root.path(), &dir("link", false, true)).unwrap();
        assert!(state.why.contains("does not exist"), "{state}");
    }
}
