//! The connection URL: split into what `tokio-postgres` understands and the
//! TLS settings it does not (`sslmode=verify-ca|verify-full`,
//! `sslrootcert`), and a redacted form that is safe to print.
//!
//! The password is the one secret here. It is kept only inside the parsed
//! `postgres::Config`; every message that leaves this engine goes through
//! [`Secret::scrub`] so that a server or driver error quoting the URL can
//! never print it.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::bail;

/// How strictly the server's certificate is checked (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS at all.
    Disable,
    /// TLS when the server offers it, no certificate check (libpq's default).
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS; the certificate must chain to a trusted root.
    VerifyCa,
    /// TLS; trusted root and the host name must match the certificate.
    VerifyFull,
}

/// Where trusted roots come from for `verify-ca` / `verify-full`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file (`sslrootcert=PATH`).
    File(PathBuf),
    /// The operating system's store (`sslrootcert=system`).
    System,
}

/// A parsed URL.
pub struct Target {
    pub config: postgres::Config,
    pub tls: TlsMode,
    pub roots: Roots,
    /// The password, only to scrub it from messages.
    pub secret: Secret,
}

/// A value that must never be printed.
#[derive(Clone, Default)]
pub struct Secret(Option<String>);

impl Secret {
    /// `text` with every occurrence of the secret (raw and percent-encoded)
    /// replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let Some(secret) = self.0.as_deref().filter(|s| !s.is_empty()) else {
            return text.to_string();
        };
        let encoded = percent_encode(secret);
        let mut out = text.replace(secret, "***");
        if encoded != secret {
            out = out.replace(&encoded, "***");
        }
        out
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Parses a `postgres://` or `postgresql://` URL.
pub fn parse(url: &str) -> anyhow::Result<Target> {
    let url = url.trim();
    if !is_postgres_url(url) {
        bail!("the URL does not start with postgres:// or postgresql://");
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut tls = TlsMode::Prefer;
    let mut roots = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                tls = match percent_decode(value).as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => bail!("sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"),
                }
            }
            "sslrootcert" => {
                let value = percent_decode(value);
                roots = Some(if value == "system" { Roots::System } else { Roots::File(value.into()) });
            }
            // Client certificates are not supported: better refused than ignored.
            "sslcert" | "sslkey" | "sslpassword" => bail!("{key} (client certificates) is not supported"),
            _ => kept.push(pair),
        }
    }
    // tokio-postgres knows disable/prefer/require; verification is done by our
    // own TLS connector, so the driver is told to require TLS.
    let driver_mode = match tls {
        TlsMode::Disable => "disable",
        TlsMode::Prefer => "prefer",
        _ => "require",
    };
    kept.push(match driver_mode {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    let rebuilt = format!("{base}?{}", kept.join("&"));
    let secret = Secret(password_of(base));
    let mut config = postgres::Config::from_str(&rebuilt)
        .map_err(|e| anyhow::anyhow!("the URL does not parse: {}", secret.scrub(&e.to_string())))?;
    if config.get_connect_timeout().is_none() {
        // A server that does not answer must not hold the application's start.
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let secret = match config.get_password() {
        Some(p) => Secret(Some(String::from_utf8_lossy(p).into_owned())),
        None => secret,
    };
    let roots = roots.unwrap_or_else(default_roots);
    Ok(Target { config, tls, roots, secret })
}

/// Does this look like a URL this engine handles?
pub fn is_postgres_url(url: &str) -> bool {
    let url = url.trim_start();
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL with its password replaced by `***` (for messages and history).
pub fn redact(url: &str) -> String {
    let secret = Secret(password_of(url.split('?').next().unwrap_or(url)));
    let mut out = secret.scrub(url);
    // A `password=` query parameter is redacted whatever its value.
    if let Some((base, query)) = out.clone().split_once('?') {
        let pairs: Vec<String> = query
            .split('&')
            .map(|p| if p.starts_with("password=") { "password=***".to_string() } else { p.to_string() })
            .collect();
        out = format!("{base}?{}", pairs.join("&"));
    }
    out
}

/// libpq's default: `~/.postgresql/root.crt` when it exists, else the
/// system's store.
fn default_roots() -> Roots {
    match std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt")) {
        Some(path) if path.is_file() => Roots::File(path),
        _ => Roots::System,
    }
}

/// The raw (still percent-encoded, then decoded) password of
/// `scheme://user:password@host…`, if any.
fn password_of(base: &str) -> Option<String> {
    let rest = base.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    Some(percent_decode(password))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_are_ours_and_the_driver_gets_require() {
        let t = parse("postgres://u:p@localhost:5432/db?sslmode=verify-full&sslrootcert=/x/ca.pem").unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(t.roots, Roots::File("/x/ca.pem".into()));
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(parse("postgres://h/db").unwrap().tls, TlsMode::Prefer);
        assert!(parse("postgres://h/db?sslmode=bogus").is_err());
        assert!(parse("mysql://h/db").is_err());
    }

    #[test]
    fn passwords_are_scrubbed_raw_and_encoded() {
        let t = parse("postgres://app:s%40cr%3At@localhost/db").unwrap();
        assert_eq!(t.secret.scrub("x s@cr:t y s%40cr%3At"), "x *** y ***");
        assert_eq!(redact("postgres://app:hunter2@h/db?password=zz&a=b"), "postgres://app:***@h/db?password=***&a=b");
        assert!(!format!("{:?}", t.secret).contains("s@cr"));
    }

    #[test]
    fn parse_errors_do_not_quote_the_password() {
        let e = parse("postgres://app:hunter2@h/db?connect_timeout=x").err().unwrap();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
