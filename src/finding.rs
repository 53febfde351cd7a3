//! Findings are plain data: what a check saw, how bad it is, and optionally
//! the fix that would repair it. Checks produce them; the planner, the
//! reporters and the exit-code function consume them.

use serde::Serialize;

use crate::safety::Fix;

/// Which part of the application a finding concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Env,
    Fs,
    Db,
    Runtime,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Env => "env",
            Area::Fs => "fs",
            Area::Db => "db",
            Area::Runtime => "runtime",
        }
    }
}

/// What kind of check made a finding: one per check, each with the
/// prefix its finding IDs start with. Three checks look at declared files
/// and share `file:`; `--only` selects by prefix, so they stay together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Env,
    Dir,
    File,
    JsonIntegrity,
    Jsonl,
    Database,
    Heartbeat,
    Lock,
    Pidfile,
    Prune,
    Command,
    Disk,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 12] = [
        Kind::Env,
        Kind::Dir,
        Kind::File,
        Kind::JsonIntegrity,
        Kind::Jsonl,
        Kind::Database,
        Kind::Heartbeat,
        Kind::Lock,
        Kind::Pidfile,
        Kind::Prune,
        Kind::Command,
        Kind::Disk,
    ];

    /// What every finding ID of this kind starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Env => "env:",
            Kind::Dir => "dir:",
            Kind::File | Kind::JsonIntegrity | Kind::Jsonl => "file:",
            Kind::Database => "db:",
            Kind::Heartbeat => "heartbeat:",
            Kind::Lock => "lock:",
            Kind::Pidfile => "pidfile:",
            Kind::Prune => "prune:",
            Kind::Command => "command:",
            Kind::Disk => "disk",
        }
    }

    /// The finding ID for `subject`, e.g. `dir:data`.
    pub fn id(self, subject: impl std::fmt::Display) -> String {
        format!("{}{subject}", self.prefix())
    }

    /// The area its findings belong to.
    pub fn area(self) -> Area {
        match self {
            Kind::Env => Area::Env,
            Kind::Dir | Kind::File | Kind::JsonIntegrity | Kind::Jsonl => Area::Fs,
            Kind::Database => Area::Db,
            Kind::Heartbeat | Kind::Lock | Kind::Pidfile | Kind::Prune | Kind::Command | Kind::Disk => Area::Runtime,
        }
    }
}

/// How bad a finding is. `Critical` sorts first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found on disk.
#[derive(Debug)]
pub struct Finding {
    /// Stable identifier, e.g. `dir:data` or `env:API_KEY`.
    pub id: String,
    pub area: Area,
    pub severity: Severity,
    /// What is wrong, for a human. Never contains a secret value.
    pub message: String,
    pub fix: Option<Fix>,
}

impl Finding {
    pub fn new(id: impl Into<String>, area: Area, severity: Severity, message: impl Into<String>) -> Self {
        Finding { id: id.into(), area, severity, message: message.into(), fix: None }
    }

    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }

    pub fn fixable(&self) -> bool {
        self.fix.is_some()
    }
}

/// A check that passed, kept so reports can count and list what is fine.
#[derive(Debug, Clone, Serialize)]
pub struct Passed {
    pub id: String,
    pub area: Area,
}

/// Everything one validation pass produced.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<Finding>,
    pub passed: Vec<Passed>,
}

impl Findings {
    pub fn push(&mut self, finding: Finding) {
        self.problems.push(finding);
    }

    pub fn pass(&mut self, id: impl Into<String>, area: Area) {
        self.passed.push(Passed { id: id.into(), area });
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.problems.iter().filter(|f| f.severity == severity).count()
    }

    /// Keeps only the findings (and passes) the predicate accepts by ID.
    pub fn retain_ids(&mut self, keep: impl Fn(&str) -> bool) {
        self.problems.retain(|f| keep(&f.id));
        self.passed.retain(|p| keep(&p.id));
    }
}

/// The exit code of the launcher contract: 0 ok, 1 critical, 2 warnings only.
/// With `strict`, warnings count as critical.
pub fn exit_code(problems: &[Finding], strict: bool) -> u8 {
    let critical = problems.iter().any(|f| f.severity == Severity::Critical);
    let warning = problems.iter().any(|f| f.severity == Severity::Warning);
    match (critical, warning, strict) {
        (true, _, _) => 1,
        (false, true, true) => 1,
        (false, true, false) => 2,
        (false, false, _) => 0,
    }
}

/// The word for an exit code in reports; it always matches the code.
pub fn status_word(code: u8) -> &'static str {
    match code {
        0 => "ok",
        2 => "warning",
        _ => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding::new("x", Area::Fs, severity, "m")
    }

    #[test]
    fn exit_code_follows_the_launcher_contract() {
        assert_eq!(exit_code(&[], false), 0);
        assert_eq!(exit_code(&[], true), 0);
        assert_eq!(exit_code(&[finding(Severity::Warning)], false), 2);
        assert_eq!(exit_code(&[finding(Severity::Warning)], true), 1);
        assert_eq!(exit_code(&[finding(Severity::Critical)], false), 1);
        let mixed = [finding(Severity::Warning), finding(Severity::Critical)];
        assert_eq!(exit_code(&mixed, false), 1);
    }

    #[test]
    fn ids_start_with_their_kinds_prefix_and_areas_are_fixed() {
        assert_eq!(Kind::Dir.id("data"), "dir:data");
        assert_eq!(Kind::Jsonl.id("logs/e.jsonl:lines"), "file:logs/e.jsonl:lines");
        assert_eq!(Kind::Database.area(), Area::Db);
        for kind in Kind::ALL {
            assert!(kind.id("x").starts_with(kind.prefix()), "{kind:?}");
        }
    }

    #[test]
    fn status_word_matches_exit_code() {
        assert_eq!(status_word(0), "ok");
        assert_eq!(status_word(1), "critical");
        assert_eq!(status_word(2), "warning");
    }
}
