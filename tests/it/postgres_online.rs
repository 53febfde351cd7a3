//! The PostgreSQL engine while others use the database: replicas healing
//! together, a long transaction in the way, an index build killed half-way,
//! secrets in failures, TLS.

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use preflight::db::postgres::{self as pg, Error, Outcome};

use crate::postgres::{all_done, assert_converged, config, ids, scalar, OLD_SHOP, SHOP};
use crate::support::pg::{Options, PgServer, PASSWORD};

#[test]
fn four_replicas_heal_at_once_and_apply_each_change_once() {
    let server = PgServer::start();
    server.exec("postgres", OLD_SHOP);
    server.exec("postgres", "INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 2000) g;");
    let cfg = config(&server.url("postgres"), SHOP);
    let wanted = pg::inspect(&cfg).unwrap().differences.len();
    let barrier = Arc::new(Barrier::new(4));
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let (cfg, barrier) = (cfg.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (actions, _) = pg::heal(&cfg, &|_| true).unwrap();
                // Each replica validates after its heal, as `preflight heal` does.
                let after = pg::inspect(&cfg).unwrap();
                (actions, after.differences.len())
            })
        })
        .collect();
    let results: Vec<_> = replicas.into_iter().map(|r| r.join().unwrap()).collect();
    let done: Vec<&pg::Action> =
        results.iter().flat_map(|(a, _)| a).filter(|a| matches!(a.outcome, Outcome::Done(_))).collect();
    let mut done_ids: Vec<&str> = done.iter().map(|a| a.id.as_str()).collect();
    done_ids.sort_unstable();
    let count = done_ids.len();
    done_ids.dedup();
    assert_eq!(count, done_ids.len(), "a change was applied twice: {done:#?}");
    assert_eq!(count, wanted);
    assert_eq!(results.iter().filter(|(a, _)| !a.is_empty()).count(), 1, "only one replica applies");
    assert!(results.iter().all(|(_, left)| *left == 0));
    assert_converged(&cfg);
}

#[test]
fn a_long_transaction_in_the_way_makes_heal_busy_within_bounds_and_changes_nothing() {
    let server = PgServer::start();
    server.exec("postgres", OLD_SHOP);
    let mut cfg = config(&server.url("postgres"), SHOP);
    cfg.lock_timeout = Duration::from_millis(200);
    cfg.retries = 2;
    let before = server.schema_dump("postgres");
    // The application's long transaction: it read the table and keeps its lock.
    let mut long = server.client("postgres");
    long.batch_execute("BEGIN; SELECT count(*) FROM users;").unwrap();
    // Meanwhile the application keeps querying; none of its queries may wait
    // much longer than lock_timeout behind heal's lock request.
    let app_url = server.url("postgres");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&app_url, postgres::NoTls).unwrap();
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                c.query_one("SELECT count(*) FROM users", &[]).unwrap();
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(5));
            }
            worst
        })
    };
    let started = Instant::now();
    let (actions, _) = pg::heal(&cfg, &|_| true).unwrap();
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = app.join().unwrap();
    assert!(took < Duration::from_secs(15), "heal took {took:?}");
    let busy: Vec<_> =
        actions.iter().filter(|a| matches!(&a.outcome, Outcome::Busy(m) if m.contains("busy"))).collect();
    assert!(!busy.is_empty(), "{actions:#?}");
    assert!(actions.iter().all(|a| !matches!(a.outcome, Outcome::Done(_))), "{actions:#?}");
    assert!(worst < Duration::from_millis(1200), "an application query waited {worst:?}");
    long.batch_execute("COMMIT").unwrap();
    assert_eq!(server.schema_dump("postgres"), before, "nothing may be half-applied");
    all_done(&pg::heal(&cfg, &|_| true).unwrap().0);
    assert_converged(&cfg);
}

#[test]
fn an_index_build_killed_half_way_is_found_invalid_and_rebuilt() {
    let server = PgServer::start();
    server.exec("postgres", OLD_SHOP);
    server.exec(
        "postgres",
        "ALTER TABLE orders ADD COLUMN note text;
                             INSERT INTO orders (user_id, total) SELECT g, g % 50 FROM generate_series(1, 300000) g;",
    );
    // A writer keeps the build waiting after its catalog entry is committed;
    // the build is then cancelled, as a deploy killing it would.
    let mut writer = server.client("postgres");
    writer.batch_execute("BEGIN; UPDATE orders SET total = total WHERE id = 1;").unwrap();
    let mut builder = server.client("postgres");
    builder.batch_execute("SET statement_timeout = '500ms'").unwrap();
    let err = builder
        .batch_execute("CREATE INDEX CONCURRENTLY orders_user ON orders (user_id) WHERE note IS NULL")
        .unwrap_err();
    assert!(err.as_db_error().is_some_and(|e| e.message().contains("statement timeout")), "{:?}", err.as_db_error());
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(scalar(&server, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_user'::regclass"), "f");
    let cfg = config(&server.url("postgres"), SHOP);
    let report = pg::inspect(&cfg).unwrap();
    let finding = report.differences.iter().find(|d| d.id == "db:DATABASE_URL:index:orders_user").unwrap();
    assert!(finding.message.contains("INVALID"), "{finding:?}");
    let (actions, _) = pg::heal(&cfg, &|id| id.ends_with(":index:orders_user")).unwrap();
    all_done(&actions);
    assert!(actions[0].sql[0].starts_with("DROP INDEX CONCURRENTLY IF EXISTS orders_user"));
    assert_eq!(scalar(&server, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_user'::regclass"), "t");
}

#[test]
fn the_password_never_appears_in_errors_or_results() {
    let server = PgServer::start();
    server.exec("postgres", OLD_SHOP);
    let wrong = config(&server.url("postgres").replace(PASSWORD, "Wr0ng-pass%40word"), SHOP);
    match pg::inspect(&wrong) {
        Err(Error::Unreachable(m)) => {
            assert!(
                m.contains("password authentication failed") && !m.contains("Wr0ng") && !m.contains("pass@word"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    let port = server.port;
    let cfg = config(&server.url("postgres"), SHOP);
    let (actions, report) = pg::heal(&cfg, &|_| true).unwrap();
    let everything = format!("{actions:?}{report:?}{:?}", report.script(&cfg, |_| true));
    assert!(!everything.contains(PASSWORD));
    drop(server);
    let down = config(&format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"), SHOP);
    for result in [pg::inspect(&down).err(), pg::heal(&down, &|_| true).err(), pg::dump(&down.url, "public").err()] {
        match result {
            Some(Error::Unreachable(m)) => {
                assert!(
                    m.contains("refused") && m.contains(&format!("127.0.0.1:{port}")) && !m.contains(PASSWORD),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    let bad = config(&format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres?connect_timeout=zz"), SHOP);
    assert!(!format!("{:?}", pg::inspect(&bad)).contains(PASSWORD));
}

/// A CA and a server certificate it signed for 127.0.0.1 and localhost.
fn certificates(dir: &std::path::Path) -> (String, String, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=preflight test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(dir.join("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (read("server.crt"), read("server.key"), dir.join("ca.crt"))
}

#[test]
fn tls_require_connects_and_verify_full_checks_the_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certificates(certs.path());
    let server = PgServer::start_with(Options { tls: Some((cert, key)) });
    let ddl = "CREATE TABLE t (a int);";
    let url = |query: &str| server.url_with("postgres", query);
    assert!(ids(&pg::inspect(&config(&url("sslmode=require"), ddl)).unwrap()).contains(&"db:DATABASE_URL:table:t"));
    match pg::inspect(&config(&url("sslmode=disable"), ddl)) {
        Err(Error::Unreachable(m)) => assert!(m.contains("no encryption"), "{m}"),
        other => panic!("the server only accepts TLS: {other:?}"),
    }
    // An unknown CA: refused, with a message that says so.
    match pg::inspect(&config(&url("sslmode=verify-full"), ddl)) {
        Err(Error::Unreachable(m)) => {
            assert!(m.contains("not signed by a trusted root") && !m.contains(PASSWORD), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let with_ca = |mode: &str| url(&format!("sslmode={mode}&sslrootcert={}", ca.display()));
    pg::inspect(&config(&with_ca("verify-full"), ddl)).unwrap();
    pg::inspect(&config(&with_ca("verify-ca"), ddl)).unwrap();
    let elsewhere = with_ca("verify-full").replace("127.0.0.1", "127.0.0.2");
    match pg::inspect(&config(&elsewhere, ddl)) {
        Err(Error::Unreachable(m)) => assert!(m.contains("refused") || m.contains("does not name this host"), "{m}"),
        other => panic!("{other:?}"),
    }
}
