//! `unet_learner`: segmentation as in lesson 3's camvid - a [`DynamicUnet`] on a pretrained
//! body, one output channel per code, cross-entropy over every pixel.
//!
//! ```no_run
//! use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! # let data: ImageDataBunch = todo!();
//! let mut learn = unet_learner(data, models::resnet34, &[accuracy])?;
//! learn.fit_one_cycle(10, Some(slice_stop(1e-3)))?;     // decoder (encoder frozen)
//! learn.unfreeze();
//! learn.fit_one_cycle(12, Some(slice(1e-5, 1e-4)))?;
//! # Ok(()) }
//! ```

use super::{loss, Learner, LearnerOptions};
use crate::bail;
use crate::data::Data;
use crate::error::Result;
use crate::learner::metrics::Metric;
use crate::models::{self, Arch, DynamicUnet, UnetOptions};

/// A U-Net learner: `arch`'s pretrained body as the encoder, fastai's decoder for the data's
/// codes (`data.classes()`: a mask's pixel values index them), the encoder frozen (its
/// BatchNorm layers excepted), `cross_entropy_flat` over the pixels. Three layer groups: early
/// encoder | late encoder | decoder.
pub fn unet_learner<D: Data>(data: D, arch: Arch, metrics: &[Metric]) -> Result<Learner<D>> {
    unet_learner_with(
        data,
        arch,
        metrics,
        LearnerOptions::default(),
        UnetOptions::default(),
    )
}

/// [`unet_learner`] with the learner's options (`pretrained: false` trains from scratch, `wd`,
/// ...) and the U-Net's (`blur`, `self_attention`, `y_range`, ...).
pub fn unet_learner_with<D: Data>(
    data: D,
    arch: Arch,
    metrics: &[Metric],
    opts: LearnerOptions,
    unet: UnetOptions,
) -> Result<Learner<D>> {
    let c = data.classes().len();
    if c < 2 {
        bail!(
            "the data has {c} code(s); a segmentation needs at least 2 (data made with \
             DataBunch::from_tensors names them with .with_classes(codes))"
        );
    }
    let mut model = DynamicUnet::new(arch, data.device(), c as i64, unet);
    if opts.pretrained {
        let path = models::weights::pretrained_path(arch)?;
        models::weights::load_pretrained(&mut model.vs, &path, &["decoder."])?;
    }
    let pretrained = opts.pretrained;
    let mut learn = Learner::with_options(data, model, loss::cross_entropy_flat(), metrics, opts)?;
    learn.pretrained = Some(pretrained);
    if pretrained {
        learn.freeze();
    }
    Ok(learn)
}
