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
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A path that cannot be read as an input (a directory, say).
    #[error("{}: {reason}", path.display())]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An input larger than [`crate::io::MAX_INPUT_BYTES`] (a device or an endless stream).
    #[error("{}: larger than {limit_bytes} bytes; not read (is it a device or an endless stream?)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit_bytes: u64,
    },
    /// An input that is not UTF-8 text.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset})", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// An output path that is refused (an input of the same command, a device, a directory).
    #[error("{}: refused as output: {reason}", path.display())]
    Output {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
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
    #[error("unknown {kind} `{id}`{}; known: {}", suggestion.as_ref().map_or_else(String::new, |s| format!(" (did you mean `{s}`?)")), known.join(", "))]
    UnknownId {
        /// What was looked up (chip, system, model).
        kind: &'static str,
        /// The id asked for.
        id: String,
        /// The ids that exist.
        known: Vec<String>,
        /// The nearest known id, when one is close.
        suggestion: Option<String>,
    },
    /// A request that is inconsistent (a layout that does not divide the cluster, a format the
    /// chip lacks...): every problem, each with the key (or flag) at fault.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Input {
        /// All problems found.
        problems: Vec<Problem>,
    },
    /// A calibration fit could not be made.
    #[error("calibration: {reason}")]
    Fit {
        /// Why.
        reason: String,
    },
}

impl Error {
    /// A request error with one problem at `key`.
    pub fn input(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Input {
            problems: vec![Problem::new(key, reason)],
        }
    }

    pub(crate) fn io_reason(path: &std::path::Path, reason: impl Into<String>) -> Self {
        Self::Unreadable {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// An unknown id among `known`, with the nearest one suggested when it is close.
    pub(crate) fn unknown<'a>(
        kind: &'static str,
        id: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let known: Vec<String> = known.into_iter().map(str::to_string).collect();
        Self::UnknownId {
            kind,
            id: id.to_string(),
            suggestion: nearest(id, known.iter().map(String::as_str)),
            known,
        }
    }

    /// The problems this error lists (one for errors that are not lists), each with its key.
    #[must_use]
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Self::Invalid { problems, .. } | Self::Input { problems } => problems.clone(),
            Self::Parse { key, reason, .. } => vec![Problem::new(key.clone(), reason.clone())],
            other => vec![Problem::new("", other.to_string())],
        }
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a likely typo
/// (Jaro-Winkler similarity of at least 0.8).
///
/// ```
/// use xpusim::error::nearest;
/// assert_eq!(nearest("layres", ["layers", "heads"]), Some("layers".to_string()));
/// assert_eq!(nearest("zzz", ["layers", "heads"]), None);
/// ```
#[must_use]
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
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

/// Read an input file (size-limited, UTF-8), naming the file on error.
pub(crate) fn read_file(path: &std::path::Path) -> Result<String> {
    crate::io::read_input(path)
}
