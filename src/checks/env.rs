//! `[env]`: the `.env` file exists, parses, holds every required key with a
//! value and every key of its template. A required key set in the process
//! environment counts, and wins over the file, as it does for dotenvy:
//! containers and service managers pass configuration that way. Values are
//! read only to test for emptiness; no value ever reaches a message, which
//! says instead where the key was looked for. Without a template, a
//! missing file is fine when the process environment sets every required
//! key.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{BufReader, ErrorKind, Read};

use anyhow::Context;
use std::path::{Path, PathBuf};

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::fsutil;
use crate::manifest::{EnvSpec, Manifest};
use crate::safety::precondition::{Expect, Seen};
use crate::safety::{ApplyCtx, CustomOp, Fix, Op, Phase};

pub struct EnvCheck;

impl Check for EnvCheck {
    fn kind(&self) -> Kind {
        Kind::Env
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        if let Some(spec) = &ctx.manifest.env {
            check_env(ctx.root, spec, &|key| std::env::var_os(key), out);
        }
        Ok(())
    }
}

/// A parsed env file: keys with their values, in file order.
struct EnvFile {
    entries: Vec<(String, String)>,
    text: String,
}

impl EnvFile {
    fn value(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Why an env file could not be read; messages never quote its content.
enum ReadError {
    Missing,
    Other(String),
}

/// Looks a key up in the process environment (a parameter, so tests need
/// not change the test process's own environment).
type ProcessEnv<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn check_env(root: &Path, spec: &EnvSpec, process: ProcessEnv, out: &mut Findings) {
    let critical = severity(spec.severity, Severity::Critical);
    let file_id = Kind::Env.id(spec.file.display());
    let template = match spec.template.as_deref().map(|t| read_env(root, t)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            let what = match e {
                ReadError::Missing => "is missing".to_string(),
                ReadError::Other(why) => why,
            };
            let template_path = spec.template.as_deref().unwrap_or(Path::new(""));
            let message = format!("template {} {what}", template_path.display());
            out.push(Finding::new(Kind::Env.id(template_path.display()), Area::Env, critical, message));
            None
        }
    };
    let env = match read_env(root, &spec.file) {
        Ok(env) => env,
        Err(ReadError::Missing) => {
            // A container or a unit that passes every required key in the
            // process environment needs no file, unless a template says
            // what else it should hold.
            let set = |key: &String| process(key).is_some_and(|v| !v.to_string_lossy().trim().is_empty());
            let from_process = spec.template.is_none() && !spec.required.is_empty() && spec.required.iter().all(set);
            if from_process {
                out.pass(file_id, Area::Env);
            } else {
                out.push(missing_file(spec, &file_id, critical, template.as_ref()));
            }
            check_required(spec, None, process, critical, out);
            return;
        }
        Err(ReadError::Other(why)) => {
            out.push(Finding::new(file_id, Area::Env, critical, why));
            return;
        }
    };
    out.pass(file_id, Area::Env);
    check_required(spec, Some(&env), process, critical, out);
    if let Some(template) = &template {
        check_template_keys(spec, &env, template, out);
    }
}

fn missing_file(spec: &EnvSpec, id: &str, critical: Severity, template: Option<&EnvFile>) -> Finding {
    let finding = Finding::new(id, Area::Env, critical, format!("{} is missing", spec.file.display()));
    match (template, &spec.template) {
        (Some(t), Some(template_path)) => finding.with_fix(Fix::new(
            format!("copy {} (mode 0600)", template_path.display()),
            Phase::Files,
            vec![Op::WriteFile {
                path: spec.file.clone(),
                contents: t.text.clone().into_bytes(),
                mode: Some(0o600),
                secret: true,
                expect: Expect::Absent,
            }],
        )),
        _ => finding,
    }
}

/// Each required key, in the process environment first, then in the file
/// (`None` when the file is missing).
fn check_required(spec: &EnvSpec, env: Option<&EnvFile>, process: ProcessEnv, critical: Severity, out: &mut Findings) {
    let file = spec.file.display();
    for key in &spec.required {
        let id = Kind::Env.id(key);
        let message = match (process(key), env.map(|e| e.value(key))) {
            (Some(v), _) if !v.to_string_lossy().trim().is_empty() => {
                out.pass(id, Area::Env);
                continue;
            }
            // dotenvy keeps a variable the process already has, even empty.
            (Some(_), _) => format!(
                "required key {key} is empty in the process environment, which takes precedence over {file}; give it a value"
            ),
            (None, Some(Some(v))) if !v.trim().is_empty() => {
                out.pass(id, Area::Env);
                continue;
            }
            (None, Some(Some(_))) => {
                format!("required key {key} is empty in {file} and not set in the process environment; give it a value")
            }
            (None, Some(None)) => {
                format!("required key {key} is missing: not in the process environment, not in {file}; set it in either")
            }
            (None, None) => format!(
                "required key {key} is not set: not in the process environment, and {file} is missing; set it in either"
            ),
        };
        out.push(Finding::new(id, Area::Env, critical, message));
    }
}

fn check_template_keys(spec: &EnvSpec, env: &EnvFile, template: &EnvFile, out: &mut Findings) {
    let warning = severity(spec.severity, Severity::Warning);
    let template_path = spec.template.as_deref().unwrap_or(Path::new(""));
    let mut seen = HashMap::new();
    for (key, _) in &template.entries {
        if seen.insert(key.as_str(), ()).is_some() || spec.required.contains(key) {
            continue; // required keys are reported above, and never filled
        }
        let id = Kind::Env.id(key);
        if env.value(key).is_some() {
            out.pass(id, Area::Env);
            continue;
        }
        let line = template_line(&template.text, key);
        let message = format!("key {key} of {} is not in {}", template_path.display(), spec.file.display());
        let op = AppendLine { path: spec.file.clone(), key: key.clone(), line };
        let fix = Fix::new(
            format!("append {key} from {}", template_path.display()),
            Phase::Files,
            vec![Op::Custom(Box::new(op))],
        );
        out.push(Finding::new(id, Area::Env, warning, message).with_fix(fix));
    }
}

fn read_env(root: &Path, rel: &Path) -> Result<EnvFile, ReadError> {
    let path = fsutil::resolve(root, rel).map_err(|e| ReadError::Other(e.to_string()))?;
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Other(format!("{}: {e}", rel.display()))),
    };
    if !meta.is_file() {
        return Err(ReadError::Other(format!("{} is not a regular file", rel.display())));
    }
    let bytes =
        fsutil::read_regular(&path).map_err(|e| ReadError::Other(format!("cannot read {}: {e}", rel.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        ReadError::Other(format!("{} is not valid UTF-8 (line {line})", rel.display()))
    })?;
    let entries = parse(&text).map_err(|line| {
        let what = text.lines().nth(line - 1).map(what_is_wrong).unwrap_or_default();
        ReadError::Other(format!("syntax error in {} at line {line}: {what}", rel.display()))
    })?;
    Ok(EnvFile { entries, text })
}

/// A variable as the application sees it: the process environment wins,
/// then the manifest's `.env` file (default `.env`). For URLs the
/// `[[database]]` check needs; the value is never printed.
pub fn variable(root: &Path, manifest: &Manifest, name: &str) -> Option<String> {
    if let Some(value) = std::env::var_os(name) {
        return Some(value.to_string_lossy().into_owned());
    }
    let file = manifest.env.as_ref().map_or_else(|| Path::new(".env").to_path_buf(), |e| e.file.clone());
    let text = std::fs::read_to_string(fsutil::resolve(root, &file).ok()?).ok()?;
    parse(&text).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Key/value pairs, or the 1-based line of the first syntax error.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut entries = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(pair) => entries.push(pair),
            Err(dotenvy::Error::LineParse(logical_line, _)) => return Err(line_of(text, &logical_line)),
            Err(_) => return Err(1),
        }
    }
    Ok(entries)
}

/// What is wrong with a line dotenvy rejected, in words that never repeat
/// a value (it may be a secret), nor anything before a `=` (a secret
/// pasted alone on a line would otherwise be shown as a "key").
fn what_is_wrong(line: &str) -> String {
    let body = line.trim_start();
    let body = body.strip_prefix("export ").map(str::trim_start).unwrap_or(body);
    let key_end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(body.len());
    let rest = body[key_end..].trim_start();
    if !body.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') || !rest.starts_with('=') {
        return "expected KEY=value (a key is a letter or _ followed by letters, digits, _ or .), a # comment, \
                or a blank line"
            .into();
    }
    let key = &body[..key_end];
    let value = rest[1..].trim_start();
    let quote = value.chars().next().filter(|q| *q == '\'' || *q == '"');
    match quote {
        Some(q) if !closes(&value[1..], q) => {
            let kind = if q == '\'' { "single" } else { "double" };
            format!("the value of {key} opens a {kind} quote that is never closed")
        }
        None if value.split('#').next().unwrap_or("").trim_end().contains(char::is_whitespace) => {
            format!("the value of {key} has a space outside quotes: put the value in quotes")
        }
        _ => format!("the value of {key} cannot be read: check its quotes, backslashes and ${{…}} references"),
    }
}

/// Whether `text` holds the closing `quote` (a backslash escapes a double quote).
fn closes(text: &str, quote: char) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

/// The line where `fragment` (a logical line dotenvy rejected) starts.
fn line_of(text: &str, fragment: &str) -> usize {
    let offset = text.find(fragment.trim_end()).unwrap_or(0);
    text[..offset].matches('\n').count() + 1
}

/// The template's own line for `key`, so quoting and comments survive; a
/// multi-line value falls back to `KEY=` with the value re-quoted.
fn template_line(template: &str, key: &str) -> String {
    let defines = |line: &str| {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    template
        .lines()
        .find(|line| defines(line) && parse(line).is_ok_and(|e| e.iter().any(|(k, _)| k == key)))
        .map(|line| line.trim_end().to_string())
        .unwrap_or_else(|| {
            let value = parse(template).ok().and_then(|e| e.into_iter().find(|(k, _)| k == key)).map(|(_, v)| v);
            format!("{key}={}", quote(&value.unwrap_or_default()))
        })
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// Appends one `KEY=value` line to the env file as it is when heal runs, so
/// several appends compose. The file is rewritten atomically and its
/// original quarantined (once per run).
struct AppendLine {
    path: PathBuf,
    key: String,
    line: String,
}

impl CustomOp for AppendLine {
    fn describe(&self) -> Vec<String> {
        // The line holds the template's value: name the key only.
        vec![format!("append {}=… to {}", self.key, self.path.display())]
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let mut text = Vec::new();
        let file = ctx.read(&self.path)?.with_context(|| format!("{} is gone", self.path.display()))?;
        BufReader::new(&file).read_to_end(&mut text)?;
        // Read now, not at check time: appends of one run compose. The
        // write still goes ahead only if nothing changed it since this read.
        let seen = Seen::of(&file.metadata()?).with_hash(&text);
        if parse(&String::from_utf8_lossy(&text)).is_ok_and(|e| e.iter().any(|(k, _)| *k == self.key)) {
            return Ok(format!("{} already present", self.key));
        }
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(self.line.as_bytes());
        text.push(b'\n');
        ctx.write_file(&self.path, &text, None, &Expect::Unchanged(seen))?;
        Ok(format!("appended {}", self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_says_what_is_wrong_and_never_shows_a_value() {
        assert_eq!(what_is_wrong("C='open"), "the value of C opens a single quote that is never closed");
        assert_eq!(what_is_wrong("export D=\"a \\\" b"), "the value of D opens a double quote that is never closed");
        assert_eq!(
            what_is_wrong("E=two words # c"),
            "the value of E has a space outside quotes: put the value in quotes"
        );
        let pasted = what_is_wrong("AKIAIOSFODNN7EXAMPLE");
        assert!(pasted.starts_with("expected KEY=value") && !pasted.contains("AKIA"), "{pasted}");
        assert!(what_is_wrong("1A=x").starts_with("expected KEY=value"));
        assert!(what_is_wrong("F=\\q").starts_with("the value of F cannot be read"));
    }

    #[test]
    fn parse_reports_the_line_of_a_syntax_error() {
        assert_eq!(parse("A=1\nB=2\nC='open\n"), Err(3));
        assert_eq!(parse("A=1\nB C\n"), Err(2));
        assert_eq!(parse("A=1\n# c\nexport B=\"x y\"\n").unwrap().len(), 2);
    }

    #[test]
    fn template_line_keeps_the_template_text() {
        let template = "# comment\nexport LOG_LEVEL='info' # level\nNAME=x\n";
        assert_eq!(template_line(template, "LOG_LEVEL"), "export LOG_LEVEL='info' # level");
        assert_eq!(template_line(template, "NAME"), "NAME=x");
    }

    fn spec(required: &[&str]) -> EnvSpec {
        EnvSpec {
            file: ".env".into(),
            template: None,
            required: required.iter().map(|k| k.to_string()).collect(),
            severity: None,
        }
    }

    /// The findings for `spec` on a root holding `env` (or no `.env`),
    /// with a process environment of `vars`.
    fn findings(spec: &EnvSpec, env: Option<&str>, vars: &[(&str, &str)]) -> Findings {
        let root = tempfile::tempdir().unwrap();
        if let Some(text) = env {
            fs::write(root.path().join(".env"), text).unwrap();
        }
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut out = Findings::default();
        check_env(root.path(), spec, &|key| vars.get(key).map(OsString::from), &mut out);
        out
    }

    fn message(out: &Findings, id: &str) -> Option<String> {
        out.problems.iter().find(|f| f.id == id).map(|f| f.message.clone())
    }

    #[test]
    fn a_required_key_in_the_process_environment_counts() {
        let out = findings(&spec(&["DOMAIN"]), Some("OTHER=1\n"), &[("DOMAIN", "sk-live-domain")]);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert!(out.passed.iter().any(|p| p.id == "env:DOMAIN"));
    }

    #[test]
    fn the_process_environment_wins_over_the_file() {
        // Set but empty in the process: dotenvy would not override it.
        let out = findings(&spec(&["DOMAIN"]), Some("DOMAIN=sk-live-x\n"), &[("DOMAIN", "")]);
        let m = message(&out, "env:DOMAIN").unwrap();
        assert!(m.contains("empty in the process environment"), "{m}");
        assert!(!m.contains("sk-live"), "{m}");
    }

    #[test]
    fn messages_say_where_a_key_was_looked_for() {
        let out = findings(&spec(&["A", "B"]), Some("B=\n"), &[]);
        let a = message(&out, "env:A").unwrap();
        assert!(a.contains("not in the process environment") && a.contains(".env"), "{a}");
        let b = message(&out, "env:B").unwrap();
        assert!(b.contains("empty in .env") && b.contains("process environment"), "{b}");
        let missing = findings(&spec(&["A"]), None, &[]);
        let m = message(&missing, "env:A").unwrap();
        assert!(m.contains(".env is missing") && m.contains("process environment"), "{m}");
        let from_process = findings(&spec(&["A"]), None, &[("A", "1")]);
        assert!(from_process.problems.is_empty(), "set in the process, no .env needed: {:?}", from_process.problems);
        let partly = findings(&spec(&["A", "B"]), None, &[("A", "1")]);
        assert!(message(&partly, "env:.env").is_some(), "B is set nowhere: the missing file matters");
    }

    #[test]
    fn template_line_requotes_multi_line_values() {
        let template = "CERT=\"a\nb\"\n";
        assert_eq!(template_line(template, "CERT"), "CERT=\"a\\nb\"");
    }
}
