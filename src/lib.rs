//! preflight: check an application's working directory against a manifest
//! and heal what can be healed without losing data.
//!
//! The flow is manifest → checks → findings → (heal: plan, apply,
//! validate again) → report. The library never prints; `report` renders.

pub mod checks;
pub mod finding;
pub mod fsutil;
pub mod heal;
pub mod manifest;
pub mod report;
pub mod runtime;
