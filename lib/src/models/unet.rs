//! fastai's dynamic U-Net (lesson 3's camvid): a pretrained body as the encoder, and a decoder
//! made to fit it that grows the feature map back to the input's size, joining in the encoder's
//! activations on the way up (skip connections).
//!
//! "Dynamic": the decoder is not written for one body. Building it runs the body once on a dummy
//! image and notes every point where the resolution changes (fastai v1's `model_sizes` and
//! `_get_sfs_idxs`); the output of the last point before each change (resnet34: `layer3.5`,
//! `layer2.3`, `layer1.2`, `bn1`) is kept by a hook in every forward pass.
//!
//! ```text
//! encoder   the body                                      (N, ni, H/32, W/32)    hook "encoder"
//!           BatchNorm, ReLU, middle: conv ni -> 2ni -> ni
//! blocks    one UnetBlock per skip, deepest first         (N, c, H/16) .. (N, c, H/2)
//!             up = PixelShuffle_ICNR(x): channels / 2, size x 2 (resized to the skip's if odd)
//!             conv(conv(relu(cat[up, BatchNorm(skip)])))
//! final     PixelShuffle_ICNR to full size (resized to the input's if still different)
//!           last_cross: cat[x, input] and a residual block
//!           1x1 conv to n_classes                         (N, n_classes, H, W)
//! ```
//!
//! As in fastai v1's `unet_learner` (whose default `norm_type` turns normalization off in its
//! `conv_layer`s), the decoder's convolutions have a bias and no BatchNorm; its BatchNorm layers
//! are the one after the encoder and one on each skip. Variables: the encoder's keep their
//! pretrained names in groups 0 and 1 (as in [`CnnModel`](super::CnnModel)); the decoder's are
//! named `decoder.*`, in group 2.

use tch::nn::{self, init, ModuleT};
use tch::{Device, Kind, Tensor};

use super::hooks::{path_name, tap, Hook, Taps};
use super::layers::{conv_layer_with, ConvLayer, ConvLayerConfig};
use super::model::Model;
use super::{body, relu_, Arch, Body};

/// Options of [`DynamicUnet`]; `Default` is fastai v1's `unet_learner`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnetOptions {
    /// Blur (replication pad + 2x2 average pool) after each upsampling but the last, against
    /// checkerboard artifacts.
    pub blur: bool,
    /// With `blur`, also blur the last block's upsampling.
    pub blur_final: bool,
    /// A self-attention layer in the third block from the end.
    pub self_attention: bool,
    /// Concatenate the input image before the last layers (a residual block on it).
    pub last_cross: bool,
    /// That residual block narrows to half the channels inside.
    pub bottle: bool,
    /// Outputs squashed into `(lo, hi)` by a sigmoid (for regression targets).
    pub y_range: Option<(f64, f64)>,
}

impl Default for UnetOptions {
    fn default() -> Self {
        UnetOptions {
            blur: false,
            blur_final: true,
            self_attention: false,
            last_cross: true,
            bottle: false,
            y_range: None,
        }
    }
}

/// A decoder conv layer: Conv (bias, Kaiming normal) then ReLU when `relu`, no BatchNorm.
fn conv<'a>(p: impl std::borrow::Borrow<nn::Path<'a>>, ni: i64, nf: i64, ks: i64) -> ConvLayer {
    let cfg = ConvLayerConfig {
        ks,
        bn: false,
        ..Default::default()
    };
    conv_layer_with(p, ni, nf, cfg)
}

/// fastai's `batchnorm_2d`: scale 1, bias 1e-3 (tch's default scale is uniform in [0, 1]).
fn batchnorm(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: init::Init::Const(1.0),
        bs_init: init::Init::Const(1e-3),
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

fn kaiming_normal() -> init::Init {
    init::Init::Kaiming {
        dist: init::NormalOrUniform::Normal,
        fan: init::FanInOut::FanIn,
        non_linearity: init::NonLinearity::ReLU,
    }
}

/// ICNR initialisation (Aitken et al., 2017) of a conv weight of shape `(nf * scale², ni, k, k)`
/// that feeds `pixel_shuffle(scale)`: the `scale²` outputs that become one channel's sub-pixels
/// share one Kaiming-normal kernel, so at init the shuffle is a nearest-neighbour upsampling of
/// the convolution - no checkerboard.
pub fn icnr(shape: [i64; 4], scale: i64, device: Device) -> Tensor {
    let [nf, ni, kh, kw] = shape;
    let r2 = scale * scale;
    let std = (2.0 / (ni * kh * kw) as f64).sqrt();
    // pixel_shuffle makes channel c from inputs c*r² .. c*r² + r² - 1: repeat each kernel r² times
    (Tensor::randn([nf / r2, ni, kh, kw], (Kind::Float, device)) * std)
        .repeat_interleave_self_int(r2, 0, None)
}

/// fastai's `PixelShuffle_ICNR(ni, nf, scale=2, blur)`: 1x1 conv to `nf * 4` channels
/// (ICNR-initialised), ReLU, pixel shuffle: `(N, ni, h, w)` -> `(N, nf, 2h, 2w)`. With `blur`,
/// a replication pad and a 2x2 average pool of stride 1 smooth it (same size).
#[derive(Debug)]
pub struct PixelShuffleIcnr {
    conv: nn::Conv2D,
    blur: bool,
    name: String,
}

/// [`PixelShuffleIcnr`] under `p` (its conv is `p.conv`).
pub fn pixel_shuffle_icnr(p: &nn::Path, ni: i64, nf: i64, blur: bool) -> PixelShuffleIcnr {
    let conv = nn::conv2d(p / "conv", ni, nf * 4, 1, Default::default());
    tch::no_grad(|| {
        let mut ws = conv.ws.shallow_clone();
        ws.copy_(&icnr([nf * 4, ni, 1, 1], 2, ws.device()));
    });
    PixelShuffleIcnr {
        conv,
        blur,
        name: path_name(p),
    }
}

impl ModuleT for PixelShuffleIcnr {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let y = relu_(xs.apply(&self.conv)).pixel_shuffle(2);
        let y = if self.blur {
            y.replication_pad2d([1, 0, 1, 0])
                .avg_pool2d([2, 2], [1, 1], [0, 0], false, true, None)
        } else {
            y
        };
        tap(&self.name, y)
    }
}

/// fastai's `SelfAttention(c)` (SAGAN): every position attends to every other, through 1x1
/// query/key (c/8 channels) and value convolutions; the result is scaled by `gamma`, which
/// starts at 0, and added to the input. fastai wraps the convolutions in spectral norm; this
/// one does not.
#[derive(Debug)]
pub struct SelfAttention {
    query: nn::Conv1D,
    key: nn::Conv1D,
    value: nn::Conv1D,
    gamma: Tensor,
    name: String,
}

/// [`SelfAttention`] over `c` channels under `p`.
pub fn self_attention(p: &nn::Path, c: i64) -> SelfAttention {
    let cfg = nn::ConvConfig {
        ws_init: kaiming_normal(),
        ..Default::default()
    };
    SelfAttention {
        query: nn::conv1d(p / "query", c, c / 8, 1, cfg),
        key: nn::conv1d(p / "key", c, c / 8, 1, cfg),
        value: nn::conv1d(p / "value", c, c, 1, cfg),
        gamma: p.var("gamma", &[1], init::Init::Const(0.0)),
        name: path_name(p),
    }
}

impl ModuleT for SelfAttention {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let size = xs.size();
        let x = xs.flatten(2, -1); // (N, c, hw)
        let (f, g, h) = (
            x.apply(&self.query),
            x.apply(&self.key),
            x.apply(&self.value),
        );
        // beta[i, j]: how much position j draws from position i (softmax over i)
        let beta = f.transpose(1, 2).bmm(&g).softmax(1, Kind::Float);
        let o = &self.gamma * h.bmm(&beta.to_kind(h.kind())) + x;
        tap(&self.name, o.view(size.as_slice()))
    }
}

/// fastai's `UnetBlock`: upsample the way up, normalize the skip, concatenate, two convs.
#[derive(Debug)]
struct UnetBlock {
    shuf: PixelShuffleIcnr,
    bn: nn::BatchNorm,
    conv1: ConvLayer,
    conv2: ConvLayer,
    sa: Option<SelfAttention>,
    name: String,
    /// Output channels.
    nf: i64,
}

impl UnetBlock {
    /// `up_in_c` channels come up, `x_in_c` from the skip; the output has their sum with half
    /// of `up_in_c` (`final_div`), or half of that.
    fn new(p: &nn::Path, up_in_c: i64, x_in_c: i64, final_div: bool, blur: bool, sa: bool) -> Self {
        let ni = up_in_c / 2 + x_in_c;
        let nf = if final_div { ni } else { ni / 2 };
        UnetBlock {
            shuf: pixel_shuffle_icnr(&(p / "shuf"), up_in_c, up_in_c / 2, blur),
            bn: batchnorm(p / "bn", x_in_c),
            conv1: conv(p / "conv1", ni, nf, 3),
            conv2: conv(p / "conv2", nf, nf, 3),
            sa: sa.then(|| self_attention(&(p / "sa"), nf)),
            name: path_name(p),
            nf,
        }
    }

    fn forward_t(&self, up_in: &Tensor, skip: &Tensor, train: bool) -> Tensor {
        let mut up = self.shuf.forward_t(up_in, train);
        let (h, w) = (skip.size()[2], skip.size()[3]);
        if up.size()[2..] != [h, w] {
            // an odd size somewhere in the encoder: twice the smaller map misses by a pixel
            up = up.upsample_nearest2d([h, w], None, None);
        }
        let x = relu_(Tensor::cat(&[up, skip.apply_t(&self.bn, train)], 1));
        let mut x = self
            .conv2
            .forward_t(&self.conv1.forward_t(&x, train), train);
        if let Some(sa) = &self.sa {
            x = sa.forward_t(&x, train);
        }
        tap(&self.name, x)
    }
}

/// `last_cross`'s residual block on `cat[x, input]`: `y + conv(conv(y))` (fastai's
/// `res_block(ni, bottle)` without normalization, as in the rest of the decoder).
#[derive(Debug)]
struct CrossBlock {
    c1: ConvLayer,
    c2: ConvLayer,
    name: String,
}

impl CrossBlock {
    fn new(p: &nn::Path, ni: i64, bottle: bool) -> Self {
        let inner = if bottle { ni / 2 } else { ni };
        CrossBlock {
            c1: conv(p / 0, ni, inner, 3),
            c2: conv(p / 1, inner, ni, 3),
            name: path_name(p),
        }
    }

    fn forward_t(&self, x: &Tensor, input: &Tensor, train: bool) -> Tensor {
        let y = Tensor::cat(&[x, input], 1);
        let out = self.c2.forward_t(&self.c1.forward_t(&y, train), train) + y;
        tap(&self.name, out)
    }
}

/// fastai's `DynamicUnet`: `(N, 3, H, W)` -> `(N, n_classes, H, W)` for any `H`, `W`.
///
/// Hook points: the encoder's (`layer1.0`, `features.3`, `_blocks.4`, ...), `encoder` (its
/// output), the decoder's layers (`decoder.middle.0`, `decoder.blocks.2`, `decoder.shuf`,
/// `decoder.cross`, `decoder.out`, ...).
#[derive(Debug)]
pub struct DynamicUnet {
    pub arch: Arch,
    pub vs: nn::VarStore,
    pub encoder: Body,
    /// The encoder points whose outputs are joined back in, deepest first, with their
    /// channels: the last point before each change of resolution.
    pub skip_points: Vec<(String, i64)>,
    skips: Vec<Hook>,
    bn: nn::BatchNorm,
    middle: [ConvLayer; 2],
    blocks: Vec<UnetBlock>,
    final_shuf: Option<PixelShuffleIcnr>,
    cross: Option<CrossBlock>,
    out: ConvLayer,
    y_range: Option<(f64, f64)>,
    taps: Taps,
}

/// Side of the dummy image the encoder is probed with (any size that halves 5 times).
const PROBE_SIZE: i64 = 64;

/// The named points `encoder` passes, in order, with their output shapes, for a dummy image.
fn probe(encoder: &Body, device: Device) -> Vec<(String, Vec<i64>)> {
    let x = Tensor::zeros([1, 3, PROBE_SIZE, PROBE_SIZE], (Kind::Float, device));
    let (_, seen) = Taps::default().record(|| tch::no_grad(|| encoder.forward_t(&x, false)));
    seen
}

/// fastai v1's `_get_sfs_idxs`: the indices of the points whose successor has another size.
fn size_changes(points: &[(String, Vec<i64>)]) -> Vec<usize> {
    let hw = |i: usize| &points[i].1[2..];
    (0..points.len().saturating_sub(1))
        .filter(|&i| hw(i) != hw(i + 1))
        .collect()
}

impl DynamicUnet {
    /// A U-Net on `arch`'s body (random weights; see [`crate::models::weights`] to load
    /// ImageNet's) with `n_classes` output channels, on `device`.
    pub fn new(arch: Arch, device: Device, n_classes: i64, opts: UnetOptions) -> DynamicUnet {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = body(arch, &root);
        let points = probe(&encoder, device);
        let idxs: Vec<usize> = size_changes(&points).into_iter().rev().collect();
        let skip_points: Vec<(String, i64)> = idxs
            .iter()
            .map(|&i| (points[i].0.clone(), points[i].1[1]))
            .collect();
        let taps = Taps::default();
        let skips = skip_points
            .iter()
            .map(|(name, _)| taps.hook_output_attached(name))
            .collect();

        let d = root.set_group(2) / "decoder";
        let ni = arch.features();
        let bn = batchnorm(&d / "bn", ni);
        let middle = [
            conv(&d / "middle" / 0, ni, ni * 2, 3),
            conv(&d / "middle" / 1, ni * 2, ni, 3),
        ];
        let n = skip_points.len();
        let mut c = ni;
        let mut blocks = Vec::new();
        for (i, (_, x_in_c)) in skip_points.iter().enumerate() {
            let not_final = i + 1 != n;
            let blur = opts.blur && (not_final || opts.blur_final);
            let sa = opts.self_attention && i + 3 == n;
            let block = UnetBlock::new(&(&d / "blocks" / i), c, *x_in_c, not_final, blur, sa);
            c = block.nf;
            blocks.push(block);
        }
        // the encoder's first point is already smaller than the image (a strided stem)
        let first = &points[0].1[2..];
        let final_shuf = (first != [PROBE_SIZE, PROBE_SIZE])
            .then(|| pixel_shuffle_icnr(&(&d / "shuf"), c, c, false));
        let cross = opts.last_cross.then(|| {
            c += 3;
            CrossBlock::new(&(&d / "cross"), c, opts.bottle)
        });
        let out_cfg = ConvLayerConfig {
            ks: 1,
            bn: false,
            relu: false,
            ..Default::default()
        };
        let out = conv_layer_with(&d / "out", c, n_classes, out_cfg);
        DynamicUnet {
            arch,
            vs,
            bn,
            encoder,
            skip_points,
            skips,
            middle,
            blocks,
            final_shuf,
            cross,
            out,
            y_range: opts.y_range,
            taps,
        }
    }
}

impl Model for DynamicUnet {
    /// `(N, 3, H, W)` -> `(N, n_classes, H, W)`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.taps.during(|| {
            let (h, w) = (xs.size()[2], xs.size()[3]);
            let enc = tap("encoder", self.encoder.forward_t(xs, train));
            let skips: Vec<Tensor> = self
                .skips
                .iter()
                .map(|hook| {
                    hook.take().unwrap_or_else(|| {
                        panic!("the encoder did not pass its point {:?}", hook.name())
                    })
                })
                .collect();
            let mut x = relu_(enc.apply_t(&self.bn, train));
            for m in &self.middle {
                x = m.forward_t(&x, train);
            }
            for (block, skip) in self.blocks.iter().zip(&skips) {
                x = block.forward_t(&x, skip, train);
            }
            if let Some(shuf) = &self.final_shuf {
                x = shuf.forward_t(&x, train);
            }
            if x.size()[2..] != [h, w] {
                x = x.upsample_nearest2d([h, w], None, None);
            }
            if let Some(cross) = &self.cross {
                x = cross.forward_t(&x, xs, train);
            }
            let out = self.out.forward_t(&x, train);
            match self.y_range {
                Some((lo, hi)) => out.sigmoid() * (hi - lo) + lo,
                None => out,
            }
        })
    }
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }
    fn name(&self) -> String {
        format!("unet_{}", self.arch.name())
    }
    fn taps(&self) -> Option<&Taps> {
        Some(&self.taps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_the_last_points_before_each_size_change() {
        let p = |name: &str, hw: i64| (name.to_string(), vec![1, 8, hw, hw]);
        let points = [p("a", 32), p("b", 32), p("c", 16), p("d", 8), p("e", 8)];
        assert_eq!(size_changes(&points), [1, 2]);
        assert!(size_changes(&[]).is_empty());
    }
}
