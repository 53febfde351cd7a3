//! `[[database]]`: a thin adapter from the database engines' claims to
//! findings. The engines (`crate::db`) know how to look at a database and
//! what repairs it; this module only picks the engine and wraps each
//! repair as a fix of the databases phase.

use std::path::{Path, PathBuf};

use super::access::{self, Need, Who};
use super::{Check, CheckCtx, Scope};
use crate::db::{self, Inspection};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::manifest::DatabaseSpec;
use crate::safety::{Fix, Op, Phase};

/// The `[[database]]` check.
pub struct DatabaseCheck;

impl Check for DatabaseCheck {
    fn kind(&self) -> Kind {
        Kind::Database
    }

    fn scope(&self) -> Scope {
        Scope::Database
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        let options = db::sqlite::Options { allow_rebuild: ctx.options.allow_rebuild, deep: ctx.options.deep };
        let who = ctx.who();
        for spec in &ctx.manifest.databases {
            let inspection = db::sqlite::inspect(ctx.root, spec, options, &ctx.options.cache.sqlite)?;
            record(inspection, out);
            usable(ctx, spec, who, out);
        }
        let options = db::postgres::claims::Options { allow_rebuild: ctx.options.allow_rebuild };
        for spec in &ctx.manifest.postgres {
            let url = super::env::variable(ctx.root, ctx.manifest, &spec.url_env);
            record(db::postgres::claims::inspect(ctx.root, spec, url, options)?, out);
        }
        Ok(())
    }
}

/// Whether the app's account can write an existing database, its journal
/// files, and its folder (SQLite creates `-journal`, `-wal` and `-shm`
/// files there). A folder that is a declared dir has its own finding; any
/// other is reported only, as heal changes declared paths alone.
fn usable(ctx: &CheckCtx, spec: &DatabaseSpec, who: &Result<Who, String>, out: &mut Findings) {
    let id = format!("{}:access", Kind::Database.id(spec.path.display()));
    let critical = spec.severity.unwrap_or(Severity::Critical);
    if !ctx.root.join(&spec.path).is_file() {
        return;
    }
    let who = match who {
        Ok(who) => who,
        Err(why) => return out.push(Finding::new(id, Area::Db, critical, format!("access cannot be checked: {why}"))),
    };
    let declared: Vec<PathBuf> = ctx.manifest.dirs.iter().map(|d| d.path.clone()).collect();
    let mut files = vec![spec.path.clone()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = spec.path.clone().into_os_string();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    let mut denied: Vec<(String, Option<Fix>)> = files
        .iter()
        .filter_map(|f| access::check(ctx.root, f, Need::File, who, &declared).map(|d| (f, d)))
        .map(|(f, d)| (format!("{}: {}", f.display(), d.message), d.fix))
        .collect();
    let folder = spec.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !declared.iter().any(|d| d == folder) {
        let checked = if folder == Path::new(".") { Path::new("") } else { folder };
        if let Some(d) = access::check(ctx.root, checked, Need::Dir, who, &declared) {
            let hint = match checked.as_os_str().is_empty() {
                true => "; heal does not change the root folder",
                false => "; declare it as a [[dir]] to let heal fix it",
            };
            denied.push((format!("its folder {}: {}{hint}", folder.display(), d.message), None));
        }
    }
    if denied.is_empty() {
        return; // not listed as a pass, as for dirs and files
    }
    let message = denied.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join("; ");
    let ops: Vec<Op> = denied.into_iter().filter_map(|(_, fix)| fix).flat_map(|f| f.ops).collect();
    let mut finding = Finding::new(id, Area::Db, critical, format!("database is not usable: {message}"));
    if !ops.is_empty() {
        finding = finding.with_fix(Fix::new("give the database to the app's account", Phase::Files, ops));
    }
    out.push(finding);
}

/// Passes and claims become passes and findings, in the engine's order.
fn record(inspection: Inspection, out: &mut Findings) {
    for id in inspection.passed {
        out.pass(id, Area::Db);
    }
    for claim in inspection.claims {
        let mut finding = Finding::new(claim.id, Kind::Database.area(), claim.severity, claim.message);
        if let Some(repair) = claim.repair {
            finding = finding.with_fix(Fix::new(repair.label, Phase::Databases, vec![Op::Custom(repair.op)]));
        }
        out.push(finding);
    }
}
