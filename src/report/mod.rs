//! Reports: the only code that prints. A `Report` gathers what a command
//! found and did; one renderer per format turns it into text. `progress`
//! draws the bars of long work on stderr while it runs.

pub mod history;
mod human;
mod json;
mod junit;
pub mod progress;
pub mod rollback;

use std::io::{self, Write};

use crate::finding::{exit_code, status_word, Findings};
use crate::heal::{ActionRecord, HealResult};
use std::borrow::Cow;

pub use human::render_error as human_error;
pub use json::render_error as json_error;
pub use junit::render_error as junit_error;

/// A planned fix, as `heal --dry-run` shows it.
#[derive(Debug, serde::Serialize)]
pub struct PlanEntry {
    pub id: String,
    pub action: String,
    pub steps: Vec<String>,
}

/// Everything a command has to say.
pub struct Report<'a> {
    pub command: &'static str,
    /// What validation found (for heal: before any fix).
    pub findings: &'a Findings,
    /// `heal --dry-run`: what would be done.
    pub plan: Option<Vec<PlanEntry>>,
    pub actions: &'a [ActionRecord],
    /// For heal: the findings after the fixes, when any ran.
    pub after: Option<&'a Findings>,
    /// Fixes were applied (or could have been): the report has actions and
    /// an after-state, even when both are empty.
    pub healed: bool,
    pub strict: bool,
}

impl<'a> Report<'a> {
    pub fn validate(findings: &'a Findings, strict: bool) -> Self {
        Report { command: "validate", findings, plan: None, actions: &[], after: None, healed: false, strict }
    }

    pub fn dry_run(findings: &'a Findings, strict: bool) -> Self {
        let plan = crate::heal::plan(findings)
            .into_iter()
            .filter_map(|f| {
                let fix = f.fix.as_ref()?;
                Some(PlanEntry { id: f.id.clone(), action: fix.action.clone(), steps: fix.describe() })
            })
            .collect();
        Report { command: "heal", findings, plan: Some(plan), actions: &[], after: None, healed: false, strict }
    }

    pub fn heal(result: &'a HealResult, strict: bool) -> Self {
        Report {
            command: "heal",
            findings: &result.before,
            plan: None,
            actions: &result.actions,
            after: result.after.as_ref(),
            healed: true,
            strict,
        }
    }

    /// The findings that describe the disk as it is now.
    pub fn current(&self) -> &Findings {
        self.after.unwrap_or(self.findings)
    }

    pub fn exit_code(&self) -> u8 {
        exit_code(&self.current().problems, self.strict)
    }

    pub fn status(&self) -> &'static str {
        status_word(self.exit_code())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human { quiet: bool },
    Json,
    Junit,
}

/// Writes the report in the chosen format.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Human { quiet } => human::render(report, quiet, out),
        Format::Json => json::render(report, out),
        Format::Junit => junit::render(report, out),
    }
}

/// Text from file names or data, safe for a terminal: control characters
/// (escape sequences above all) are shown escaped, never sent raw.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' => "\\n".to_string(),
                '\t' => "\\t".to_string(),
                '\r' => "\\r".to_string(),
                c if c.is_control() => c.escape_unicode().to_string(),
                c => c.to_string(),
            })
            .collect(),
    )
}

/// The manifest's JSON Schema, as `preflight schema` prints it.
pub fn schema(schema: &serde_json::Value, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(schema).unwrap_or_default())
}

/// Generated text (completions, the man page), written as it is.
pub fn generated(bytes: &[u8], out: &mut dyn Write) -> io::Result<()> {
    out.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("data/a.json"), "data/a.json");
        assert_eq!(escape("a\x1b[31mred"), "a\\u{1b}[31mred");
        assert_eq!(escape("two\nlines"), "two\\nlines");
    }
}
