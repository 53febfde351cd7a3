//! A throw-away PostgreSQL server per test: `initdb` into a temporary
//! folder, `pg_ctl start` on 127.0.0.1 with a free port (fsync off), and a
//! guard that stops it and removes the folder when dropped, also when the
//! test panics. As root, the server runs as the `postgres` OS user
//! (initdb refuses root). Password authentication is on for TCP so tests
//! can check that the password never leaks.

#![allow(dead_code)] // each test module uses a different part

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

/// The superuser's password; tests look for it in every output.
pub const PASSWORD: &str = "Sup3r-s3cret-pw";

pub struct PgServer {
    dir: TempDir,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    pub port: u16,
}

/// Options for [`PgServer::start_with`].
#[derive(Default)]
pub struct Options {
    /// PEM certificate and key for `ssl = on`.
    pub tls: Option<(String, String)>,
}

/// The folder holding initdb, pg_ctl and pg_dump.
pub fn bindir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PG_BINDIR") {
            return PathBuf::from(dir);
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join("initdb").exists() {
                return dir;
            }
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").exists())
            .map(|d| {
                fs::canonicalize(d.join("initdb")).ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or(d)
            })
            .expect("PostgreSQL server binaries not found: install the `postgresql` package or set PG_BINDIR")
    })
}

fn postgres_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "postgres"]).output().expect("id");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("a `postgres` OS user to run the server as")
    };
    Some((id("-u"), id("-g")))
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

/// One `initdb` per build folder, reused by every server (initdb takes
/// seconds on a busy machine; a copy of its result a fraction of that).
fn template(owner: Option<(u32, u32)>) -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let done = root.join(if owner.is_some() { "pg-template-postgres" } else { "pg-template" });
        if done.join("PG_VERSION").exists() {
            return done;
        }
        // initdb runs in the system's temporary folder: the `postgres` user
        // may not be allowed to traverse the build folder.
        let work = tempfile::Builder::new().prefix("preflight-initdb").tempdir().expect("temp dir");
        chown(work.path(), owner);
        let pwfile = work.path().join("pw");
        fs::write(&pwfile, PASSWORD).expect("pwfile");
        chown(&pwfile, owner);
        let data = work.path().join("data");
        let args = [
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--pwfile",
            pwfile.to_str().unwrap(),
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ];
        let out = run_as(owner, &bindir().join("initdb"), &args, work.path());
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        // Copied in (owner and modes kept), then renamed into place: another
        // test process may have won the race, and either result is good.
        let staged = root.join(format!("pg-template-{}", std::process::id()));
        let out = Command::new("cp").arg("-a").arg(&data).arg(&staged).output().expect("cp");
        assert!(out.status.success(), "copying the cluster failed: {}", String::from_utf8_lossy(&out.stderr));
        if fs::rename(&staged, &done).is_err() {
            let _ = fs::remove_dir_all(&staged);
        }
        done
    })
}

/// Runs a server binary, as `postgres` when we are root.
fn run_as(owner: Option<(u32, u32)>, exe: &Path, args: &[&str], cwd: &Path) -> Output {
    let mut cmd = if owner.is_some() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.args(args).current_dir(cwd).output().unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl PgServer {
    pub fn start() -> PgServer {
        PgServer::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> PgServer {
        let dir = tempfile::Builder::new().prefix("preflight-pg").tempdir().expect("temp dir");
        let owner = postgres_ids();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        chown(dir.path(), owner);
        let mut server = PgServer { dir, bin: bindir().to_path_buf(), owner, port: 0 };
        let data = server.data();
        // `cp -a` keeps the owner (postgres, when we are root) and the modes.
        let out = Command::new("cp").arg("-a").arg(template(owner)).arg(&data).output().expect("cp");
        assert!(out.status.success(), "copying the cluster failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut settings = format!(
            "-c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off",
            server.dir.path().display()
        );
        if let Some((cert, key)) = &options.tls {
            let (c, k) = (server.dir.path().join("server.crt"), server.dir.path().join("server.key"));
            fs::write(&c, cert).unwrap();
            fs::write(&k, key).unwrap();
            fs::set_permissions(&k, fs::Permissions::from_mode(0o600)).unwrap();
            chown(&c, owner);
            chown(&k, owner);
            settings.push_str(&format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", c.display(), k.display()));
            // TCP without TLS is refused, so a connection that works proves TLS.
            let hba = "local all all trust\nhostnossl all all 127.0.0.1/32 reject\nhostssl all all 127.0.0.1/32 scram-sha-256\n";
            fs::write(data.join("pg_hba.conf"), hba).unwrap();
        }
        // A port found free can be taken before the server binds it: try again.
        for _ in 0..5 {
            server.port = free_port();
            let log = server.dir.path().join("log");
            let opts = format!("-c port={} {settings}", server.port);
            let out = server.run(
                "pg_ctl",
                &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-o", &opts, "start"],
            );
            if out.status.success() {
                return server;
            }
        }
        panic!("pg_ctl start failed: {}", fs::read_to_string(server.dir.path().join("log")).unwrap_or_default());
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        run_as(self.owner, &self.bin.join(program), args, self.dir.path())
    }

    /// A URL with the superuser's password, TLS off.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    /// The same URL with other query parameters.
    pub fn url_with(&self, db: &str, query: &str) -> String {
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}?{query}", self.port)
    }

    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).expect("connect")
    }

    /// A new database; returns its URL.
    pub fn create_db(&self, name: &str) -> String {
        self.client("postgres").batch_execute(&format!("CREATE DATABASE {name}")).expect("create database");
        self.url(name)
    }

    pub fn exec(&self, db: &str, sql: &str) {
        self.client(db).batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// `pg_dump --schema-only`, without the random `\restrict` lines.
    pub fn schema_dump(&self, db: &str) -> String {
        let out = Command::new(self.bin.join("pg_dump"))
            .args(["--schema-only", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", db])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("pg_dump");
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "-w", "stop"]);
    }
}
