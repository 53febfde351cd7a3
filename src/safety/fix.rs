//! A fix is what a finding proposes: a short action label and the primitive
//! operations that carry it out. Operations are generic (create a directory,
//! replace a file, run SQL in a transaction…) so the planner and the applier
//! never need to know which check asked for them.

use std::fmt;
use std::path::PathBuf;

use super::apply::ApplyCtx;
use super::precondition::Expect;

/// When a fix runs relative to others: directories before the files inside
/// them, files before databases, runtime clean-up last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Dirs,
    Files,
    Databases,
    Runtime,
    Commands,
}

/// The repair a finding proposes.
#[derive(Debug)]
pub struct Fix {
    /// A short verb phrase for reports, e.g. `create directory`.
    pub action: String,
    pub phase: Phase,
    pub ops: Vec<Op>,
}

impl Fix {
    pub fn new(action: impl Into<String>, phase: Phase, ops: Vec<Op>) -> Self {
        Fix { action: action.into(), phase, ops }
    }

    /// The exact plan lines, as `heal --dry-run` prints them.
    pub fn describe(&self) -> Vec<String> {
        self.ops.iter().flat_map(Op::describe).collect()
    }
}

/// One primitive change to the disk. Paths are relative to the root; the
/// applier resolves them and refuses anything that would leave it.
pub enum Op {
    /// Create a directory (and missing parents), then set `mode` on it.
    CreateDir { path: PathBuf, mode: Option<u32> },
    /// Replace or create a file atomically, only if it is still what the
    /// check saw (`expect`). An existing original is copied to the run's
    /// quarantine first. `secret` contents are never described.
    WriteFile { path: PathBuf, contents: Vec<u8>, mode: Option<u32>, secret: bool, expect: Expect },
    /// Change permission bits of the file or folder the check saw: `of`
    /// is its (device, inode); `None` only for rollback, which checks the
    /// path its own way.
    SetMode { path: PathBuf, mode: u32, of: Option<(u64, u64)> },
    /// Change the owner and group (heal as root, for the `[app] user`), of
    /// what the check saw, as for `SetMode`.
    SetOwner { path: PathBuf, uid: u32, gid: u32, of: Option<(u64, u64)> },
    /// Remove a file; with `quarantine`, a copy is kept first.
    RemoveFile { path: PathBuf, quarantine: bool },
    /// Set a file's modification time to now, creating it empty if missing.
    Touch { path: PathBuf },
    /// Anything the primitives above cannot express (a streaming rewrite, a
    /// SQL transaction). It must use the context's safety helpers.
    Custom(Box<dyn CustomOp>),
}

/// An operation implemented next to the check that needs it.
pub trait CustomOp: Send + Sync {
    /// Plan lines for `--dry-run`: exact files written, exact SQL run.
    fn describe(&self) -> Vec<String>;
    /// Carries the change out. Returns a short detail for the report and the
    /// history (for example, `kept 120 lines, quarantined 3`).
    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String>;
}

impl Op {
    pub fn describe(&self) -> Vec<String> {
        match self {
            Op::CreateDir { path, mode } => vec![match mode {
                Some(m) => format!("mkdir {} (mode {:04o})", path.display(), m),
                None => format!("mkdir {}", path.display()),
            }],
            Op::WriteFile { path, contents, mode, secret, .. } => {
                let mut line = format!("write {} ({} bytes", path.display(), contents.len());
                if let Some(m) = mode {
                    line.push_str(&format!(", mode {m:04o}"));
                }
                line.push(')');
                if !*secret && contents.len() <= 200 && !contents.contains(&b'\n') {
                    if let Ok(text) = std::str::from_utf8(contents) {
                        line.push_str(&format!(": {text}"));
                    }
                }
                vec![line]
            }
            Op::SetMode { path, mode, .. } => vec![format!("chmod {:04o} {}", mode, path.display())],
            Op::SetOwner { path, uid, gid, .. } => vec![format!("chown {uid}:{gid} {}", path.display())],
            Op::RemoveFile { path, quarantine } => vec![if *quarantine {
                format!("remove {} (copy kept in quarantine)", path.display())
            } else {
                format!("remove {}", path.display())
            }],
            Op::Touch { path } => vec![format!("touch {}", path.display())],
            Op::Custom(custom) => custom.describe(),
        }
    }
}

impl fmt::Debug for Op {
    // Contents may be secret: Debug shows the plan line, never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Op({})", self.describe().join("; "))
    }
}
