//! The checks: one module per kind of thing a manifest declares, each
//! turning (manifest entries, disk) into findings. They never print and
//! never change the disk; a fix they propose is data for the planner.
//! `REGISTRY` is the one place a new kind is added.

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
mod prune;

use std::path::Path;

pub use env::parse as parse_env;

use crate::db;
use crate::finding::{Findings, Kind, Severity};
use crate::manifest::Manifest;

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
}

/// What a check sees.
pub struct CheckCtx<'a> {
    pub manifest: &'a Manifest,
    pub root: &'a Path,
    pub options: &'a CheckOptions,
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

    /// An ID is selected when it equals an `--only` value or starts with it.
    pub fn includes_id(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| id.starts_with(p.as_str()))
    }
}

/// Runs every selected check against the disk.
pub fn run_all(manifest: &Manifest, options: &CheckOptions, selection: &Selection) -> anyhow::Result<Findings> {
    let ctx = CheckCtx { manifest, root: &manifest.root, options };
    let mut out = Findings::default();
    let selected = |c: &&&dyn Check| selection.includes_scope(c.scope()) && selection.may_select(c.kind().prefix());
    for check in REGISTRY.iter().filter(selected) {
        check.run(&ctx, &mut out)?;
    }
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
    fn every_check_declares_a_distinct_kind_of_id() {
        let kinds: std::collections::BTreeSet<Kind> = REGISTRY.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds.len(), REGISTRY.len(), "two checks share a kind");
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), Kind::ALL, "every kind has its check, in report order");
        for check in REGISTRY {
            assert!(!check.kind().prefix().is_empty(), "{:?}", check.kind());
        }
    }
}
