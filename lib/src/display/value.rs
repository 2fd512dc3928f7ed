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
//! only the shape for most tensors. A [`Plot`](super::plot::Plot) shows as its PNG.
//!
//! Outside a notebook nothing calls it.

use crate::data::{Data, DataBunch, DownloadImagesReport, ImageDataBunch, VerifyReport};
use crate::device::DeviceInfo;
use crate::interpret::{ClassificationInterpretation, ImageCleaner};
use crate::learner::export::Predictor;
use crate::learner::optim::Lr;
use crate::learner::summary::Summary;
use crate::learner::Learner;

/// The `evcxr_display` method of the library's values (see the module's documentation).
pub trait CellValue {
    /// Writes the value as the cell's result, in evcxr's output protocol (text/plain).
    fn evcxr_display(&self);
}

macro_rules! shown_with_display {
    ($($t:ty),* $(,)?) => {$(
        impl CellValue for $t {
            fn evcxr_display(&self) {
                // `format!`, not `to_string()`: tch's `Tensor` has an inherent `to_string(width)`.
                super::evcxr_block("text/plain", &format!("{self}"))
            }
        }
    )*};
}

shown_with_display!(
    tch::Tensor,
    ImageDataBunch,
    DataBunch,
    Summary,
    ClassificationInterpretation,
    Predictor,
    DeviceInfo,
    Lr,
    VerifyReport,
    DownloadImagesReport,
    ImageCleaner,
);

impl<D: Data + ?Sized> CellValue for Learner<D> {
    fn evcxr_display(&self) {
        super::evcxr_block("text/plain", &format!("{self}"))
    }
}

/// A chart shows as its PNG; one that cannot be drawn (a bad series) reports why as the cell's
/// error, as a `?` would (`{:?}` of a [`crate::Error`] carries the fastai kernel's error marker).
impl CellValue for super::plot::Plot {
    fn evcxr_display(&self) {
        match self.to_rich() {
            Ok(r) => {
                for (mime, data) in &r.parts {
                    super::evcxr_block(mime, data);
                }
            }
            Err(e) => eprintln!("{e:?}"),
        }
    }
}

/// Nothing: `animate` has shown the animation already (a cell usually ends in
/// `animate(...)?`); `anim.show()?` shows it again.
impl CellValue for super::animation::Animation {
    fn evcxr_display(&self) {}
}
