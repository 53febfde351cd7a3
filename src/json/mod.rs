//! JSON and JSONL integrity: one strict iterative scanner (`scan`), the
//! salvage of corrupt documents built on it (`salvage`), streaming JSONL
//! validation and repair (`jsonl`), and JSON Schema invariants (`schema`).
//! On x86-64 with AVX2, `jsonl` classifies lines with `simd`, the same
//! grammar run over tokens found 64 bytes at a time; big files go through
//! `pipeline`, which reads and classifies chunks on every core in order.

pub mod jsonl;
mod pipeline;
pub mod salvage;
pub mod scan;
pub mod schema;
#[cfg(target_arch = "x86_64")]
mod simd;
