//! The crate's error type: data errors, libtorch errors, and plain messages that say what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data::DataError;

pub enum Error {
    /// From the data layer (files, downloads, images, labels).
    Data(DataError),
    /// From libtorch (shapes, devices, file formats).
    Torch(tch::TchError),
    /// A file operation that failed: what was being done, where, and the system's reason.
    Io {
        op: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Anything else, with its full message.
    Msg(String),
}

/// The text of a panic's payload (what `catch_unwind` returns), for an error message.
pub(crate) fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

impl Error {
    /// An [`Error::Io`] for `map_err`: `.map_err(Error::io("saving the model", &dir))`.
    pub fn io(op: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let (op, path) = (op.to_string(), path.to_path_buf());
        move |source| Error::Io { op, path, source }
    }
}

/// Writes `path` through a temporary file in the same folder, renamed into place only once
/// `write` has succeeded: a crash, a full disk or an error never leaves half a file where a good
/// one was. The temporary name keeps the extension (tch picks a format from it). `op` says what
/// is being done, for the error ("saving the model").
pub fn write_atomically(
    path: &Path,
    op: &str,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .map_err(Error::io(&format!("{op}: creating the folder"), &dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp_name = match name.rsplit_once('.') {
        Some((stem, ext)) => format!(".{stem}.tmp-{}.{ext}", std::process::id()),
        None => format!(".{name}.tmp-{}", std::process::id()),
    };
    let tmp = dir.join(tmp_name);
    // fails early, naming the folder, when it cannot be written in
    std::fs::File::create(&tmp).map_err(Error::io(
        &format!("{op}: cannot write in the folder"),
        &dir,
    ))?;
    let done = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(Error::io(&format!("{op}: renaming into place"), path))
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Data(e) => e.fmt(f),
            Error::Torch(e) => write!(f, "libtorch: {e}"),
            Error::Io { op, path, source } => {
                write!(f, "{op}: {}: {source}", path.display())?;
                if source.kind() == std::io::ErrorKind::PermissionDenied {
                    write!(f, " (choose a folder you can write to)")?;
                }
                Ok(())
            }
            Error::Msg(m) => f.write_str(m),
        }
    }
}

/// `{:?}` shows the message (what `?` in a notebook cell prints); in the fastai kernel it is
/// marked so the kernel reports the cell as failed (see [`debug_message`]).
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_message(f, &self.to_string())
    }
}

/// The line prefix that tells the fastai kernel "this cell failed with this error" (defined, with
/// the rest of the protocol, in the `fastai-wire` crate).
pub use fastai_wire::ERROR_MARKER;

/// Writes `msg` for `{:?}`: evcxr prints an error that `?` returned from a cell with `{:?}` and
/// still reports success, so in the fastai kernel the message carries [`ERROR_MARKER`] and the
/// kernel turns it into an error reply (and "Run all" stops there).
pub fn debug_message(f: &mut fmt::Formatter<'_>, msg: &str) -> fmt::Result {
    if crate::display::frontend() == crate::display::Frontend::FastaiKernel && !f.alternate() {
        write!(f, "{ERROR_MARKER}{}", msg.replace('\n', " "))
    } else {
        f.write_str(msg)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Data(e) => Some(e),
            Error::Torch(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            Error::Msg(_) => None,
        }
    }
}

impl From<DataError> for Error {
    fn from(e: DataError) -> Self {
        Error::Data(e)
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Torch(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Msg(e.to_string())
    }
}

/// Shorthand for `Err(Error::Msg(format!(...)))`.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::Error::Msg(format!($($t)*))) };
}
