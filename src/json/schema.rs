//! JSON Schema invariants.
