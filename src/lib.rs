//! preflight: check an application's working directory against a manifest
//! and heal what can be healed without losing data.
//!
//! The flow is manifest → checks → findings → (heal: plan, apply,
//! validate again) → report. The library never prints; `report` renders.

#![warn(clippy::print_stdout, clippy::print_stderr)] // only `report` writes, through a writer it is given

pub mod checks;
pub mod db;
pub mod finding;
pub mod fsutil;
pub mod heal;
pub mod json;
pub mod manifest;
pub mod report;
pub mod runtime;
pub mod safety;

#[cfg(test)]
mod layering;
