//! `[[database]]`: a thin adapter from the database engines' claims to
//! findings. The engines (`crate::db`) know how to look at a database and
//! what repairs it; this module only picks the engine and wraps each
//! repair as a fix of the databases phase.

use super::{Check, CheckCtx, Scope};
use crate::db::{self, Inspection};
use crate::finding::{Area, Finding, Findings, Kind};
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
        for spec in &ctx.manifest.databases {
            let inspection = db::sqlite::inspect(ctx.root, spec, options, &ctx.options.cache.sqlite)?;
            record(inspection, out);
        }
        Ok(())
    }
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
