//! `integrity = "auto" | "quick" | "off"` and `--deep`, through the binary:
//! what each reads of a damaged database, and that the cheap checks catch
//! the common damage without reading the data pages.

use crate::support::TestDir;
use rusqlite::Connection;

const PAGE: usize = 4096;

fn root(integrity: Option<&str>) -> TestDir {
    let key = integrity.map(|i| format!("integrity = \"{i}\"\n")).unwrap_or_default();
    let t = TestDir::with_manifest(&format!(
        "version = 1\n[[database]]\npath = \"app.db\"\nschema = \"schema.sql\"\n{key}"
    ));
    let ddl = "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT);\nCREATE INDEX t_a ON t(a);\n";
    t.write("schema.sql", ddl);
    let conn = Connection::open(t.join("app.db")).unwrap();
    conn.execute_batch(ddl).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO t(a) SELECT hex(randomblob(40)) FROM n;",
    )
    .unwrap();
    t
}

/// Scribbles over the last page (an index page, away from every table's
/// first leaf): only a full read of the file sees it.
fn damage_a_data_page(t: &TestDir) -> Vec<u8> {
    let mut bytes = std::fs::read(t.join("app.db")).unwrap();
    let last = bytes.len() - PAGE;
    bytes[last + 8..].fill(0xA5);
    std::fs::write(t.join("app.db"), &bytes).unwrap();
    bytes
}

#[test]
fn a_damaged_data_page_is_found_by_quick_check_and_left_to_deep_when_off() {
    for (integrity, deep, expected) in [
        (None, false, 1), // auto: a small file gets quick_check
        (Some("auto"), false, 1),
        (Some("quick"), false, 1),
        (Some("off"), false, 0), // structural checks only: the data page is not read
        (Some("off"), true, 1),  // --deep reads it whatever the manifest says
    ] {
        let t = root(integrity);
        let bytes = damage_a_data_page(&t);
        let args: &[&str] = if deep { &["validate", "--deep"] } else { &["validate"] };
        let run = t.run(args);
        assert_eq!(run.code, expected, "{integrity:?} deep={deep}: {}", run.all_output());
        if expected == 1 {
            assert!(run.stdout.contains("quick_check") && run.stdout.contains("restore"), "{}", run.stdout);
        }
        assert_eq!(std::fs::read(t.join("app.db")).unwrap(), bytes, "never touched");
    }
}

#[test]
fn the_structural_checks_catch_a_cut_file_and_a_damaged_table_root() {
    // Cut short by whole pages, and inside a page.
    for cut in [PAGE * 3, PAGE * 3 + 100] {
        let t = root(Some("off"));
        let len = std::fs::metadata(t.join("app.db")).unwrap().len();
        std::fs::File::options().write(true).open(t.join("app.db")).unwrap().set_len(len - cut as u64).unwrap();
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1, "cut {cut}: {}", run.all_output());
        assert!(run.stdout.contains("db:app.db ") || run.stdout.contains("db:app.db\t"), "{}", run.stdout);
    }
    // The table's root page overwritten.
    let t = root(Some("off"));
    let conn = Connection::open(t.join("app.db")).unwrap();
    let root_page: i64 =
        conn.query_row("SELECT rootpage FROM sqlite_schema WHERE name = 't'", [], |r| r.get(0)).unwrap();
    drop(conn);
    let root_page = root_page as usize;
    let mut bytes = std::fs::read(t.join("app.db")).unwrap();
    bytes[(root_page - 1) * PAGE..root_page * PAGE].fill(0x5A);
    std::fs::write(t.join("app.db"), &bytes).unwrap();
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stdout.contains("restore"), "{}", run.stdout);
}

#[test]
fn integrity_takes_only_its_three_values() {
    let t = root(Some("fast"));
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("integrity") || run.stderr.contains("fast"), "{}", run.stderr);
    assert!(run.stderr.contains("preflight.toml:5:"), "the error points at the line: {}", run.stderr);
}
