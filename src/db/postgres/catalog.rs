//! Reading one namespace from the system catalogs. The same queries read
//! the live namespace and the scratch namespace the DDL was loaded into, so
//! both sides are described by the server's own deparsers (`format_type`,
//! `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`). Those print a name unqualified when it is visible on
//! the `search_path`, which is why the caller puts the namespace read first
//! on it: the two sides then print the same text for the same schema.
//!
//! Objects that belong to an extension are left out: the extension owns them.

use std::collections::{BTreeMap, HashSet};

use postgres::GenericClient;

/// One namespace.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
    pub indexes: BTreeMap<String, Index>,
    pub views: BTreeMap<String, View>,
    pub sequences: BTreeMap<String, Sequence>,
    /// Enum type → labels in their sort order.
    pub enums: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Table {
    /// `pg_get_partkeydef` of a partitioned table: `RANGE (day)`.
    pub partition_key: Option<String>,
    pub columns: Vec<Column>,
    pub constraints: BTreeMap<String, Constraint>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// `format_type` of the column: `integer`, `character varying(20)`, …
    pub data_type: String,
    pub not_null: bool,
    /// The default expression (not for generated columns).
    pub default: Option<String>,
    /// `a` (ALWAYS), `d` (BY DEFAULT) or empty.
    pub identity: String,
    /// The generation expression of a `GENERATED ALWAYS AS (…) STORED` column.
    pub generated: Option<String>,
    /// A collation other than the type's default.
    pub collation: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// `p` primary key, `u` unique, `f` foreign key, `c` check, `x` exclusion.
    pub kind: char,
    /// `pg_get_constraintdef`: `PRIMARY KEY (id)`, `CHECK ((price > 0))`, …
    pub definition: String,
    pub validated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub table: String,
    pub unique: bool,
    /// Backs a PRIMARY KEY, UNIQUE or EXCLUDE constraint (compared there).
    pub constraint: bool,
    pub valid: bool,
    /// `pg_get_indexdef` from `USING` on: method, columns, expressions,
    /// opclasses, INCLUDE, WITH, WHERE — everything but names.
    pub shape: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Creation order (the OID): a view is created after those it reads.
    pub order: u32,
    pub materialized: bool,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// `table.column` of `OWNED BY`.
    pub owned_by: Option<(String, String)>,
}

/// Objects that belong to an extension are excluded by this condition.
const NOT_EXTENSION_MEMBER: &str = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e \
     WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')";

/// Reads namespace `ns`. The `search_path` must already start with `ns`.
pub fn read(client: &mut impl GenericClient, ns: &str) -> Result<Schema, postgres::Error> {
    let mut schema = Schema::default();
    read_columns(client, ns, &mut schema)?;
    read_constraints(client, ns, &mut schema)?;
    read_indexes(client, ns, &mut schema)?;
    read_views(client, ns, &mut schema)?;
    read_sequences(client, ns, &mut schema)?;
    read_enums(client, ns, &mut schema)?;
    Ok(schema)
}

fn read_columns(client: &mut impl GenericClient, ns: &str, schema: &mut Schema) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT c.relname::text, CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END, \
                a.attname::text, \
                pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text, \
                CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND {NOT_EXTENSION_MEMBER} \
         ORDER BY c.relname, a.attnum"
    );
    for row in client.query(&sql, &[&ns])? {
        let table = schema.tables.entry(row.get(0)).or_default();
        table.partition_key = row.get(1);
        let Some(name) = row.get::<_, Option<String>>(2) else { continue };
        let expr: Option<String> = row.get(5);
        let generated: String = row.get(7);
        let (default, generated) = if generated.is_empty() { (expr, None) } else { (None, expr) };
        table.columns.push(Column {
            name,
            data_type: row.get(3),
            not_null: row.get(4),
            default,
            identity: row.get(6),
            generated,
            collation: row.get(8),
        });
    }
    Ok(())
}

fn read_constraints(client: &mut impl GenericClient, ns: &str, schema: &mut Schema) -> Result<(), postgres::Error> {
    let sql = "SELECT c.relname::text, k.conname::text, k.contype::text, \
                      pg_catalog.pg_get_constraintdef(k.oid), k.convalidated \
               FROM pg_catalog.pg_constraint k \
               JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
               WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND k.contype IN ('p', 'u', 'f', 'c', 'x')";
    for row in client.query(sql, &[&ns])? {
        let Some(table) = schema.tables.get_mut(row.get::<_, &str>(0)) else { continue };
        let kind: String = row.get(2);
        table.constraints.insert(
            row.get(1),
            Constraint { kind: kind.chars().next().unwrap_or('c'), definition: row.get(3), validated: row.get(4) },
        );
    }
    Ok(())
}

fn read_indexes(client: &mut impl GenericClient, ns: &str, schema: &mut Schema) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT i.relname::text, c.relname::text, pg_catalog.pg_get_indexdef(i.oid), x.indisvalid, x.indisunique, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k \
                        WHERE k.conindid = i.oid AND k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x')), \
                pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) \
         FROM pg_catalog.pg_index x \
         JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
         JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm') AND {NOT_EXTENSION_MEMBER}"
    );
    for row in client.query(&sql, &[&ns])? {
        let definition: String = row.get(2);
        let qualified: String = row.get(6);
        schema.indexes.insert(
            row.get(0),
            Index {
                table: row.get(1),
                unique: row.get(4),
                constraint: row.get(5),
                valid: row.get(3),
                shape: shape(&definition, &qualified),
            },
        );
    }
    Ok(())
}

/// The part of `CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING …`
/// that follows the (always schema-qualified) table name.
pub fn shape(definition: &str, qualified_table: &str) -> String {
    let needle = format!("{qualified_table} USING ");
    match definition.find(&needle) {
        Some(at) => definition[at + qualified_table.len() + 1..].to_string(),
        None => definition.to_string(),
    }
}

fn read_views(client: &mut impl GenericClient, ns: &str, schema: &mut Schema) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT c.relname::text, c.relkind = 'm', pg_catalog.pg_get_viewdef(c.oid), c.oid \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('v', 'm') AND {NOT_EXTENSION_MEMBER}"
    );
    for row in client.query(&sql, &[&ns])? {
        let definition: String = row.get(2);
        schema.views.insert(
            row.get(0),
            View {
                order: row.get(3),
                materialized: row.get(1),
                definition: definition.trim().trim_end_matches(';').to_string(),
            },
        );
    }
    Ok(())
}

fn read_sequences(client: &mut impl GenericClient, ns: &str, schema: &mut Schema) -> Result<(), postgres::Error> {
    // Identity columns own an internal sequence (deptype 'i'): part of the column.
    let sql = format!(
        "SELECT c.relname::text, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, \
                s.seqmin, s.seqmax, s.seqcache, s.seqcycle, ot.relname::text, oa.attname::text, d.deptype::text \
         FROM pg_catalog.pg_sequence s \
         JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid \
              AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i') \
         LEFT JOIN pg_catalog.pg_class ot ON ot.oid = d.refobjid \
         LEFT JOIN pg_catalog.pg_attribute oa ON oa.attrelid = d.refobjid AND oa.attnum = d.refobjsubid \
         WHERE n.nspname = $1 AND {NOT_EXTENSION_MEMBER}"
    );
    for row in client.query(&sql, &[&ns])? {
        if row.get::<_, Option<String>>(10).as_deref() == Some("i") {
            continue;
        }
        let owned_by = match (row.get::<_, Option<String>>(8), row.get::<_, Option<String>>(9)) {
            (Some(t), Some(c)) => Some((t, c)),
            _ => None,
        };
        schema.sequences.insert(
            row.get(0),
            Sequence {
                data_type: row.get(1),
                start: row.get(2),
                increment: row.get(3),
                min: row.get(4),
                max: row.get(5),
                cache: row.get(6),
                cycle: row.get(7),
                owned_by,
            },
        );
    }
    Ok(())
}

fn read_enums(client: &mut impl GenericClient, ns: &str, schema: &mut Schema) -> Result<(), postgres::Error> {
    let sql = "SELECT t.typname::text, e.enumlabel::text \
               FROM pg_catalog.pg_type t \
               JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
               JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid \
               WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x \
                   WHERE x.classid = 'pg_catalog.pg_type'::regclass AND x.objid = t.oid AND x.deptype = 'e') \
               ORDER BY t.typname, e.enumsortorder";
    for row in client.query(sql, &[&ns])? {
        schema.enums.entry(row.get(0)).or_default().push(row.get(1));
    }
    Ok(())
}

/// Installed extensions (database-wide), by name.
pub fn extensions(client: &mut impl GenericClient) -> Result<Vec<String>, postgres::Error> {
    let rows = client.query("SELECT extname::text FROM pg_catalog.pg_extension ORDER BY 1", &[])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Quotes identifiers the way `quote_ident` does, with the server's own
/// keyword list (fetched once).
#[derive(Debug, Clone, Default)]
pub struct Quoter {
    reserved: HashSet<String>,
}

impl Quoter {
    pub fn load(client: &mut impl GenericClient) -> Result<Quoter, postgres::Error> {
        let rows = client.query("SELECT word FROM pg_catalog.pg_get_keywords() WHERE catcode <> 'U'", &[])?;
        Ok(Quoter { reserved: rows.iter().map(|r| r.get(0)).collect() })
    }

    pub fn ident(&self, name: &str) -> String {
        let simple = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if simple && !self.reserved.contains(name) {
            name.to_string()
        } else {
            format!("\"{}\"", name.replace('"', "\"\""))
        }
    }
}

/// A string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_shape_drops_names_and_schema() {
        let def = "CREATE UNIQUE INDEX users_email ON public.users USING btree (lower(email)) WHERE (deleted IS NULL)";
        assert_eq!(shape(def, "public.users"), "USING btree (lower(email)) WHERE (deleted IS NULL)");
        assert_eq!(shape("odd", "public.users"), "odd");
    }

    #[test]
    fn quoting_follows_quote_ident() {
        let q = Quoter { reserved: ["order".to_string()].into_iter().collect() };
        assert_eq!(q.ident("users"), "users");
        assert_eq!(q.ident("order"), "\"order\"");
        assert_eq!(q.ident("Mixed"), "\"Mixed\"");
        assert_eq!(q.ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
