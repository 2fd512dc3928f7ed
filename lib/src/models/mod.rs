//! Architectures for transfer learning: a pretrained body (cut before its pooling) and fastai's
//! head, in three optimizer groups (early body | late body | head).
//!
//! | arch | features | ImageNet weights |
//! | --- | --- | --- |
//! | `resnet18`, `resnet34`, `resnet50` | 512, 512, 2048 | downloaded on first use (torchvision's, as safetensors) |
//! | `mobilenet_v2` | 1280 | offline, installed by install.sh |
//! | `efficientnet_lite0` | 1280 | offline, installed by install.sh |
//!
//! The same bodies are the encoders of [`unet::DynamicUnet`] (lesson 3's segmentation).

pub mod efficientnet;
pub mod head;
pub mod hooks;
pub mod imagenet;
pub mod layers;
pub mod mobilenet;
pub mod model;
pub mod resnet;
pub mod unet;
pub mod weights;

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

pub use head::{Head, HeadConfig, HeadInit};
pub use hooks::{Hook, Taps};
pub use imagenet::ImagenetClassifier;
pub use model::{Model, Net};
pub use unet::{DynamicUnet, UnetOptions};

/// A body architecture, as `models.resnet34` in fastai.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    Resnet18,
    Resnet34,
    Resnet50,
    MobilenetV2,
    EfficientnetLite0,
}

#[allow(non_upper_case_globals)]
/// The lesson's spelling: `cnn_learner(&data, models::resnet34, ...)`.
pub mod names {
    use super::Arch;
    pub const resnet18: Arch = Arch::Resnet18;
    pub const resnet34: Arch = Arch::Resnet34;
    pub const resnet50: Arch = Arch::Resnet50;
    pub const mobilenet_v2: Arch = Arch::MobilenetV2;
    pub const efficientnet_lite0: Arch = Arch::EfficientnetLite0;
}

impl Arch {
    /// Short name (also the weight file's stem).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet18 => "resnet18",
            Arch::Resnet34 => "resnet34",
            Arch::Resnet50 => "resnet50",
            Arch::MobilenetV2 => "mobilenet_v2",
            Arch::EfficientnetLite0 => "efficientnet_lite0",
        }
    }

    /// Parses a name as given by [`Arch::name`].
    pub fn from_name(name: &str) -> Option<Arch> {
        [
            Arch::Resnet18,
            Arch::Resnet34,
            Arch::Resnet50,
            Arch::MobilenetV2,
            Arch::EfficientnetLite0,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// Channels of the body's feature map.
    pub fn features(self) -> i64 {
        match self {
            Arch::Resnet18 | Arch::Resnet34 => 512,
            Arch::Resnet50 => 2048,
            Arch::MobilenetV2 | Arch::EfficientnetLite0 => 1280,
        }
    }
}

/// A body: `(N, 3, H, W)` -> `(N, features, H/32, W/32)`.
#[derive(Debug)]
pub enum Body {
    ResNet(resnet::ResNet),
    MobileNet(mobilenet::MobileNetV2),
    EfficientNet(efficientnet::EfficientNet),
}

impl ModuleT for Body {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Body::ResNet(m) => m.forward_t(xs, train),
            Body::MobileNet(m) => m.forward_t(xs, train),
            Body::EfficientNet(m) => m.features_t(xs, train),
        }
    }
}

/// Builds the body of `arch` under `root` (variables in groups 0 and 1, pretrained names).
pub fn body(arch: Arch, root: &nn::Path) -> Body {
    match arch {
        Arch::Resnet18 => Body::ResNet(resnet::resnet(root, resnet::Depth::R18)),
        Arch::Resnet34 => Body::ResNet(resnet::resnet(root, resnet::Depth::R34)),
        Arch::Resnet50 => Body::ResNet(resnet::resnet(root, resnet::Depth::R50)),
        Arch::MobilenetV2 => Body::MobileNet(mobilenet::mobilenet_v2(root)),
        Arch::EfficientnetLite0 => Body::EfficientNet(efficientnet::efficientnet_lite0(root, None)),
    }
}

/// Body + head: the classifier a `cnn_learner` trains, with the store of its variables.
/// Hook points: the body's layers (`conv1`, `layer1.0`, ... for a resnet; `features.3` for
/// mobilenet_v2; `_blocks.4` for efficientnet_lite0), `body` (the feature map) and `head`.
#[derive(Debug)]
pub struct CnnModel {
    pub arch: Arch,
    pub vs: nn::VarStore,
    pub body: Body,
    pub head: Head,
    taps: Taps,
}

impl CnnModel {
    /// `arch`'s body and fastai's head for `n_classes`, on `device` (random weights). The body's
    /// variables are in groups 0 and 1, the head's (named `head.*`) in group 2.
    pub fn new(arch: Arch, device: Device, n_classes: i64) -> CnnModel {
        CnnModel::with_head(arch, device, n_classes, &HeadConfig::default())
    }

    /// [`CnnModel::new`] with a head of another shape (`lin_ftrs`, `ps`, `y_range`).
    pub fn with_head(arch: Arch, device: Device, n_classes: i64, cfg: &HeadConfig) -> CnnModel {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let body = body(arch, &root);
        let head = Head::with_config(
            &(root.set_group(2) / "head"),
            arch.features(),
            n_classes,
            cfg,
        );
        CnnModel {
            arch,
            vs,
            body,
            head,
            taps: Taps::default(),
        }
    }
}

impl Model for CnnModel {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.taps.during(|| {
            let features = hooks::tap("body", self.body.forward_t(xs, train));
            hooks::tap("head", self.head.forward_t(&features, train))
        })
    }
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }
    fn name(&self) -> String {
        self.arch.name().to_string()
    }
    fn taps(&self) -> Option<&Taps> {
        Some(&self.taps)
    }
}

/// ReLU in place, as torchvision's `ReLU(inplace=True)`: no new tensor for the activations
/// (autograd takes ReLU's gradient from its output, which stays available).
pub(crate) fn relu_(mut t: Tensor) -> Tensor {
    let _ = t.relu_();
    t
}

/// ReLU6 in place (see [`relu_`]).
pub(crate) fn relu6_(mut t: Tensor) -> Tensor {
    let _ = t.relu6_();
    t
}
