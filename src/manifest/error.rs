//! Manifest errors. Callers branch on them (exit 1, nothing touched), so
//! they are typed; each message says where and what to do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("no manifest found (looked for {0} in the current directory); pass one with -m PATH")]
    NotFound(String),
    #[error("{}: cannot read the manifest", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}:{line}:{col}: {message}", file.display())]
    Invalid { file: PathBuf, line: usize, col: usize, message: String },
}

impl ManifestError {
    pub fn at(file: &Path, line: usize, col: usize, message: String) -> Self {
        ManifestError::Invalid { file: file.to_path_buf(), line, col, message }
    }
}
