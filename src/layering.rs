//! The architecture as a test: every `crate::` path in a module points
//! down the layer list (or within its own layer), and no source file grows
//! past the size where it holds more than one idea.

use std::fs;
use std::path::{Path, PathBuf};

/// Top to bottom. A module may use its own layer and the ones below.
const LAYERS: &[&[&str]] = &[
    &["report"],
    &["heal"],
    &["checks"],
    &["db"],
    &["manifest"],
    &["finding"],
    &["safety"],
    &["json", "runtime"],
    &["fsutil"],
];

/// Pairs allowed by the order above but still forbidden: the reporters
/// render findings and results, never run a check themselves.
const FORBIDDEN: &[(&str, &str)] = &[("report", "checks")];

const MAX_LINES: usize = 700;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a library file belongs to (`src/db/sqlite/live.rs` → `db`).
fn module_of(file: &Path, src: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::name` a file mentions, test modules included.
fn crate_uses(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .filter(|(i, _)| !text[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':'))
        .map(|(i, m)| text[i + m.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect())
        .collect()
}

#[test]
fn every_import_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(file, &src) else { continue };
        let Some(own) = layer_of(&module) else { continue }; // the binary's modules and lib.rs
        let text = fs::read_to_string(file).unwrap();
        for used in crate_uses(&text) {
            let up = layer_of(&used).is_some_and(|theirs| theirs < own);
            if up || FORBIDDEN.contains(&(module.as_str(), used.as_str())) {
                wrong.push(format!("{} uses crate::{used}", file.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "imports pointing up the layers:\n{}", wrong.join("\n"));
}

#[test]
fn every_library_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines().filter_map(|l| l.strip_prefix("pub mod ")) {
        let module = line.trim_end_matches(';');
        assert!(layer_of(module).is_some(), "{module} is in no layer");
    }
}

#[test]
fn no_source_file_holds_more_than_one_idea() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}

#[test]
fn crate_uses_finds_paths_but_not_lookalikes() {
    assert_eq!(crate_uses("use crate::db::Cache; x::crate::no; preflight_crate::no"), ["db"]);
}
