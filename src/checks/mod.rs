//! The checks: one module per kind of thing a manifest declares, each
//! turning (manifest entries, disk) into findings. They never print and
//! never change the disk; a fix they propose is data for the planner.
//! `REGISTRY` is the one place a new kind is added.

mod access;
mod command;
mod database;
mod dirs;
mod disk;
mod env;
mod files;
mod heartbeat;
mod json_integrity;
mod jsonl;
mod locks;
mod pidfile;
mod provided;
mod prune;

use std::path::Path;

pub use env::parse as parse_env;
pub use env::variable as env_variable;
pub use provided::{unready, Unready};

use crate::db;
use crate::finding::{Findings, Kind, Severity};
use crate::manifest::{Manifest, Pattern};

/// Which command-line filter a check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Files, directories, `.env`, runtime files (kept by `--fs-only`).
    Files,
    /// SQLite databases (kept by `--db-only`).
    Database,
    /// Tools and machine resources (dropped by both filters).
    System,
}

/// Options that change what checks look at or may propose.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Table rebuilds for type/nullability/default changes may be proposed.
    pub allow_rebuild: bool,
    /// `[[command]]` entries are skipped entirely.
    pub no_commands: bool,
    /// Databases get a full `PRAGMA quick_check` whatever their size or
    /// `integrity` setting (`--deep`).
    pub deep: bool,
    /// What the database engines keep between the passes of one run.
    pub cache: db::Cache,
    /// Fixes of logs carry a hash of the bytes the check read, which takes
    /// a second read: only a heal about to apply them needs it.
    pub fingerprint_logs: bool,
}

/// What a check sees.
pub struct CheckCtx<'a> {
    pub manifest: &'a Manifest,
    pub root: &'a Path,
    pub options: &'a CheckOptions,
    /// The account whose access is checked, looked up once per pass.
    who: std::sync::OnceLock<Result<access::Who, String>>,
}

impl CheckCtx<'_> {
    /// `access::Who::of` the manifest, the same for every check of a pass.
    pub fn who(&self) -> &Result<access::Who, String> {
        self.who.get_or_init(|| access::Who::of(self.manifest))
    }
}

/// One kind of check.
pub trait Check: Sync {
    /// Its kind, which fixes the prefix of every finding ID it makes
    /// (`dir:`): checks that `--only` cannot select are not run at all.
    fn kind(&self) -> Kind;
    fn scope(&self) -> Scope;
    /// Inspects the disk and pushes findings (and passes) into `out`.
    /// An `Err` means the check could not run at all (for example, a schema
    /// file named by the manifest does not load): the run stops with exit 1.
    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()>;
}

/// Every kind of check, in report order.
pub const REGISTRY: &[&dyn Check] = &[
    &env::EnvCheck,
    &dirs::DirCheck,
    &files::FileCheck,
    &json_integrity::JsonSchemaCheck,
    &jsonl::JsonlCheck,
    &database::DatabaseCheck,
    &heartbeat::HeartbeatCheck,
    &locks::LockCheck,
    &pidfile::PidfileCheck,
    &prune::PruneCheck,
    &command::CommandCheck,
    &disk::DiskCheck,
];

/// Which checks and findings a run covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub db_only: bool,
    pub fs_only: bool,
    /// Finding IDs or prefixes; empty means all.
    pub only: Vec<String>,
}

impl Selection {
    fn includes_scope(&self, scope: Scope) -> bool {
        match scope {
            Scope::Database => !self.fs_only,
            Scope::Files => !self.db_only,
            Scope::System => !self.db_only && !self.fs_only,
        }
    }

    /// Whether some ID starting with `prefix` could be selected by `--only`.
    fn may_select(&self, prefix: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o.starts_with(prefix) || prefix.starts_with(o.as_str()))
    }

    /// An ID is selected when it equals an `--only` value or starts with
    /// it, or when it is about the whole entry a narrower value lies in.
    pub fn includes_id(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| id.starts_with(p.as_str()) || encloses(id, p))
    }

    /// The `--only` values that can match nothing the manifest declares (a
    /// typo such as `dir:date`): an argument error, since a launcher would
    /// otherwise start the app on a run that checked nothing.
    pub fn unmatched<'a>(&'a self, manifest: &Manifest) -> Vec<&'a str> {
        if self.only.is_empty() {
            return Vec::new(); // nothing to match: the `.env` is not read for it
        }
        let declared = declared_ids(manifest);
        self.only.iter().map(String::as_str).filter(|value| !declared.iter().any(|d| d.may_match(value))).collect()
    }
}

/// Whether finding `id` is about the whole entry that `only` lies in: the
/// entry itself (`db:app.db` for `db:app.db:table:t`: nothing in a missing
/// database can be fixed) or what must happen before anything in it can
/// be read (its crash recovery, `db:app.db:recovery`).
fn encloses(id: &str, only: &str) -> bool {
    let entry = id.strip_suffix(":recovery").unwrap_or(id);
    only.strip_prefix(entry).is_some_and(|rest| rest.starts_with(':'))
}

/// The ID a manifest entry's findings start with, and for lock globs the
/// pattern their per-file IDs follow.
struct DeclaredId {
    id: String,
    files: Option<Pattern>,
}

impl DeclaredId {
    fn may_match(&self, value: &str) -> bool {
        let id = self.id.as_str();
        let within = value.strip_prefix(id).is_some_and(|rest| rest.is_empty() || rest.starts_with(':'));
        let matched_file = self.files.as_ref().is_some_and(|m| {
            value.strip_prefix(Kind::Lock.prefix()).is_some_and(|rest| m.is_match(rest.split(':').next().unwrap_or("")))
        });
        id.starts_with(value) || within || matched_file
    }
}

/// The base ID of every entry: findings are this ID or start with it and `:`.
fn declared_ids(manifest: &Manifest) -> Vec<DeclaredId> {
    let plain = |id: String| DeclaredId { id, files: None };
    let mut ids = Vec::new();
    if let Some(env) = &manifest.env {
        ids.push(plain(Kind::Env.id(env.file.display())));
        ids.extend(env.required.iter().map(|k| plain(Kind::Env.id(k))));
        if let Some(template) = &env.template {
            ids.push(plain(Kind::Env.id(template.display())));
            // Template keys are findings too (missing from `.env`).
            let text = std::fs::read_to_string(manifest.root.join(template)).unwrap_or_default();
            ids.extend(parse_env(&text).unwrap_or_default().into_iter().map(|(k, _)| plain(Kind::Env.id(k))));
        }
    }
    ids.extend(manifest.dirs.iter().map(|d| plain(Kind::Dir.id(d.path.display()))));
    ids.extend(manifest.files.iter().map(|f| plain(Kind::File.id(f.path.display()))));
    ids.extend(manifest.databases.iter().map(|d| plain(Kind::Database.id(d.path.display()))));
    ids.extend(manifest.postgres.iter().map(|d| plain(Kind::Database.id(&d.url_env))));
    ids.extend(manifest.heartbeats.iter().map(|h| plain(Kind::Heartbeat.id(h.path.display()))));
    ids.extend(manifest.pidfiles.iter().map(|p| plain(Kind::Pidfile.id(p.path.display()))));
    for lock in &manifest.locks {
        ids.push(DeclaredId { id: Kind::Lock.id(&lock.glob), files: Some(lock.glob.clone()) });
    }
    ids.extend(manifest.prunes.iter().map(|p| plain(Kind::Prune.id(&p.glob))));
    ids.extend(manifest.commands.iter().map(|c| plain(Kind::Command.id(&c.name))));
    if manifest.disk.is_some() {
        ids.push(plain(Kind::Disk.prefix().to_string()));
    }
    ids
}

/// Runs every selected check against the disk.
pub fn run_all(manifest: &Manifest, options: &CheckOptions, selection: &Selection) -> anyhow::Result<Findings> {
    let ctx = CheckCtx { manifest, root: &manifest.root, options, who: std::sync::OnceLock::new() };
    let mut out = Findings::default();
    let selected = |c: &&&dyn Check| selection.includes_scope(c.scope()) && selection.may_select(c.kind().prefix());
    crate::fsutil::remembering_folders(|| {
        REGISTRY.iter().filter(selected).try_for_each(|check| check.run(&ctx, &mut out))
    })?;
    provided::hold_back(manifest, &mut out);
    out.retain_ids(|id| selection.includes_id(id));
    Ok(out)
}

/// The manifest's severity override, else the default.
pub fn severity(declared: Option<Severity>, default: Severity) -> Severity {
    declared.unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(values: &[&str]) -> Selection {
        Selection { only: values.iter().map(|v| v.to_string()).collect(), ..Selection::default() }
    }

    #[test]
    fn only_skips_checks_whose_ids_it_cannot_select() {
        assert!(only(&[]).may_select("command:"));
        assert!(only(&["dir:data"]).may_select("dir:"));
        assert!(!only(&["dir:data"]).may_select("command:"));
        assert!(only(&["d"]).may_select("db:") && only(&["d"]).may_select("disk"));
        assert!(only(&["disk"]).may_select("disk"));
        assert!(!only(&["file:a", "env:B"]).may_select("db:"));
    }

    #[test]
    fn a_narrow_only_selects_what_its_whole_entry_needs_first() {
        let table = only(&["db:app/data.db:table:t"]);
        assert!(table.includes_id("db:app/data.db:table:t:column:b"));
        assert!(table.includes_id("db:app/data.db"), "a missing or unusable database");
        assert!(table.includes_id("db:app/data.db:recovery"), "its crash recovery");
        assert!(!table.includes_id("db:app/data.db:table:u"));
        assert!(!table.includes_id("db:app/data.db2"));
        assert!(!table.includes_id("db:app/other.db:recovery"));
        assert!(!table.includes_id("db:app"));
        assert!(only(&["dir:data:access"]).includes_id("dir:data"));
    }

    #[test]
    fn only_values_must_be_able_to_match_something_declared() {
        let toml = "version = 1\n[[dir]]\npath = \"data\"\n[[lock]]\nglob = \"state/*.lock\"\nstale_after = \"5m\"\n\
                    [env]\nrequired = [\"API_KEY\"]\n";
        let root = tempfile::tempdir().unwrap();
        let manifest = crate::manifest::load_str(Path::new("p.toml"), toml, root.path()).unwrap();
        let unmatched = |values: &[&str]| only(values).unmatched(&manifest).join(",");
        assert_eq!(unmatched(&["dir:data", "dir:", "d", "dir:data:access", "env:API_KEY", "env:.env"]), "");
        assert_eq!(unmatched(&["lock:state/*.lock", "lock:state/a.lock", "lock:"]), "");
        assert_eq!(unmatched(&["dir:date"]), "dir:date");
        assert_eq!(
            unmatched(&["dir:data2", "db:", "lock:other/a.lock", "env:OTHER"]),
            "dir:data2,db:,lock:other/a.lock,env:OTHER"
        );
    }

    #[test]
    fn every_check_declares_a_distinct_kind_of_id() {
        let kinds: std::collections::BTreeSet<Kind> = REGISTRY.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds.len(), REGISTRY.len(), "two checks share a kind");
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), Kind::ALL, "every kind has its check, in report order");
        for check in REGISTRY {
            assert!(!check.kind().prefix().is_empty(), "{:?}", check.kind());
        }
    }
}
