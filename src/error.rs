//! The library's error type.

use std::fmt;
use std::path::PathBuf;

/// One problem found while validating an input file: where it is and why it is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path inside the file, e.g. `chips[trn2].peak_bf16.unit`.
    pub key: String,
    /// Why the value is rejected.
    pub reason: String,
}

impl Problem {
    /// A problem at `key` for `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  - {p}"))
        .collect::<String>()
}

/// Everything that can go wrong with input or I/O. Model functions on validated input never fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: cannot read or write the file", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A file is not valid TOML or does not match the schema (unknown key, wrong type, missing key).
    #[error("{file}: {key}: {reason}")]
    Parse {
        /// The file (or `<built-in>/name.toml`).
        file: String,
        /// Dotted key path where parsing stopped.
        key: String,
        /// What the parser expected.
        reason: String,
    },
    /// A file parsed but some values are not acceptable; every problem is listed.
    #[error("{file}: {} problem(s):{}", problems.len(), list(problems))]
    Invalid {
        /// The file.
        file: String,
        /// All problems found.
        problems: Vec<Problem>,
    },
    /// An id that is not in the catalog or preset list.
    #[error("unknown {kind} `{id}`; known: {known}")]
    UnknownId {
        /// What was looked up (chip, system, model).
        kind: &'static str,
        /// The id asked for.
        id: String,
        /// The ids that exist.
        known: String,
    },
    /// A request that is inconsistent (a layout that does not divide the cluster, a format the chip lacks...).
    #[error("{field}: {reason}")]
    Input {
        /// The field or option at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// A calibration fit could not be made.
    #[error("calibration: {reason}")]
    Fit {
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Input`].
    pub fn input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Input {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A positive whole number from a file, or a problem at `at.key` (and 1 as a placeholder so that
/// validation can go on and report every problem at once).
pub(crate) fn positive(problems: &mut Vec<Problem>, at: &str, key: &str, v: i64) -> u64 {
    if v <= 0 {
        problems.push(Problem::new(
            format!("{at}.{key}"),
            format!("must be a positive whole number, got {v}"),
        ));
        1
    } else {
        v as u64
    }
}

/// [`positive`] that must also fit a `u32` (layout sizes, layer counts).
pub(crate) fn positive_u32(problems: &mut Vec<Problem>, at: &str, key: &str, v: i64) -> u32 {
    let x = positive(problems, at, key, v);
    u32::try_from(x).unwrap_or_else(|_| {
        problems.push(Problem::new(format!("{at}.{key}"), "too large"));
        1
    })
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Parse TOML text into `T`, reporting the file, the key path and the reason on failure.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let reason = inner.message().trim().to_string();
        let reason = match inner.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!("{reason} (line {line})")
            }
            None => reason,
        };
        Error::Parse {
            file: file.to_string(),
            key: if key == "." {
                "(top level)".into()
            } else {
                key
            },
            reason,
        }
    })
}

/// Read a file into a string, naming the file on error.
pub(crate) fn read_file(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write a file whole or not at all: write a temporary file beside it, then rename.
///
/// # Errors
/// [`Error::Io`] when the directory is not writable.
pub fn write_atomic(path: &std::path::Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
