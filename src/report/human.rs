//! Human output: findings grouped by area, one line each with its ID,
//! coloured by severity, then a summary line. Heal adds its actions and the
//! result of validating again.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::{escape, Report};
use crate::finding::{Area, Finding, Findings, Severity};
use crate::safety::Outcome;

const CRITICAL: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const OK: Style = AnsiColor::Green.on_default().bold();
const DIM: Style = Style::new().dimmed();
const HEADING: Style = Style::new().bold();

pub fn render(report: &Report, quiet: bool, out: &mut dyn Write) -> io::Result<()> {
    if quiet && report.exit_code() == 0 {
        return Ok(());
    }
    if let Some(plan) = &report.plan {
        findings(report.findings, out)?;
        return plan_section(plan, out).and_then(|()| summary(report.findings, report, out));
    }
    if report.healed && report.after.is_some() {
        findings(report.findings, out)?;
        actions(report, out)?;
        writeln!(out, "\n{HEADING}after heal{HEADING:#}")?;
        if report.current().problems.is_empty() {
            writeln!(out, "  nothing left to fix")?;
        }
        findings(report.current(), out)?;
    } else if report.healed && !report.actions.is_empty() {
        // Nothing ran (every fix was held back): the findings are the state.
        findings(report.findings, out)?;
        actions(report, out)?;
    } else {
        findings(report.findings, out)?;
    }
    if quiet {
        return Ok(());
    }
    summary(report.current(), report, out)
}

pub fn render_error(message: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{CRITICAL}error{CRITICAL:#}: {message}")
}

fn findings(findings: &Findings, out: &mut dyn Write) -> io::Result<()> {
    let width = findings.problems.iter().map(|f| f.id.chars().count()).max().unwrap_or(0).min(48);
    for area in [Area::Env, Area::Fs, Area::Db, Area::Runtime] {
        let mut in_area: Vec<&Finding> = findings.problems.iter().filter(|f| f.area == area).collect();
        if in_area.is_empty() {
            continue;
        }
        in_area.sort_by_key(|f| f.severity);
        writeln!(out, "{HEADING}{}{HEADING:#}", area.as_str())?;
        for finding in in_area {
            line(finding, width, out)?;
        }
    }
    Ok(())
}

fn line(finding: &Finding, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let (style, word) = match finding.severity {
        Severity::Critical => (CRITICAL, "critical"),
        Severity::Warning => (WARNING, "warning "),
    };
    let fixable = if finding.fixable() { format!(" {DIM}[fixable]{DIM:#}") } else { String::new() };
    let id = escape(&finding.id);
    writeln!(out, "  {style}{word}{style:#}  {id:<width$}  {}{fixable}", escape(&finding.message))
}

fn plan_section(plan: &[super::PlanEntry], out: &mut dyn Write) -> io::Result<()> {
    if plan.is_empty() {
        return writeln!(out, "{HEADING}plan{HEADING:#}: nothing to do");
    }
    writeln!(out, "{HEADING}plan{HEADING:#} (dry run: nothing is changed)")?;
    for entry in plan {
        writeln!(out, "  {}  {DIM}{}{DIM:#}", escape(&entry.id), escape(&entry.action))?;
        for step in &entry.steps {
            // SQL steps keep their own line breaks; each line gets the indent.
            for line in step.lines() {
                writeln!(out, "      {}", escape(line))?;
            }
        }
    }
    Ok(())
}

fn actions(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{HEADING}heal{HEADING:#}")?;
    let width = report.actions.iter().map(|a| a.id.chars().count()).max().unwrap_or(0).min(48);
    for action in report.actions {
        let (style, word) = match action.outcome {
            Outcome::Done => (OK, "done  "),
            Outcome::Failed => (CRITICAL, "failed"),
            Outcome::Tripped | Outcome::Held | Outcome::Unknown => (WARNING, "held  "),
        };
        let detail = if action.detail.is_empty() { String::new() } else { format!(": {}", action.detail) };
        let (id, detail) = (escape(&action.id), escape(&detail));
        writeln!(out, "  {style}{word}{style:#}  {id:<width$}  {}{detail}", escape(&action.action))?;
    }
    Ok(())
}

fn summary(findings: &Findings, report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let critical = findings.count(Severity::Critical);
    let warning = findings.count(Severity::Warning);
    let ok = findings.passed.len();
    let style = match report.exit_code() {
        0 => OK,
        2 => WARNING,
        _ => CRITICAL,
    };
    let count = |o: Outcome| report.actions.iter().filter(|a| a.outcome == o).count();
    let (fixed, failed) = (count(Outcome::Done), count(Outcome::Failed));
    let held = report.actions.len() - fixed - failed;
    let healed = match (report.actions.is_empty(), held) {
        (true, _) => String::new(),
        (false, 0) => format!("{fixed} fixed, {failed} failed; "),
        (false, held) => format!("{fixed} fixed, {failed} failed, {held} held back; "),
    };
    let plural = if warning == 1 { "" } else { "s" };
    writeln!(out, "{style}{healed}{critical} critical, {warning} warning{plural}, {ok} ok{style:#}")
}
