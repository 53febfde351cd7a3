//! `preflight schema`: the manifest's JSON Schema, derived from the same
//! structs the parser reads.

use preflight::{manifest, report};

use super::print_to_stdout;

pub fn schema() -> anyhow::Result<u8> {
    let schema = manifest::json_schema();
    print_to_stdout(|out| report::schema(&schema, out))?;
    Ok(0)
}
