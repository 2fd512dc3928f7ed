//! MobileNetV2 body with torchvision's variable names (`features.0.0.weight`, ...,
//! `features.18.1.running_var`), which is what the offline ImageNet weights use. No classifier:
//! `forward_t` returns the `(N, 1280, H/32, W/32)` feature map.
//!
//! Groups for discriminative learning rates: features 0-9 -> group 0, 10-18 -> group 1.

use super::hooks::{join, path_name, tap};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// (expansion, output channels, repeats, first stride) of the inverted-residual stages.
const STAGES: [(i64, i64, usize, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    relu6: bool,
}

impl ConvBn {
    fn new(
        p: &nn::Path,
        c_in: i64,
        c_out: i64,
        k: i64,
        stride: i64,
        groups: i64,
        relu6: bool,
    ) -> ConvBn {
        let cfg = nn::ConvConfig {
            stride,
            padding: (k - 1) / 2,
            groups,
            bias: false,
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv2d(p / 0, c_in, c_out, k, cfg),
            bn: nn::batch_norm2d(p / 1, c_out, Default::default()),
            relu6,
        }
    }
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = x.apply(&self.conv).apply_t(&self.bn, train);
        if self.relu6 {
            super::relu6_(y)
        } else {
            y
        }
    }
}

#[derive(Debug)]
struct InvertedResidual {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: nn::Conv2D,
    project_bn: nn::BatchNorm,
    residual: bool,
}

/// The MobileNetV2 feature extractor.
#[derive(Debug)]
pub struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    last: ConvBn,
    /// The variables' path prefix, for the hook points' names (`features.0` ... `features.18`).
    prefix: String,
}

impl MobileNetV2 {
    /// Channels of the feature map.
    pub const FEATURES: i64 = 1280;
}

fn group_path<'a>(root: &nn::Path<'a>, index: usize) -> nn::Path<'a> {
    let g = if index <= 9 { 0 } else { 1 };
    root.set_group(g) / "features" / index
}

/// Builds the body under `root`.
pub fn mobilenet_v2(root: &nn::Path) -> MobileNetV2 {
    let stem = ConvBn::new(&group_path(root, 0), 3, 32, 3, 2, 1, true);
    let mut c_in = 32;
    let mut blocks = Vec::new();
    let mut index = 1;
    for (er, c_out, n, first_stride) in STAGES {
        for i in 0..n {
            let stride = if i == 0 { first_stride } else { 1 };
            let p = group_path(root, index) / "conv";
            let hidden = c_in * er;
            // torchvision numbering: [0: expand ConvBNReLU], dw ConvBNReLU, project conv, BN
            let mut k = 0;
            let expand = (er != 1).then(|| {
                k += 1;
                ConvBn::new(&(&p / 0), c_in, hidden, 1, 1, 1, true)
            });
            let depthwise = ConvBn::new(&(&p / k), hidden, hidden, 3, stride, hidden, true);
            let project = nn::conv2d(
                &p / (k + 1),
                hidden,
                c_out,
                1,
                nn::ConvConfig {
                    bias: false,
                    ..Default::default()
                },
            );
            let project_bn = nn::batch_norm2d(&p / (k + 2), c_out, Default::default());
            blocks.push(InvertedResidual {
                expand,
                depthwise,
                project,
                project_bn,
                residual: stride == 1 && c_in == c_out,
            });
            c_in = c_out;
            index += 1;
        }
    }
    let last = ConvBn::new(
        &group_path(root, index),
        c_in,
        MobileNetV2::FEATURES,
        1,
        1,
        1,
        true,
    );
    MobileNetV2 {
        stem,
        blocks,
        last,
        prefix: path_name(root),
    }
}

impl ModuleT for MobileNetV2 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let point = |i: usize| join(&self.prefix, &format!("features.{i}"));
        let mut x = tap(&point(0), self.stem.forward_t(xs, train));
        for (i, b) in self.blocks.iter().enumerate() {
            let mut y = match &b.expand {
                Some(e) => e.forward_t(&x, train),
                None => x.shallow_clone(),
            };
            y = b
                .depthwise
                .forward_t(&y, train)
                .apply(&b.project)
                .apply_t(&b.project_bn, train);
            x = tap(&point(i + 1), if b.residual { x + y } else { y });
        }
        tap(
            &point(self.blocks.len() + 1),
            self.last.forward_t(&x, train),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn names_and_shapes_equal_tchs_own_mobilenet() {
        let ours = nn::VarStore::new(Device::Cpu);
        let m = mobilenet_v2(&ours.root());
        let theirs = nn::VarStore::new(Device::Cpu);
        let _ = tch::vision::mobilenet::v2(&theirs.root(), 10);
        let a: std::collections::BTreeMap<_, _> = ours
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        let b: std::collections::BTreeMap<_, _> = theirs
            .variables()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("classifier"))
            .map(|(n, t)| (n, t.size()))
            .collect();
        assert_eq!(a, b);
        let y = m.forward_t(
            &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), vec![1, 1280, 2, 2]);
    }
}
