//! ResNet bodies (18, 34, 50) with torchvision's variable names, so torchvision's ImageNet
//! weights (as safetensors) load as they are: `conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`,
//! `layer1.0.downsample.0.weight`, ... The classifier (`fc`) and the pooling are left out: a
//! learner puts its own head on the body's feature map.
//!
//! Variables are created in optimizer groups for discriminative learning rates, as fastai splits
//! a resnet: group 0 = stem, layer1, layer2; group 1 = layer3, layer4 (the head is group 2).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::hooks::{join, path_name, tap};
use super::relu_;

/// A ResNet body: `forward_t` maps `(N, 3, H, W)` to the feature map `(N, features, H/32, W/32)`.
#[derive(Debug)]
pub struct ResNet {
    stem_conv: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    layers: Vec<Vec<Block>>,
    /// Channels of the feature map: 512 (18, 34) or 2048 (50).
    pub features: i64,
    /// The variables' path prefix, for the hook points' names.
    prefix: String,
}

#[derive(Debug)]
enum Block {
    Basic {
        c1: nn::Conv2D,
        b1: nn::BatchNorm,
        c2: nn::Conv2D,
        b2: nn::BatchNorm,
        down: Option<(nn::Conv2D, nn::BatchNorm)>,
    },
    Bottleneck {
        c1: nn::Conv2D,
        b1: nn::BatchNorm,
        c2: nn::Conv2D,
        b2: nn::BatchNorm,
        c3: nn::Conv2D,
        b3: nn::BatchNorm,
        down: Option<(nn::Conv2D, nn::BatchNorm)>,
    },
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

impl Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let (out, down) = match self {
            Block::Basic {
                c1,
                b1,
                c2,
                b2,
                down,
            } => {
                let y = relu_(x.apply(c1).apply_t(b1, train))
                    .apply(c2)
                    .apply_t(b2, train);
                (y, down)
            }
            Block::Bottleneck {
                c1,
                b1,
                c2,
                b2,
                c3,
                b3,
                down,
            } => {
                let y = relu_(x.apply(c1).apply_t(b1, train));
                let y = relu_(y.apply(c2).apply_t(b2, train))
                    .apply(c3)
                    .apply_t(b3, train);
                (y, down)
            }
        };
        let shortcut = match down {
            Some((c, b)) => x.apply(c).apply_t(b, train),
            None => x.shallow_clone(),
        };
        let mut out = out;
        out += shortcut;
        relu_(out)
    }
}

/// Which ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    R18,
    R34,
    R50,
}

impl Depth {
    fn spec(self) -> ([usize; 4], bool) {
        match self {
            Depth::R18 => ([2, 2, 2, 2], false),
            Depth::R34 => ([3, 4, 6, 3], false),
            Depth::R50 => ([3, 4, 6, 3], true),
        }
    }
}

/// Builds a ResNet body under `root` (names as torchvision's, groups 0 and 1).
pub fn resnet(root: &nn::Path, depth: Depth) -> ResNet {
    let (blocks, bottleneck) = depth.spec();
    let expansion = if bottleneck { 4 } else { 1 };
    let g0 = root.set_group(0);
    let stem_conv = nn::conv2d(
        &g0 / "conv1",
        3,
        64,
        7,
        nn::ConvConfig {
            stride: 2,
            padding: 3,
            bias: false,
            ..Default::default()
        },
    );
    let stem_bn = bn(&g0 / "bn1", 64);
    let mut c_in = 64;
    let mut layers = Vec::new();
    for (li, &n) in blocks.iter().enumerate() {
        let planes = 64 << li;
        let stride = if li == 0 { 1 } else { 2 };
        let group = if li < 2 {
            root.set_group(0)
        } else {
            root.set_group(1)
        };
        let lp = &group / format!("layer{}", li + 1);
        let mut layer = Vec::new();
        for bi in 0..n {
            let p = &lp / bi;
            let s = if bi == 0 { stride } else { 1 };
            let c_out = planes * expansion;
            let down = (bi == 0 && (s != 1 || c_in != c_out)).then(|| {
                (
                    conv(&p / "downsample" / 0, c_in, c_out, 1, s),
                    bn(&p / "downsample" / 1, c_out),
                )
            });
            let block = if bottleneck {
                Block::Bottleneck {
                    c1: conv(&p / "conv1", c_in, planes, 1, 1),
                    b1: bn(&p / "bn1", planes),
                    c2: conv(&p / "conv2", planes, planes, 3, s),
                    b2: bn(&p / "bn2", planes),
                    c3: conv(&p / "conv3", planes, c_out, 1, 1),
                    b3: bn(&p / "bn3", c_out),
                    down,
                }
            } else {
                Block::Basic {
                    c1: conv(&p / "conv1", c_in, planes, 3, s),
                    b1: bn(&p / "bn1", planes),
                    c2: conv(&p / "conv2", planes, planes, 3, 1),
                    b2: bn(&p / "bn2", planes),
                    down,
                }
            };
            layer.push(block);
            c_in = c_out;
        }
        layers.push(layer);
    }
    ResNet {
        stem_conv,
        stem_bn,
        layers,
        features: c_in,
        prefix: path_name(root),
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // hook points: conv1, bn1 (after its ReLU), maxpool, then every block (layer1.0, ...)
        let p = |name: &str| join(&self.prefix, name);
        let x = tap(&p("conv1"), xs.apply(&self.stem_conv));
        let x = tap(&p("bn1"), relu_(x.apply_t(&self.stem_bn, train)));
        let mut x = tap(
            &p("maxpool"),
            x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false),
        );
        for (li, layer) in self.layers.iter().enumerate() {
            for (bi, block) in layer.iter().enumerate() {
                x = tap(
                    &p(&format!("layer{}.{bi}", li + 1)),
                    block.forward_t(&x, train),
                );
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_and_names_match_torchvision() {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = resnet(&vs.root(), Depth::R34);
        let y = m.forward_t(
            &Tensor::zeros([2, 3, 64, 64], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), vec![2, 512, 2, 2]);
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].size(), vec![64, 3, 7, 7]);
        assert_eq!(
            vars["layer2.0.downsample.0.weight"].size(),
            vec![128, 64, 1, 1]
        );
        assert_eq!(vars["layer4.2.bn2.running_var"].size(), vec![512]);
        // torchvision resnet34 without fc: 21,284,672 parameters (+ BN buffers)
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(params, 21_284_672);

        let vs50 = nn::VarStore::new(Device::Cpu);
        let m50 = resnet(&vs50.root(), Depth::R50);
        assert_eq!(m50.features, 2048);
        let params: i64 = vs50
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(params, 23_508_032); // torchvision resnet50 without fc
    }
}
