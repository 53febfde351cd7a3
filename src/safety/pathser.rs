//! Paths in the history, whatever bytes their names hold. A path that is
//! valid UTF-8 is written as a JSON string, as before; any other is written
//! as `{"bytes": "<hex>"}`, so a file named in Latin-1 (or any bytes) is
//! recorded exactly and can be rolled back, and never stops a run half-done.
//! Use with `#[serde(with = "pathser")]` or `#[serde(with = "pathser::list")]`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A path as it is stored.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Text(String),
    Bytes { bytes: String },
}

impl Stored {
    fn of(path: &Path) -> Stored {
        match path.to_str() {
            Some(text) => Stored::Text(text.to_string()),
            None => Stored::Bytes { bytes: path.as_os_str().as_bytes().iter().map(|b| format!("{b:02x}")).collect() },
        }
    }

    fn into_path(self) -> Result<PathBuf, String> {
        match self {
            Stored::Text(text) => Ok(PathBuf::from(text)),
            Stored::Bytes { bytes } => {
                let digits = bytes.as_bytes();
                if digits.len() % 2 != 0 {
                    return Err(format!("{bytes:?} is not hex"));
                }
                let decoded: Option<Vec<u8>> = digits
                    .chunks(2)
                    .map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
                    .collect();
                decoded.map(|b| PathBuf::from(OsString::from_vec(b))).ok_or_else(|| format!("{bytes:?} is not hex"))
            }
        }
    }
}

pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    Stored::of(path).serialize(serializer)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    Stored::deserialize(deserializer)?.into_path().map_err(D::Error::custom)
}

/// The same for a list of paths.
pub mod list {
    use super::*;

    pub fn serialize<S: Serializer>(paths: &[PathBuf], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(paths.iter().map(|p| Stored::of(p)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PathBuf>, D::Error> {
        Vec::<Stored>::deserialize(deserializer)?.into_iter().map(|s| s.into_path().map_err(D::Error::custom)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(with = "super")]
        path: PathBuf,
        #[serde(with = "super::list")]
        paths: Vec<PathBuf>,
    }

    #[test]
    fn utf8_paths_stay_strings_and_others_round_trip_as_bytes() {
        let odd = PathBuf::from(OsString::from_vec(b"state/\xff\xfe.lock".to_vec()));
        let holder = Holder { path: PathBuf::from("a/b.json"), paths: vec![odd.clone(), "x".into()] };
        let text = serde_json::to_string(&holder).unwrap();
        assert_eq!(text, r#"{"path":"a/b.json","paths":[{"bytes":"73746174652ffffe2e6c6f636b"},"x"]}"#);
        assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), holder);
    }
}
