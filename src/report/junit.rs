//! `--format junit`: JUnit XML for CI systems. One test case per check
//! result: a passed check is a passing case, a critical finding a
//! `<failure>`, a warning a `<skipped>` case (visible, but not failing the
//! build, as exit code 2 does not stop a launcher).

use std::io::{self, Write};

use super::Report;
use crate::finding::{Finding, Severity};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let findings = report.current();
    let failures = findings.count(Severity::Critical);
    let skipped = findings.count(Severity::Warning);
    let tests = findings.passed.len() + findings.problems.len();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="preflight" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">"#
    )?;
    writeln!(
        out,
        r#"  <testsuite name="preflight {}" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">"#,
        report.command
    )?;
    for passed in &findings.passed {
        writeln!(out, r#"    <testcase classname="{}" name="{}"/>"#, passed.area.as_str(), escape(&passed.id))?;
    }
    for finding in &findings.problems {
        problem(finding, out)?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

/// A run that could not happen still produces a report CI can show.
pub fn render_error(command: &str, message: &str, out: &mut dyn Write) -> io::Result<()> {
    let message = escape(message);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(out, r#"<testsuites name="preflight" tests="1" failures="0" errors="1" skipped="0">"#)?;
    writeln!(out, r#"  <testsuite name="preflight {command}" tests="1" failures="0" errors="1" skipped="0">"#)?;
    writeln!(out, r#"    <testcase classname="preflight" name="{command}">"#)?;
    writeln!(out, r#"      <error message="{message}">{message}</error>"#)?;
    writeln!(out, "    </testcase>\n  </testsuite>\n</testsuites>")
}

fn problem(finding: &Finding, out: &mut dyn Write) -> io::Result<()> {
    let message = escape(&finding.message);
    let fixable = if finding.fixable() { " (fixable by preflight heal)" } else { "" };
    writeln!(out, r#"    <testcase classname="{}" name="{}">"#, finding.area.as_str(), escape(&finding.id))?;
    match finding.severity {
        Severity::Critical => {
            writeln!(out, r#"      <failure type="critical" message="{message}">{message}{fixable}</failure>"#)?
        }
        Severity::Warning => writeln!(out, r#"      <skipped message="warning: {message}{fixable}"/>"#)?,
    }
    writeln!(out, "    </testcase>")
}

/// Escapes text for XML attributes and content. Characters XML 1.0 cannot
/// hold at all (most control characters) become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_handles_markup_quotes_and_control_characters() {
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("x\u{1}y\nz"), "x\u{FFFD}y&#10;z");
    }
}
