//! How a notebook cell that ends in one of the library's values shows it.
//!
//! evcxr (under our kernel and the stock one alike) shows a cell's final value by first compiling
//! `value.evcxr_display()` and, only when the value has no such method, compiling the cell a
//! second time to print `{:?}`. [`CellValue`], in scope through `fastai::vision::*`, gives the
//! library's types that method, so such a cell compiles once (about 0.3 s less with the library
//! loaded), and shows the text a person wants rather than the derived `Debug` dump:
//! `ImageDataBunch`, `Learner`, `ClassificationInterpretation` and `Predictor` a summary,
//! `DeviceInfo` its one-line report, and a `Tensor` its values
//! the way PyTorch prints them (tch's `Display`: large tensors summarized), where `Debug` gives
//! only the shape for most tensors.
//!
//! Outside a notebook nothing calls it.

use std::fmt::Display;
use std::io::Write;

use crate::data::{DownloadImagesReport, ImageDataBunch, VerifyReport};
use crate::device::DeviceInfo;
use crate::interpret::{ClassificationInterpretation, ImageCleaner};
use crate::learner::export::Predictor;
use crate::learner::optim::Lr;
use crate::learner::Learner;

/// The `evcxr_display` method of the library's values (see the module's documentation).
pub trait CellValue {
    /// Writes the value as the cell's result, in evcxr's output protocol (text/plain).
    fn evcxr_display(&self);
}

/// evcxr's text/plain block, written at once (one locked write) as evcxr itself does.
fn send_text(value: &dyn Display) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = write!(
        out,
        "EVCXR_BEGIN_CONTENT text/plain\n{value}\nEVCXR_END_CONTENT\n"
    );
    let _ = out.flush();
}

macro_rules! shown_with_display {
    ($($t:ty),* $(,)?) => {$(
        impl CellValue for $t {
            fn evcxr_display(&self) {
                send_text(self)
            }
        }
    )*};
}

shown_with_display!(
    tch::Tensor,
    ImageDataBunch,
    Learner,
    ClassificationInterpretation,
    Predictor,
    DeviceInfo,
    Lr,
    VerifyReport,
    DownloadImagesReport,
    ImageCleaner,
);
