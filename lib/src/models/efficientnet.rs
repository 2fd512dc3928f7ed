//! EfficientNet-Lite0 with the variable names of the offline ImageNet weights
//! ([`OfflineWeights::EfficientNetLite0`](crate::OfflineWeights::EfficientNetLite0):
//! `_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, ..., `_fc.bias`).
//!
//! The Lite variant of EfficientNet-B0 is made for quantized mobile inference: no squeeze-and-excite,
//! ReLU6 instead of swish, 4.7 M parameters. The weights come from TensorFlow, and two details of
//! TensorFlow are reproduced (without them the outputs drift from the reference implementation's
//! by up to 0.7 in the logits, though photos mostly keep their top-1 class):
//! - "SAME" padding: at stride 2 the padding is asymmetric (nothing before, one pixel after for a 3x3
//!   kernel on an even size), computed from the actual input size;
//! - BatchNorm epsilon 1e-3 (PyTorch's default is 1e-5).
//!
//! BatchNorm momentum is PyTorch's usual 0.1 (the reference trains with 0.01), which suits
//! fine-tuning on small data sets; it does not affect inference.
//!
//! Input: `(N, 3, H, W)` RGB in `[0, 1]` normalized with the ImageNet mean/std
//! ([`imagenet_stats`](crate::data::imagenet_stats)), like every other body here; checked on real
//! photos (`tests/efficientnet.rs`: espresso 0.84, baboon 0.87). The weights were trained with
//! `(x - 127) / 128` on 0-255 pixels, which is a little more confident (espresso 0.95).
//! Any H, W works; 224 x 224 is what the weights were trained on.
//!
//! ```text
//! stem     3x3 conv s2, 3 -> 32, BN, ReLU6                    (N, 32, H/2, W/2)
//! blocks   16 MBConv blocks (table in STAGES)                 (N, 320, H/32, W/32)
//! head     1x1 conv 320 -> 1280, BN, ReLU6  = features_t      (N, 1280, H/32, W/32)
//! _fc      average pool, dropout 0.2, Linear 1280 -> classes  (N, classes)
//! ```
//! Sizes are rounded up at each stride-2 step (`ceil(H/2)`), as TensorFlow does.
//!
//! Layer groups for discriminative learning rates ([`layer_group_of`]): stem and blocks 0-7 ->
//! group 0, blocks 8-15 and the head conv -> group 1, `_fc` (or a head of your own) -> group 2.
//! The builder also puts each variable in that optimizer group (`nn::Path::set_group`).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::hooks::{join, path_name, tap};

/// The MBConv stages: (repeats, kernel, stride of the first block, expansion, in, out channels).
const STAGES: [(usize, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Blocks `0..GROUP1_FIRST_BLOCK` are layer group 0, the rest group 1.
const GROUP1_FIRST_BLOCK: usize = 8;

/// Dropout before `_fc` in training.
const DROPOUT: f64 = 0.2;

/// TensorFlow's epsilon; scale initialized to 1 as in PyTorch (tch's default is uniform in [0, 1]),
/// which only matters when training from scratch.
fn bn_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        eps: 1e-3,
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    }
}

/// Total padding along one dimension for TensorFlow's "SAME": the output is `ceil(size / stride)`.
fn same_padding(size: i64, kernel: i64, stride: i64) -> i64 {
    let out = (size + stride - 1) / stride;
    ((out - 1) * stride + kernel - size).max(0)
}

/// A bias-free convolution, optionally followed by BatchNorm and ReLU6, with "SAME" padding.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    kernel: i64,
    stride: i64,
    groups: i64,
    relu6: bool,
}

impl ConvBn {
    /// `conv` and `bn` are the two variable names under `p` (`_expand_conv` and `_bn0`, ...).
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &nn::Path,
        conv: &str,
        bn: &str,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
        relu6: bool,
    ) -> ConvBn {
        let cfg = nn::ConvConfig {
            stride,
            groups,
            bias: false,
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv2d(p / conv, c_in, c_out, kernel, cfg),
            bn: nn::batch_norm2d(p / bn, c_out, bn_config()),
            kernel,
            stride,
            groups,
            relu6,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (h, w) = (xs.size()[2], xs.size()[3]);
        let (ph, pw) = (
            same_padding(h, self.kernel, self.stride),
            same_padding(w, self.kernel, self.stride),
        );
        let (s, g) = (self.stride, self.groups);
        let y = if ph % 2 == 0 && pw % 2 == 0 {
            // symmetric: let the convolution pad (same numbers, no padded copy)
            xs.conv2d(
                &self.conv.ws,
                None::<Tensor>,
                [s, s],
                [ph / 2, pw / 2],
                [1, 1],
                g,
            )
        } else {
            // TensorFlow puts the odd pixel after: (left, right, top, bottom)
            xs.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
                .conv2d(&self.conv.ws, None::<Tensor>, [s, s], [0, 0], [1, 1], g)
        };
        let y = y.apply_t(&self.bn, train);
        if self.relu6 {
            super::relu6_(y)
        } else {
            y
        }
    }
}

/// Inverted residual: [1x1 expand], kxk depthwise, 1x1 project (linear), identity skip.
#[derive(Debug)]
struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    skip: bool,
}

impl MbConv {
    fn new(p: &nn::Path, kernel: i64, stride: i64, expand: i64, c_in: i64, c_out: i64) -> MbConv {
        let hidden = c_in * expand;
        MbConv {
            expand: (expand != 1)
                .then(|| ConvBn::new(p, "_expand_conv", "_bn0", c_in, hidden, 1, 1, 1, true)),
            depthwise: ConvBn::new(
                p,
                "_depthwise_conv",
                "_bn1",
                hidden,
                hidden,
                kernel,
                stride,
                hidden,
                true,
            ),
            project: ConvBn::new(p, "_project_conv", "_bn2", hidden, c_out, 1, 1, 1, false),
            skip: stride == 1 && c_in == c_out,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = match &self.expand {
            Some(e) => e.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        let y = self
            .project
            .forward_t(&self.depthwise.forward_t(&y, train), train);
        // (The reference drops whole residual branches at random in training - "drop connect";
        // it is left out here: fine-tuning works without it.)
        if self.skip {
            y + xs
        } else {
            y
        }
    }
}

/// EfficientNet-Lite0: the body, and the ImageNet-style classifier `_fc` when built with classes.
///
/// Build it with [`efficientnet_lite0`]. `forward_t` returns logits `(N, classes)` when it has
/// `_fc`, otherwise the feature map of [`features_t`](Self::features_t).
#[derive(Debug)]
pub struct EfficientNet {
    stem: ConvBn,
    blocks: Vec<MbConv>,
    head: ConvBn,
    fc: Option<nn::Linear>,
    /// The variables' path prefix, for the hook points' names (`_conv_stem`, `_blocks.0`, ...,
    /// `_conv_head`).
    prefix: String,
}

impl EfficientNet {
    /// Channels of the feature map (the input size of `_fc`, or of a head of your own).
    pub const FEATURES: i64 = 1280;

    /// The body: `(N, 3, H, W)` -> `(N, 1280, ceil(H/32), ceil(W/32))`, after the head conv, its
    /// BatchNorm `_bn1` and ReLU6 (before pooling).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let point = |name: &str| join(&self.prefix, name);
        let mut x = tap(&point("_conv_stem"), self.stem.forward_t(xs, train));
        for (i, b) in self.blocks.iter().enumerate() {
            x = tap(&point(&format!("_blocks.{i}")), b.forward_t(&x, train));
        }
        tap(&point("_conv_head"), self.head.forward_t(&x, train))
    }

    /// Number of classes of `_fc`, `None` for the body alone.
    pub fn num_classes(&self) -> Option<i64> {
        self.fc.as_ref().map(|fc| fc.ws.size()[0])
    }
}

impl ModuleT for EfficientNet {
    /// `(N, 3, H, W)` -> logits `(N, classes)` with `_fc`, else the feature map
    /// `(N, 1280, ceil(H/32), ceil(W/32))`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self.features_t(xs, train);
        match &self.fc {
            None => x,
            Some(fc) => x
                .mean_dim(&[2i64, 3][..], false, None)
                .dropout(DROPOUT, train)
                .apply(fc),
        }
    }
}

/// Builds EfficientNet-Lite0 under `p`, with the weights' variable names.
///
/// `num_classes: Some(1000)` gives the complete ImageNet model (247 tensors, all in the offline
/// weights file); `None` gives the body alone (245 tensors: no `_fc`, no pooling), for a learner
/// that attaches its own head to the `(N, 1280, h, w)` feature map.
///
/// ```no_run
/// use fastai::models::efficientnet::efficientnet_lite0;
/// use tch::{nn, nn::ModuleT, Device, Kind, Tensor};
///
/// let mut vs = nn::VarStore::new(Device::Cpu);
/// let model = efficientnet_lite0(&vs.root(), Some(1000));
/// vs.load(fastai::OfflineWeights::EfficientNetLite0.path()).unwrap();
/// let x = Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)); // ImageNet-normalized
/// let probs = model.forward_t(&x, false).softmax(-1, Kind::Float); // (1, 1000)
/// ```
pub fn efficientnet_lite0(p: &nn::Path, num_classes: Option<i64>) -> EfficientNet {
    let g0 = p.set_group(0);
    let g1 = p.set_group(1);
    let stem = ConvBn::new(&g0, "_conv_stem", "_bn0", 3, 32, 3, 2, 1, true);
    let mut blocks = Vec::new();
    for (repeats, kernel, stride, expand, c_in, c_out) in STAGES {
        for r in 0..repeats {
            let i = blocks.len();
            let g = if i < GROUP1_FIRST_BLOCK { &g0 } else { &g1 };
            let (stride, c_in) = if r == 0 { (stride, c_in) } else { (1, c_out) };
            let bp = g / "_blocks" / i;
            blocks.push(MbConv::new(&bp, kernel, stride, expand, c_in, c_out));
        }
    }
    let last = STAGES[STAGES.len() - 1].5;
    let head = ConvBn::new(
        &g1,
        "_conv_head",
        "_bn1",
        last,
        EfficientNet::FEATURES,
        1,
        1,
        1,
        true,
    );
    let fc = num_classes.map(|c| {
        nn::linear(
            p.set_group(2) / "_fc",
            EfficientNet::FEATURES,
            c,
            Default::default(),
        )
    });
    EfficientNet {
        stem,
        blocks,
        head,
        fc,
        prefix: path_name(p),
    }
}

/// The layer group of a variable name, for discriminative learning rates: 0 for the stem
/// (`_conv_stem`, `_bn0`) and blocks 0-7, 1 for blocks 8-15 and the head conv (`_conv_head`,
/// `_bn1`), 2 for everything else - `_fc`, or a head of your own.
///
/// The name may carry a prefix (`body._blocks.3._bn1.weight`): it is matched segment by segment.
pub fn layer_group_of(name: &str) -> usize {
    let parts: Vec<&str> = name.split('.').collect();
    if let Some(i) = parts.iter().position(|s| *s == "_blocks") {
        if let Some(Ok(block)) = parts.get(i + 1).map(|s| s.parse::<usize>()) {
            return if block < GROUP1_FIRST_BLOCK { 0 } else { 1 };
        }
    }
    let has = |seg: &str| parts.contains(&seg);
    if has("_fc") {
        2
    } else if has("_conv_stem") || has("_bn0") {
        0
    } else if has("_conv_head") || has("_bn1") {
        1
    } else {
        2
    }
}

/// Whether a variable name belongs to a BatchNorm layer (`_bn0`, `_bn1`, `_bn2`, at the top level or
/// in a block) - the layers fastai keeps trainable in a frozen body.
pub fn is_batchnorm(name: &str) -> bool {
    name.split('.').any(|s| s.starts_with("_bn"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tch::{Device, Kind};

    #[test]
    fn same_padding_matches_tensorflow() {
        // ceil(size / stride) outputs; odd total padding puts the extra pixel after
        assert_eq!(same_padding(224, 3, 2), 1);
        assert_eq!(same_padding(225, 3, 2), 2);
        assert_eq!(same_padding(112, 5, 2), 3);
        assert_eq!(same_padding(7, 5, 1), 4);
        assert_eq!(same_padding(7, 1, 1), 0);
        // A 3x3 stride-2 kernel that only reads its top-left tap, on a 4x4 ramp: with nothing padded
        // before, output (i, j) reads input (2i, 2j).
        let vs = nn::VarStore::new(Device::Cpu);
        let mut c = ConvBn::new(&vs.root(), "c", "bn", 1, 1, 3, 2, 1, false);
        tch::no_grad(|| {
            let _ = c.conv.ws.zero_();
            let _ = c.conv.ws.get(0).get(0).get(0).get(0).fill_(1.0);
        });
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
        let out = c.forward_t(&x, false) * (1.0 + 1e-3f64).sqrt(); // undo BN's 1/sqrt(1 + eps)
        let got = Vec::<f32>::try_from(out.flatten(0, -1)).unwrap();
        let want = [0.0, 2.0, 8.0, 10.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn names_shapes_groups() {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = efficientnet_lite0(&vs.root(), Some(1000));
        let vars: BTreeMap<String, Vec<i64>> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        assert_eq!(vars.len(), 247);
        assert_eq!(vars["_conv_stem.weight"], [32, 3, 3, 3]);
        assert_eq!(vars["_blocks.0._depthwise_conv.weight"], [32, 1, 3, 3]);
        assert!(!vars.contains_key("_blocks.0._expand_conv.weight"));
        assert_eq!(vars["_blocks.15._project_conv.weight"], [320, 1152, 1, 1]);
        assert_eq!(vars["_bn1.running_var"], [1280]);
        assert_eq!(vars["_fc.weight"], [1000, 1280]);
        let params: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(params, 4_694_024);
        assert_eq!(m.num_classes(), Some(1000));

        // the optimizer groups the builder set agree with layer_group_of
        let named = vs.variables();
        let vars_ = vs.variables_.lock().unwrap();
        let mut per_group = [0; 3];
        for v in &vars_.trainable_variables {
            let (name, _) = named
                .iter()
                .find(|(_, t)| t.data_ptr() == v.tensor.data_ptr())
                .unwrap();
            assert_eq!(v.group, layer_group_of(name), "{name}");
            per_group[v.group] += 1;
        }
        assert!(per_group.iter().all(|&n| n > 0), "{per_group:?}");
        assert_eq!(layer_group_of("_blocks.7._bn2.bias"), 0);
        assert_eq!(layer_group_of("_blocks.8._expand_conv.weight"), 1);
        assert_eq!(layer_group_of("body._bn0.weight"), 0);
        assert_eq!(layer_group_of("_bn1.weight"), 1);
        assert_eq!(layer_group_of("_fc.bias"), 2);
        assert_eq!(layer_group_of("head.1.weight"), 2);
        assert!(is_batchnorm("_blocks.3._bn1.running_mean"));
        assert!(is_batchnorm("_bn0.weight"));
        assert!(!is_batchnorm("_blocks.3._depthwise_conv.weight"));
        assert!(!is_batchnorm("_fc.weight"));
    }

    #[test]
    fn body_alone_gives_feature_maps() {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = efficientnet_lite0(&vs.root(), None);
        assert_eq!(vs.variables().len(), 245);
        assert_eq!(m.num_classes(), None);
        let x = Tensor::rand([2, 3, 225, 193], (Kind::Float, Device::Cpu));
        // 225 -> 113 -> 57 -> 29 -> 15 -> 8 and 193 -> 97 -> 49 -> 25 -> 13 -> 7
        assert_eq!(m.forward_t(&x, false).size(), [2, 1280, 8, 7]);
        assert_eq!(m.features_t(&x, true).size(), [2, 1280, 8, 7]);
    }
}
