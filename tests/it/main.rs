//! The integration tests: one binary (one link of the library and its
//! bundled SQLite), one module per area. `support` is the shared harness:
//! temporary roots, the real `preflight` binary run against them, disk
//! snapshots, and child processes that never outlive their test.
//!
//! Run one area with a filter, e.g. `cargo test --test it sqlite::`.

mod support;

mod bad_input;
mod cli;
mod confinement;
mod crash;
mod deploy;
mod faults;
mod integrity;
mod interrupted;
mod json;
mod launchers;
mod live;
mod manifest;
mod ops;
mod parsers_never_panic;
mod postgres;
mod postgres_cli;
mod postgres_online;
mod progress;
mod race;
mod recovery;
mod runtime;
mod safety;
mod sqlite;
mod sqlite_heal;
mod start;
