//! `init --database-url-env`: the live namespace written out as starter DDL,
//! from the same catalog reader validate uses (not pg_dump), so that the
//! file it writes validates as converged against the database it came from.

use postgres::IsolationLevel;

use super::catalog::{self, Quoter};
use super::connect::{connect, describe};
use super::ddl;
use super::inspect::search_tail;
use super::url::redact;
use super::Error;

/// The DDL of namespace `ns` at `url`.
pub fn dump(url: &str, ns: &str) -> Result<String, Error> {
    let mut session = connect(url).map_err(Error::Unreachable)?;
    let secret = session.secret.clone();
    let server = |e: postgres::Error| Error::Server(secret.scrub(&describe(&e)));
    let mut tx = session
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(server)?;
    let q = Quoter::load(&mut tx).map_err(server)?;
    let tail = search_tail(&mut tx, ns, &q).map_err(server)?;
    tx.batch_execute(&format!("SET LOCAL search_path = {}{tail}", q.ident(ns))).map_err(server)?;
    let schema = catalog::read(&mut tx, ns).map_err(server)?;
    let extensions = catalog::extensions(&mut tx).map_err(server)?;
    tx.rollback().map_err(server)?;

    let mut out = vec![format!(
        "-- Schema {ns} of {}, read from the catalog by preflight init.\n\
         -- Names are unqualified: they are created in the [[database]] namespace.",
        redact_db(url)
    )];
    for e in extensions.iter().filter(|e| *e != "plpgsql") {
        out.push(format!("CREATE EXTENSION IF NOT EXISTS {};", q.ident(e)));
    }
    for (name, labels) in &schema.enums {
        out.push(format!("{};", ddl::create_enum(&q, name, labels)));
    }
    for (name, s) in &schema.sequences {
        out.push(format!("{};", ddl::create_sequence(&q, name, s)));
    }
    for (name, table) in &schema.tables {
        out.push(format!("{};", ddl::create_table(&q, name, table)));
    }
    for (name, s) in &schema.sequences {
        if let Some((t, c)) = &s.owned_by {
            out.push(format!("{};", ddl::owned_by(&q, name, t, c)));
        }
    }
    for (name, table) in &schema.tables {
        out.extend(ddl::foreign_keys(&q, name, table).into_iter().map(|s| format!("{s};")));
    }
    for (name, index) in schema.indexes.iter().filter(|(_, i)| !i.constraint) {
        out.push(format!("{};", ddl::create_index(&q, name, index, false)));
    }
    let mut views: Vec<_> = schema.views.iter().collect();
    views.sort_by_key(|(_, v)| v.order);
    for (name, view) in views {
        out.push(format!("{};", ddl::create_view(&q, name, view, false)));
    }
    Ok(out.join("\n\n") + "\n")
}

/// `host:port/db` of a URL, for the header (no user, no password).
fn redact_db(url: &str) -> String {
    let shown = redact(url);
    let rest = shown.split_once("://").map_or(shown.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_no_user_or_password() {
        assert_eq!(redact_db("postgres://app:pw@db.local:5433/shop?sslmode=require"), "db.local:5433/shop");
    }
}
