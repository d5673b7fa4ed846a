//! Reading inputs and writing outputs safely: inputs are read with a size limit, outputs are
//! written whole or not at all and never over an input or a device.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The largest input file read (catalogs, scenarios, models, run files, calibrations).
///
/// The largest shipped file is under 100 KB; 16 MiB leaves room for generated run files while a
/// device (`/dev/zero`) or an endless stream is refused after reading at most this much.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Read a UTF-8 text file of at most [`MAX_INPUT_BYTES`], naming the file on error.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("a.toml");
/// std::fs::write(&p, "x = 1")?;
/// assert_eq!(xpusim::io::read_input(&p)?, "x = 1");
/// assert!(xpusim::io::read_input(&dir.path().join("missing.toml")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read, [`Error::TooLarge`] past the limit,
/// [`Error::NotText`] when it is not UTF-8.
pub fn read_input(path: &Path) -> Result<String> {
    read_limited(path, MAX_INPUT_BYTES)
}

pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.is_dir() {
        return Err(Error::io_reason(path, "is a directory, not a file"));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit_bytes: limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| Error::NotText {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Where an output goes, checked before anything is computed: not one of the command's inputs,
/// not a directory, device or pipe, in a directory that exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputPath(PathBuf);

impl OutputPath {
    /// Check `path` as the output of a command that reads `inputs`.
    ///
    /// ```
    /// use xpusim::io::OutputPath;
    /// let dir = tempfile::tempdir()?;
    /// let input = dir.path().join("in.toml");
    /// std::fs::write(&input, "x = 1")?;
    /// assert!(OutputPath::check(&input, &[&input]).is_err()); // never over an input
    /// assert!(OutputPath::check(dir.path(), &[]).is_err()); // not a directory
    /// assert!(OutputPath::check(&dir.path().join("out.csv"), &[&input]).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Output`] naming the path and the reason.
    pub fn check(path: &Path, inputs: &[&Path]) -> Result<Self> {
        let refuse = |reason: &str| Error::Output {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if path.as_os_str().is_empty() {
            return Err(refuse("is empty"));
        }
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => return Err(refuse(
                "exists and is not a regular file (a directory, device or pipe); give a file path",
            )),
            Ok(_) => {
                for input in inputs {
                    if same_file(path, input) {
                        return Err(refuse(&format!(
                            "is an input of this command ({}); write the output elsewhere",
                            input.display()
                        )));
                    }
                }
            }
            Err(_) => {
                let dir = parent(path);
                if !dir.is_dir() {
                    return Err(refuse(&format!(
                        "its directory {} does not exist",
                        dir.display()
                    )));
                }
            }
        }
        Ok(Self(path.to_path_buf()))
    }

    /// The path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Write `contents` whole or not at all ([`OutputPath::start`], then
    /// [`PendingFile::commit`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the directory is not writable or the disk is full.
    pub fn write(&self, contents: &[u8]) -> Result<()> {
        let mut f = self.start()?;
        f.write_all(contents).map_err(|e| f.error(e))?;
        f.commit()
    }

    /// Start writing the output in pieces: into a new temporary file in the same directory
    /// (created exclusively with a random name, so no planted link is followed) that only
    /// [`PendingFile::commit`] renames over the target. Dropped without a commit (an error, an
    /// interrupted sweep), the temporary file is removed and the target is untouched.
    ///
    /// ```
    /// use std::io::Write;
    /// let dir = tempfile::tempdir()?;
    /// let target = dir.path().join("rows.csv");
    /// let out = xpusim::io::OutputPath::check(&target, &[])?;
    /// let mut f = out.start()?;
    /// f.write_all(b"a,b\n")?;
    /// assert!(!target.exists(), "nothing is visible before the commit");
    /// f.commit()?;
    /// assert_eq!(std::fs::read_to_string(&target)?, "a,b\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when the temporary file cannot be created.
    pub fn start(&self) -> Result<PendingFile> {
        let path = self.0.clone();
        let tmp = tempfile::Builder::new()
            .prefix(".xpusim-")
            .suffix(".tmp")
            .tempfile_in(parent(&path))
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        Ok(PendingFile {
            tmp: std::io::BufWriter::new(tmp),
            path,
        })
    }
}

/// An output being written ([`OutputPath::start`]): invisible until committed.
#[derive(Debug)]
pub struct PendingFile {
    tmp: std::io::BufWriter<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl PendingFile {
    /// The target path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An I/O error as the library's, naming the target.
    #[must_use]
    pub fn error(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Flush, sync and rename over the target: the whole output appears at once.
    ///
    /// # Errors
    /// [`Error::Io`] when the disk is full or the rename fails (the target is then untouched).
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let tmp = self.tmp.into_inner().map_err(|e| io(e.into_error()))?;
        // The temporary file is private (0600); the output gets the target's permissions, or
        // those of a new file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map_or(0o644, |m| m.permissions().mode());
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_input_is_refused_after_the_limit() {
        let r = read_limited(Path::new("/dev/zero"), 1024);
        assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
    }

    #[test]
    fn binary_input_is_not_text() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("b");
        std::fs::write(&p, [b'a', 0xff, 0xfe]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read_input(&p),
            Err(Error::NotText { offset: 1, .. })
        ));
    }

    #[test]
    fn a_device_is_not_an_output() {
        assert!(OutputPath::check(Path::new("/dev/null"), &[]).is_err());
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old").unwrap_or_else(|e| panic!("{e}"));
        let out = OutputPath::check(&target, &[]).unwrap_or_else(|e| panic!("{e}"));
        out.write(b"new").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&target).ok().as_deref(),
            Some("new")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o644), "the output is not left private");
        }
    }
}
