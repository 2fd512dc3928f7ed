//! `export()` and `load_learner()`: one file with everything needed to predict - the weights, the
//! architecture, the classes, the image size and the normalization - then `predict(image)`.
//!
//! The file is a safetensors file whose metadata header holds that description as JSON, so
//! nothing but data is ever loaded (no pickles, no code).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::Learner;
use crate::bail;
use crate::data::image::open_image;
use crate::data::transforms::{render, Augment};
use crate::data::Stats;
use crate::error::{write_atomically, Error, Result};
use crate::models::{Arch, CnnModel, Model};

/// What an exported file says about its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    pub format: String,
    pub arch: String,
    pub classes: Vec<String>,
    /// Image height (and width, unless `width` says otherwise).
    pub size: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
}

const FORMAT: &str = "fastai-rs export v1";

impl ExportInfo {
    /// Image (height, width).
    pub fn hw(&self) -> (usize, usize) {
        (self.size, self.width.unwrap_or(self.size))
    }
}

impl Learner {
    /// Writes `<data.path>/export.safetensors` (or `file` relative to `data.path`); returns
    /// its path. Written to a temporary file and renamed.
    pub fn export(&self, file: Option<&str>) -> Result<PathBuf> {
        let path = self.data.path.join(file.unwrap_or("export.safetensors"));
        let arch = self.model.name();
        if Arch::from_name(&arch).is_none() {
            bail!(
                "export() writes cnn_learner models (resnet, mobilenet_v2, efficientnet_lite0); \
                 this learner's model is {arch:?}: use learn.save(name) for its weights"
            );
        }
        let info = ExportInfo {
            format: FORMAT.into(),
            arch,
            classes: self.data.classes.clone(),
            size: self.data.size.0,
            width: (self.data.size.1 != self.data.size.0).then_some(self.data.size.1),
            mean: self.data.stats.map(|s| s.mean),
            std: self.data.stats.map(|s| s.std),
        };
        let vars: BTreeMap<String, Tensor> =
            self.model.var_store().variables().into_iter().collect();
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = vars
            .iter()
            .map(|(n, t)| {
                let t = t
                    .detach()
                    .to_device(Device::Cpu)
                    .to_kind(Kind::Float)
                    .contiguous();
                let values = Vec::<f32>::try_from(t.flatten(0, -1)).expect("float tensor");
                let shape = t.size().iter().map(|&d| d as usize).collect();
                (
                    n.clone(),
                    shape,
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(n, shape, data)| {
                TensorView::new(Dtype::F32, shape.clone(), data).map(|v| (n.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Msg(format!("export: {e}")))?;
        let mut meta = HashMap::new();
        meta.insert(
            "fastai".to_string(),
            serde_json::to_string(&info).expect("json"),
        );
        write_atomically(&path, "exporting the learner", |tmp| {
            safetensors::serialize_to_file(views, Some(meta), tmp)
                .map_err(|e| Error::Msg(format!("writing {}: {e}", tmp.display())))
        })?;
        Ok(path)
    }

    /// Predicts the class of one image file: (class, index, probabilities).
    pub fn predict(&self, image: impl AsRef<Path>) -> Result<(String, usize, Tensor)> {
        let stats = self.data.stats;
        predict_with(
            self.model.as_ref(),
            self.device(),
            self.data.size,
            stats,
            &self.data.classes,
            image.as_ref(),
        )
    }
}

/// A model loaded from an exported file, for inference.
pub struct Predictor {
    pub info: ExportInfo,
    /// The model, with its variables (`model.vs`).
    pub model: CnnModel,
}

impl std::fmt::Display for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<&str> = self
            .info
            .classes
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        write!(
            f,
            "Predictor: {}, {}x{} images, on {:?}, {} classes: {}{}",
            self.info.arch,
            self.info.hw().0,
            self.info.hw().1,
            self.model.vs.device(),
            self.info.classes.len(),
            shown.join(", "),
            if self.info.classes.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        )
    }
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Loads a file written by [`Learner::export`] onto [`crate::device()`].
pub fn load_learner(path: impl AsRef<Path>) -> Result<Predictor> {
    load_learner_on(path, crate::device())
}

/// [`load_learner`] onto a chosen device.
pub fn load_learner_on(path: impl AsRef<Path>, device: Device) -> Result<Predictor> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Msg(format!("cannot read {}: {e}", path.display())))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        Error::Msg(format!(
            "{} is not an exported learner (not safetensors: {e})",
            path.display()
        ))
    })?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("fastai"))
        .ok_or_else(|| {
            Error::Msg(format!(
                "{} has no fastai description: it was not written by export()",
                path.display()
            ))
        })?;
    let info: ExportInfo = serde_json::from_str(json)
        .map_err(|e| Error::Msg(format!("{}: bad description: {e}", path.display())))?;
    if info.format != FORMAT {
        bail!(
            "{}: unknown export format {:?}",
            path.display(),
            info.format
        );
    }
    let arch = Arch::from_name(&info.arch)
        .ok_or_else(|| Error::Msg(format!("unknown architecture {:?}", info.arch)))?;
    let mut model = CnnModel::new(arch, device, info.classes.len() as i64);
    model.vs.load(path).map_err(|e| {
        Error::Msg(format!(
            "{} does not fit {}: {e}",
            path.display(),
            info.arch
        ))
    })?;
    Ok(Predictor { info, model })
}

impl Predictor {
    /// (class, index, probabilities) for one image file.
    pub fn predict(&self, image: impl AsRef<Path>) -> Result<(String, usize, Tensor)> {
        let stats = match (self.info.mean, self.info.std) {
            (Some(mean), Some(std)) => Some(Stats { mean, std }),
            _ => None,
        };
        predict_with(
            &self.model,
            self.model.vs.device(),
            self.info.hw(),
            stats,
            &self.info.classes,
            image.as_ref(),
        )
    }
}

/// The validation transform (resize + centre crop, normalize), then the model.
fn predict_with(
    model: &dyn Model,
    device: Device,
    (h, w): (usize, usize),
    stats: Option<Stats>,
    classes: &[String],
    image: &Path,
) -> Result<(String, usize, Tensor)> {
    let img = open_image(image)?;
    let mut buf = vec![0f32; 3 * h * w];
    render(
        &img,
        h,
        w,
        &Augment::center(),
        stats.map(|s| (s.mean, s.std)),
        &mut buf,
    );
    let x = Tensor::from_slice(&buf)
        .view([1, 3, h as i64, w as i64])
        .to_device(device);
    let probs = tch::no_grad(|| model.forward_t(&x, false).softmax(-1, Kind::Float))
        .squeeze_dim(0)
        .to_device(Device::Cpu);
    let idx = probs.argmax(0, false).int64_value(&[]) as usize;
    Ok((classes[idx].clone(), idx, probs))
}
