//! `ignore`: the drift a deployment expects (a migration tool's own
//! table, columns an older release still writes). Names, `table.column`
//! and globs of either, matched as SQLite matches names (ASCII case
//! folded). What matches is not reported at all, so a converged install
//! passes `--strict`; an ignored table takes its indexes and triggers
//! with it.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The compiled `ignore` list of one database.
#[derive(Debug, Clone)]
pub struct Ignore {
    set: GlobSet,
}

impl Ignore {
    /// Compiles the patterns (the manifest has already refused bad ones;
    /// one that still does not compile matches nothing).
    pub fn new(patterns: &[String]) -> Ignore {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            if let Ok(glob) = GlobBuilder::new(pattern).case_insensitive(true).build() {
                builder.add(glob);
            }
        }
        Ignore { set: builder.build().unwrap_or_else(|_| GlobSet::empty()) }
    }

    /// A table, view, index or trigger by name.
    pub fn name(&self, name: &str) -> bool {
        !self.set.is_empty() && self.set.is_match(name)
    }

    /// A column of `table`, as `table.column`.
    pub fn column(&self, table: &str, column: &str) -> bool {
        !self.set.is_empty() && self.set.is_match(format!("{table}.{column}"))
    }

    /// An index or trigger: by its own name, or by its table's.
    pub fn object(&self, name: &str, table: &str) -> bool {
        self.name(name) || self.name(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_columns_and_globs_match_case_insensitively() {
        let ignore =
            Ignore::new(&["migration_history".into(), "legacy_*".into(), "users.old_flag".into(), "t.*".into()]);
        assert!(ignore.name("Migration_History") && ignore.name("legacy_orders"));
        assert!(!ignore.name("users") && !ignore.name("my_legacy_x"));
        assert!(ignore.column("USERS", "old_flag") && ignore.column("t", "anything"));
        assert!(!ignore.column("users", "new_flag"));
        assert!(ignore.object("idx_whatever", "legacy_orders"));
        assert!(!Ignore::new(&[]).name("x"));
    }
}
