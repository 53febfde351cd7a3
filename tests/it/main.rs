//! Integration tests, one binary; modules mirror the features.

mod support {
    pub mod pg;
}

mod postgres;
mod postgres_cli;
mod postgres_online;
