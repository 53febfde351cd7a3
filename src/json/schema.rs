//! JSON Schema invariants (`schema = "…"` on a `[[file]]`): the schema is
//! compiled once per check run; a violation names the JSON Pointer of the
//! offending value and the rule broken. Violations are reported, never
//! fixed: only the application knows what the right value is.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::salvage::show_pointer;

/// How many violations a message spells out; the rest are counted.
pub const SHOWN: usize = 5;

/// The longest a single violation's text gets (it may quote the value).
const MAX_TEXT: usize = 200;

/// A compiled schema.
pub struct Schema {
    validator: jsonschema::Validator,
}

/// Violations of one document (or of every line of a JSONL file).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations {
    /// The first `SHOWN`, as `pointer: what is wrong (keyword)`.
    pub shown: Vec<String>,
    pub total: usize,
}

impl Violations {
    /// Records one violation; `prefix` locates it (e.g. `line 12: `).
    pub fn push(&mut self, prefix: &str, text: impl FnOnce() -> String) {
        self.total += 1;
        if self.shown.len() < SHOWN {
            self.shown.push(format!("{prefix}{}", text()));
        }
    }

    /// One message for a finding: the shown violations and a count of the rest.
    pub fn message(&self) -> String {
        let mut text = format!(
            "violates its JSON Schema ({} violation{}): {}",
            self.total,
            if self.total == 1 { "" } else { "s" },
            self.shown.join("; ")
        );
        let rest = self.total - self.shown.len();
        if rest > 0 {
            text.push_str(&format!("; and {rest} more"));
        }
        text
    }
}

impl Schema {
    /// Reads and compiles the schema at `rel` under `root`.
    pub fn load(root: &Path, rel: &Path) -> anyhow::Result<Schema> {
        let path = crate::fsutil::resolve(root, rel)?;
        // A FIFO or device in its place is refused at once, never waited on.
        let text = crate::fsutil::read_regular(&path)
            .with_context(|| format!("cannot read the JSON Schema {}", rel.display()))?;
        let value: Value = serde_json::from_slice(&text)
            .with_context(|| format!("the JSON Schema {} is not valid JSON", rel.display()))?;
        Schema::compile(&value).with_context(|| format!("the JSON Schema {} is not a valid schema", rel.display()))
    }

    pub fn compile(schema: &Value) -> anyhow::Result<Schema> {
        let validator = jsonschema::validator_for(schema).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Schema { validator })
    }

    /// Adds the violations of `instance` to `out`, each prefixed by `prefix`.
    pub fn check(&self, instance: &Value, prefix: &str, out: &mut Violations) {
        if self.validator.is_valid(instance) {
            return;
        }
        for error in self.validator.iter_errors(instance) {
            out.push(prefix, || {
                let pointer = error.instance_path().to_string();
                let mut what = error.to_string();
                if what.len() > MAX_TEXT {
                    let cut = (0..=MAX_TEXT).rev().find(|&i| what.is_char_boundary(i)).unwrap_or(0);
                    what.truncate(cut);
                    what.push('…');
                }
                format!("{}: {what} ({})", show_pointer(&pointer), error.kind().keyword())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn positions_schema() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "required": ["open_positions"],
            "properties": {"open_positions": {"type": "array", "items": {
                "type": "object",
                "properties": {"entry_price": {"type": "number", "exclusiveMinimum": 0}}
            }}}
        }))
        .unwrap()
    }

    #[test]
    fn a_violation_names_the_pointer_and_the_rule() {
        let doc = json!({"open_positions": [{"entry_price": 1}, {"entry_price": 2}, {}, {"entry_price": 0}]});
        let mut out = Violations::default();
        positions_schema().check(&doc, "", &mut out);
        assert_eq!(out.total, 1);
        assert!(out.shown[0].starts_with("/open_positions/3/entry_price: 0 "), "{}", out.shown[0]);
        assert!(out.shown[0].ends_with("(exclusiveMinimum)"), "{}", out.shown[0]);
    }

    #[test]
    fn many_violations_are_shown_up_to_a_handful_and_counted() {
        let items: Vec<Value> = (0..12).map(|_| json!({"entry_price": -1})).collect();
        let mut out = Violations::default();
        positions_schema().check(&json!({"open_positions": items}), "", &mut out);
        assert_eq!((out.total, out.shown.len()), (12, SHOWN));
        assert!(out.message().ends_with("; and 7 more"), "{}", out.message());
    }

    #[test]
    fn a_missing_required_key_points_at_the_top_level() {
        let mut out = Violations::default();
        positions_schema().check(&json!({}), "line 4: ", &mut out);
        assert!(out.shown[0].starts_with("line 4: /: "), "{}", out.shown[0]);
        assert!(out.shown[0].ends_with("(required)"), "{}", out.shown[0]);
    }

    #[test]
    fn a_broken_schema_is_an_error() {
        assert!(Schema::compile(&json!({"type": "no-such-type"})).is_err());
    }
}
