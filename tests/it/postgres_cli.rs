//! The real binary against a real PostgreSQL: exit codes, the dry run's
//! SQL, the history, rollback, init, replicas, and the password nowhere.

use std::path::Path;
use std::process::Command;

use crate::postgres::{scalar, OLD_SHOP, SHOP};
use crate::support::pg::{PgServer, PASSWORD};

struct Run {
    code: i32,
    out: String,
}

fn preflight(root: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .current_dir(root)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run preflight");
    let out = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!out.contains(PASSWORD), "the password was printed:\n{out}");
    Run { code: output.status.code().unwrap_or(-1), out }
}

/// An application root whose `.env` holds the URL.
fn app(url: &str, ddl: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("schemas/pg.sql"), ddl).unwrap();
    std::fs::write(dir.path().join(".env"), format!("DATABASE_URL={url}\n")).unwrap();
    std::fs::write(
        dir.path().join("preflight.toml"),
        "version = 1\n\n[[database]]\nurl_env = \"DATABASE_URL\"\nschema = \"schemas/pg.sql\"\nlock_timeout = \"500ms\"\n",
    )
    .unwrap();
    dir
}

fn no_secret_on_disk(root: &Path) {
    for entry in
        walkdir::WalkDir::new(root.join(".preflight")).into_iter().flatten().filter(|e| e.file_type().is_file())
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!text.contains(PASSWORD), "{} holds the password", entry.path().display());
    }
}

#[test]
fn validate_dry_run_heal_history_and_rollback_through_the_binary() {
    let server = PgServer::start();
    server.exec("postgres", OLD_SHOP);
    let root = app(&server.url("postgres"), SHOP);
    let dir = root.path();

    let validate = preflight(dir, &["validate"]);
    assert_eq!(validate.code, 1, "{}", validate.out);
    assert!(validate.out.contains("db:DATABASE_URL:table:users:column:feeling"), "{}", validate.out);
    assert!(!dir.join(".preflight").exists(), "validate leaves the directory as it found it");

    let dry = preflight(dir, &["heal", "--dry-run"]);
    assert_eq!(dry.code, 1, "{}", dry.out);
    for sql in [
        "BEGIN;",
        "ALTER TABLE users ADD COLUMN feeling mood DEFAULT 'happy'::mood NOT NULL;",
        "CREATE INDEX CONCURRENTLY orders_user",
    ] {
        assert!(dry.out.contains(sql), "{sql}:\n{}", dry.out);
    }
    assert!(!dir.join(".preflight").exists());

    let heal = preflight(dir, &["heal", "--format", "json"]);
    assert_eq!(heal.code, 0, "{}", heal.out);
    assert_eq!(preflight(dir, &["validate"]).code, 0);
    let again = preflight(dir, &["heal"]);
    assert_eq!(again.code, 0, "{}", again.out);

    let history = preflight(dir, &["history", "--json"]);
    assert!(history.out.contains("CREATE INDEX CONCURRENTLY orders_user"), "{}", history.out);
    let log = std::fs::read_to_string(dir.join(".preflight/history.jsonl")).unwrap();
    assert!(log.contains("\"sql\"") && log.contains("ADD COLUMN feeling"), "{log}");
    no_secret_on_disk(dir);

    // Rows written since: the column keeps them, so it is not undone.
    server.exec("postgres", "INSERT INTO users (email, feeling) VALUES ('late@x', 'sad')");
    let rollback = preflight(dir, &["rollback"]);
    assert_eq!(rollback.code, 1, "{}", rollback.out);
    assert!(rollback.out.contains("feeling"), "{}", rollback.out);
    assert_eq!(
        scalar(&server, "SELECT count(*) FROM pg_class WHERE relname IN ('big_orders', 'orders_user', 'currencies')"),
        "0"
    );
    assert_eq!(scalar(&server, "SELECT count(*) FROM users WHERE feeling = 'sad'"), "1");
    no_secret_on_disk(dir);
}

#[test]
fn a_run_on_an_empty_database_rolls_back_completely() {
    let server = PgServer::start();
    let root = app(&server.url("postgres"), SHOP);
    let dir = root.path();
    assert_eq!(preflight(dir, &["heal"]).code, 0);
    let rollback = preflight(dir, &["rollback"]);
    assert_eq!(rollback.code, 0, "{}", rollback.out);
    assert_eq!(scalar(&server, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"), "0");
    assert_eq!(scalar(&server, "SELECT count(*) FROM pg_type WHERE typname = 'mood'"), "0");
}

#[test]
fn wrong_password_and_server_down_exit_1_with_a_clear_message() {
    let server = PgServer::start();
    let wrong = app(&server.url("postgres").replace(PASSWORD, "Not-the-pw"), SHOP);
    for args in [&["validate"][..], &["heal"], &["validate", "--format", "json"]] {
        let run = preflight(wrong.path(), args);
        assert_eq!(run.code, 1, "{}", run.out);
        assert!(run.out.contains("password authentication failed") && !run.out.contains("Not-the-pw"), "{}", run.out);
    }
    let port = server.port;
    drop(server);
    let down = app(&format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"), SHOP);
    let run = preflight(down.path(), &["heal"]);
    assert_eq!(run.code, 1);
    assert!(run.out.contains("connection refused"), "{}", run.out);
    let unset = app("", SHOP);
    let run = preflight(unset.path(), &["validate"]);
    assert!(run.code == 1 && run.out.contains("DATABASE_URL is not set"), "{}", run.out);
}

#[test]
fn init_dumps_the_namespace_as_starter_ddl_that_validates() {
    let server = PgServer::start();
    server.exec("postgres", OLD_SHOP);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), format!("DATABASE_URL={}\n", server.url("postgres"))).unwrap();
    let init = preflight(dir.path(), &["init", "--database-url-env", "DATABASE_URL"]);
    assert_eq!(init.code, 0, "{}", init.out);
    let ddl = std::fs::read_to_string(dir.path().join("schemas/database_url.sql")).unwrap();
    assert!(ddl.contains("CREATE TABLE orders") && !ddl.contains(PASSWORD), "{ddl}");
    let manifest = std::fs::read_to_string(dir.path().join("preflight.toml")).unwrap();
    assert!(manifest.contains("url_env = \"DATABASE_URL\""), "{manifest}");
    assert_eq!(preflight(dir.path(), &["validate", "--strict"]).code, 0);
}

#[test]
fn four_replicas_started_together_all_exit_0() {
    let server = PgServer::start();
    server.exec("postgres", OLD_SHOP);
    let roots: Vec<_> = (0..4).map(|_| app(&server.url("postgres"), SHOP)).collect();
    let children: Vec<_> = roots
        .iter()
        .map(|r| {
            Command::new(env!("CARGO_BIN_EXE_preflight"))
                .arg("heal")
                .current_dir(r.path())
                .env_remove("DATABASE_URL")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(0), "{text}");
        assert!(!text.contains(PASSWORD));
    }
    let applied = roots
        .iter()
        .map(|r| std::fs::read_to_string(r.path().join(".preflight/history.jsonl")).unwrap_or_default())
        .map(|h| h.lines().filter(|l| l.contains("\"sql\"")).count())
        .collect::<Vec<_>>();
    assert_eq!(applied.iter().filter(|n| **n > 0).count(), 1, "{applied:?}");
}
