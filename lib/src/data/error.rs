//! `DataError`: what can go wrong between a dataset's URL and its tensors.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An error from the data layer. Each message says what was expected, what was found and what
/// to do about it.
pub enum DataError {
    /// A file-system operation failed. `op` says what was being done ("creating folder", ...).
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The server answered, but not with the file (an HTTP error status, a broken transfer).
    Download { url: String, msg: String },
    /// A downloaded file is not the expected one; it has been deleted.
    Checksum {
        url: String,
        path: PathBuf,
        /// What was compared: "size", "md5" or "sha256".
        what: &'static str,
        expected: String,
        found: String,
    },
    /// An archive entry would write outside the extraction folder, or is a special file.
    /// Nothing was extracted.
    UnsafeArchive {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    /// The server could not be reached and there is no local copy.
    Offline {
        url: String,
        /// The archive's file name, e.g. `oxford-iiit-pet.tgz`.
        file: String,
        /// Where to put the file by hand.
        place_at: PathBuf,
        reason: String,
    },
    /// An image file that cannot be decoded (empty, truncated, not an image).
    BadImage { path: PathBuf, msg: String },
    /// Labelling or splitting failed (a pattern that matches nothing, an empty list, ...).
    Label(String),
    /// Anything else, with its own full message.
    Other(String),
}

impl DataError {
    /// An [`DataError::Io`] builder for `map_err`: `.map_err(DataError::io("reading", &path))`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> DataError {
        let path = path.into();
        move |source| DataError::Io { op, path, source }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            DataError::Download { url, msg } => write!(f, "downloading {url}: {msg}"),
            DataError::Checksum {
                url,
                path,
                what,
                expected,
                found,
            } => write!(
                f,
                "{} downloaded from {url} has the wrong {what}: expected {expected}, found {found}. \
                 The file was deleted; run again to download it afresh (if this repeats, the server \
                 or a proxy is serving a different file)",
                path.display()
            ),
            DataError::UnsafeArchive {
                archive,
                entry,
                reason,
            } => write!(
                f,
                "refusing to extract {}: entry {entry:?} {reason}; nothing was extracted. \
                 Only extract archives from sources you trust",
                archive.display()
            ),
            DataError::Offline {
                url,
                file,
                place_at,
                reason,
            } => write!(
                f,
                "could not reach {url} ({reason}) and there is no local copy of {file}. \
                 Download {file} on a connected machine and place it at {}; running this again \
                 will then verify and extract it without the network",
                place_at.display()
            ),
            DataError::BadImage { path, msg } => write!(
                f,
                "{} is not a readable image ({msg}); delete or replace it (verify_images finds \
                 all such files in a folder)",
                path.display()
            ),
            DataError::Label(msg) => f.write_str(msg),
            DataError::Other(msg) => f.write_str(msg),
        }
    }
}

/// `{:?}` shows the message (see `fastai::error::debug_message`).
impl fmt::Debug for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::error::debug_message(f, &self.to_string())
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
