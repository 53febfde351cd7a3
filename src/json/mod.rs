//! JSON and JSONL integrity: one strict iterative scanner (`scan`), the
//! salvage of corrupt documents built on it (`salvage`), streaming JSONL
//! validation and repair (`jsonl`), JSON Schema invariants (`schema`), and
//! the atomic streaming writer the repairs share (`stream_write`).

pub mod jsonl;
pub mod salvage;
pub mod scan;
pub mod schema;
