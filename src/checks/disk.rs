//! `[disk] min_free`: free space on the file system holding the root, as an
//! unprivileged user sees it. Below the minimum (bytes, or a percentage of
//! the file system's size) → warning saying how much is missing. Heal does
//! nothing here; the `[[prune]]` rules are what frees space.

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::manifest::{DiskSpec, MinFree};
use crate::runtime::diskfree::{self, Space};
use crate::runtime::size::human_bytes;

pub struct DiskCheck;

impl Check for DiskCheck {
    fn kind(&self) -> Kind {
        Kind::Disk
    }

    fn scope(&self) -> Scope {
        Scope::System
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        let Some(spec) = &ctx.manifest.disk else { return Ok(()) };
        let severity = severity(spec.severity, Severity::Warning);
        match diskfree::space(ctx.root) {
            Err(e) => out.push(Finding::new(
                Kind::Disk.prefix(),
                Area::Runtime,
                severity,
                format!("cannot measure free space: {e}"),
            )),
            Ok(space) => match shortfall(spec, space) {
                None => out.pass(Kind::Disk.prefix(), Area::Runtime),
                Some(message) => out.push(Finding::new(Kind::Disk.prefix(), Area::Runtime, severity, message)),
            },
        }
        Ok(())
    }
}

/// The message when `space` is below the minimum, else `None`.
fn shortfall(spec: &DiskSpec, space: Space) -> Option<String> {
    let (required, declared) = match spec.min_free {
        MinFree::Bytes(b) => (b, human_bytes(b)),
        MinFree::Percent(p) => {
            let bytes = (space.total as f64 * p / 100.0).ceil() as u64;
            (bytes, format!("{p}% of {} = {}", human_bytes(space.total), human_bytes(bytes)))
        }
    };
    (space.available < required).then(|| {
        format!(
            "{} free on the file system holding the root, below min_free ({declared}): {} more is needed",
            human_bytes(space.available),
            human_bytes(required - space.available)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn spec(min_free: MinFree) -> DiskSpec {
        DiskSpec { min_free, severity: None }
    }

    #[test]
    fn the_shortfall_is_stated_in_human_sizes() {
        let space = Space { available: GIB / 2, total: 100 * GIB };
        let message = shortfall(&spec(MinFree::Bytes(GIB)), space).unwrap();
        assert!(message.contains("512.0 MiB free"), "{message}");
        assert!(message.contains("512.0 MiB more is needed"), "{message}");
        assert_eq!(shortfall(&spec(MinFree::Bytes(GIB / 4)), space), None);
    }

    #[test]
    fn a_percentage_is_of_the_file_systems_size() {
        let space = Space { available: 4 * GIB, total: 100 * GIB };
        let message = shortfall(&spec(MinFree::Percent(5.0)), space).unwrap();
        assert!(message.contains("5% of 100.0 GiB = 5.0 GiB"), "{message}");
        assert!(message.contains("1.0 GiB more"), "{message}");
        assert_eq!(shortfall(&spec(MinFree::Percent(4.0)), space), None);
    }
}
