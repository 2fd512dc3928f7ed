//! Pretrained ImageNet weights: where they are, fetching them once, loading them into a body.
//!
//! MobileNetV2 and EfficientNet-Lite0 weights are installed offline by install.sh. ResNet weights
//! (torchvision's, as safetensors) are downloaded on first use from
//! `$FASTAI_WEIGHTS_BASE<arch>.tv_in1k/resolve/main/model.safetensors` (default base: the timm
//! organisation on the Hugging Face hub) into `~/.fastai/models/<arch>-imagenet.safetensors`, with
//! the same resumable, verified download as datasets. Only safetensors are read (no pickles).

use std::path::PathBuf;

use tch::nn::VarStore;

use super::Arch;
use crate::config::{models_dir, OfflineWeights};
use crate::data::download_url;
use crate::error::{Error, Result};

/// Default source of ResNet weights.
pub const DEFAULT_WEIGHTS_BASE: &str = "https://huggingface.co/timm/";

/// The URL the ResNet weights of `arch` come from.
pub fn weights_url(arch: Arch) -> Option<String> {
    let base =
        std::env::var("FASTAI_WEIGHTS_BASE").unwrap_or_else(|_| DEFAULT_WEIGHTS_BASE.to_string());
    let base = if base.ends_with('/') {
        base
    } else {
        format!("{base}/")
    };
    matches!(arch, Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50).then(|| {
        format!(
            "{base}{}.tv_in1k/resolve/main/model.safetensors",
            arch.name()
        )
    })
}

/// The local weight file of `arch`, downloading it first if needed.
pub fn pretrained_path(arch: Arch) -> Result<PathBuf> {
    match arch {
        Arch::MobilenetV2 => OfflineWeights::MobileNetV2Features
            .require()
            .map_err(Error::Msg),
        Arch::EfficientnetLite0 => OfflineWeights::EfficientNetLite0
            .require()
            .map_err(Error::Msg),
        _ => {
            let dest = models_dir().join(format!("{}-imagenet.safetensors", arch.name()));
            if !dest.is_file() {
                let url = weights_url(arch).expect("resnets have a URL");
                download_url(&url, &dest)?;
            }
            Ok(dest)
        }
    }
}

/// Loads pretrained weights into `vs`: every variable must be found with its shape, except the
/// ones whose names start with one of `skip` (a new head). Extra tensors in the file (the
/// original classifier) are ignored.
pub fn load_pretrained(vs: &mut VarStore, path: &std::path::Path, skip: &[&str]) -> Result<()> {
    // Shapes first: libtorch's copy would broadcast a wrongly shaped tensor without a word.
    let file: std::collections::HashMap<String, Vec<i64>> = tch::Tensor::read_safetensors(path)
        .map_err(|e| {
            Error::Msg(format!(
                "{} is not a readable safetensors file: {e}. Delete it to download it again",
                path.display()
            ))
        })?
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    for (name, var) in vs.variables() {
        if let Some(shape) = file.get(&name) {
            if *shape != var.size() {
                return Err(Error::Msg(format!(
                    "{}: tensor {name} has shape {shape:?} but the model needs {:?}: not this architecture's weights",
                    path.display(),
                    var.size()
                )));
            }
        }
    }
    let missing = vs.load_partial(path).map_err(|e| {
        Error::Msg(format!(
            "{} does not fit the model: {e}. Delete the file to download it again",
            path.display()
        ))
    })?;
    let missing: Vec<String> = missing
        .into_iter()
        .filter(|n| !skip.iter().any(|s| n.starts_with(s)))
        .collect();
    if !missing.is_empty() {
        let some: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        return Err(Error::Msg(format!(
            "{} lacks {} of the model's tensors (e.g. {}): it is not this architecture's weight file",
            path.display(),
            missing.len(),
            some.join(", ")
        )));
    }
    Ok(())
}
