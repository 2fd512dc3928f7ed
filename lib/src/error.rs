//! The crate's error type: data errors, libtorch errors, and plain messages that say what to do.

use std::fmt;

use crate::data::DataError;

pub enum Error {
    /// From the data layer (files, downloads, images, labels).
    Data(DataError),
    /// From libtorch (shapes, devices, file formats).
    Torch(tch::TchError),
    /// Anything else, with its full message.
    Msg(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Data(e) => e.fmt(f),
            Error::Torch(e) => write!(f, "libtorch: {e}"),
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
