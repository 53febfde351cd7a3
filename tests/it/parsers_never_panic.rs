//! A stable-toolchain stand-in for the cargo-fuzz targets (`fuzz/`): random
//! and mutated inputs to the manifest loader and the `.env` reader must give
//! a value or an error, never a panic.

use std::path::Path;

use proptest::prelude::*;

const MANIFEST: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pricing-app/preflight.toml"));
const ENV: &str = "export A=\"x y\"\nB='multi\nline'\n# c\nC=${A}-$B\nD=\"esc \\\" q\"\n";

/// A valid document with one byte range replaced: near-valid inputs reach
/// deeper than random text.
fn mutate(base: &str, at: usize, len: usize, with: &str) -> String {
    let mut bytes = base.as_bytes().to_vec();
    let at = at % (bytes.len() + 1);
    let end = (at + len).min(bytes.len());
    bytes.splice(at..end, with.bytes());
    String::from_utf8_lossy(&bytes).into_owned()
}

fn load(name: &str, text: &str) {
    let _ = preflight::manifest::load_str(Path::new(name), text, Path::new("/nonexistent/fuzz-root"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn manifest_loader_never_panics_on_random_text(text in ".{0,400}") {
        load("preflight.toml", &text);
        load("preflight.json", &text);
    }

    #[test]
    fn manifest_loader_never_panics_on_mutated_manifests(at in 0usize..2000, len in 0usize..20, with in "[\\[\\]{}\"'=.,/a-z0-9\n ]{0,12}") {
        load("preflight.toml", &mutate(MANIFEST, at, len, &with));
    }

    #[test]
    fn env_reader_never_panics(text in "[A-Za-z_=\"'\\\\$#{} \n\r\t.-]{0,200}", at in 0usize..100, len in 0usize..10) {
        let _ = preflight::checks::parse_env(&text);
        let mutated = mutate(ENV, at, len, &text);
        if let Err(line) = preflight::checks::parse_env(&mutated) {
            prop_assert!(line >= 1 && line <= mutated.lines().count() + 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn schema_comparison_never_panics_on_mutated_ddl(at in 0usize..400, len in 0usize..12, with in "[(),;'\" a-zA-Z0-9_]{0,16}", flip in any::<bool>()) {
        let live = "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT NOT NULL DEFAULT '', c REAL);\nCREATE INDEX t_b ON t(b);";
        let desired = "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT NOT NULL DEFAULT '', c REAL, d TEXT UNIQUE);\nCREATE INDEX t_b ON t(b DESC) WHERE c > 0;\nCREATE VIEW v AS SELECT a, b FROM t;";
        let (live, desired) = if flip { (mutate(live, at, len, &with), desired.to_string()) } else { (live.to_string(), mutate(desired, at, len, &with)) };
        let _ = preflight::db::sqlite::compare_ddl(&live, &desired);
    }
}
