//! Layers for models of your own, as fastai v1's `layers.py`: [`conv_layer`] (conv, ReLU,
//! BatchNorm), [`res_block`], [`Flatten`], [`simple_cnn`], and [`sequential`], a list of layers
//! whose outputs hooks and `learn.summary()` can see.
//!
//! Lesson 7's ResNet for MNIST:
//!
//! ```no_run
//! use fastai::vision::*;
//! fn conv2(p: nn::Path, ni: i64, nf: i64) -> ConvLayer { conv_layer_with(p, ni, nf, ConvLayerConfig { stride: 2, ..Default::default() }) }
//! fn conv_and_res(p: nn::Path, ni: i64, nf: i64) -> Sequential {
//!     sequential(&p).add(conv2(&p / 0, ni, nf)).add(res_block(&p / 1, nf))
//! }
//! let model = Net::new(Device::Cpu, |p| sequential(p)
//!     .add(conv_and_res(p / 0, 1, 8))
//!     .add(conv_and_res(p / 1, 8, 16))
//!     .add(conv2(p / 2, 16, 10))
//!     .add(Flatten));
//! ```
//!
//! Every layer takes the `nn::Path` its variables go under (`p / 0`, `p / "conv"`): that path is
//! also the name of its hook point.

use tch::nn::{self, init, ModuleT};
use tch::Tensor;

use super::hooks::{join, path_name, tap};

/// Options of [`conv_layer_with`]; `Default` is fastai's: 3x3, stride 1, padding ks/2,
/// BatchNorm, ReLU, no bias (the BatchNorm has one).
#[derive(Debug, Clone, Copy)]
pub struct ConvLayerConfig {
    pub ks: i64,
    pub stride: i64,
    /// `None`: `ks / 2`.
    pub padding: Option<i64>,
    pub bn: bool,
    pub relu: bool,
}

impl Default for ConvLayerConfig {
    fn default() -> Self {
        ConvLayerConfig {
            ks: 3,
            stride: 1,
            padding: None,
            bn: true,
            relu: true,
        }
    }
}

/// fastai v1's `conv_layer`: Conv2d (Kaiming-normal weights) -> ReLU -> BatchNorm2d, as
/// `p/0`, `p/2` (the ReLU, `1`, has no variables).
#[derive(Debug)]
pub struct ConvLayer {
    conv: nn::Conv2D,
    bn: Option<nn::BatchNorm>,
    relu: bool,
    name: String,
}

/// `conv_layer(ni, nf)`: 3x3, stride 1, with BatchNorm and ReLU.
pub fn conv_layer<'a>(p: impl std::borrow::Borrow<nn::Path<'a>>, ni: i64, nf: i64) -> ConvLayer {
    conv_layer_with(p, ni, nf, ConvLayerConfig::default())
}

/// `conv_layer(ni, nf, ks, stride, ...)`.
pub fn conv_layer_with<'a>(
    p: impl std::borrow::Borrow<nn::Path<'a>>,
    ni: i64,
    nf: i64,
    cfg: ConvLayerConfig,
) -> ConvLayer {
    let p = p.borrow();
    let conv = nn::conv2d(
        p / 0,
        ni,
        nf,
        cfg.ks,
        nn::ConvConfig {
            stride: cfg.stride,
            padding: cfg.padding.unwrap_or(cfg.ks / 2),
            bias: !cfg.bn,
            ws_init: init::Init::Kaiming {
                dist: init::NormalOrUniform::Normal,
                fan: init::FanInOut::FanIn,
                non_linearity: init::NonLinearity::ReLU,
            },
            ..Default::default()
        },
    );
    let bn = cfg
        .bn
        .then(|| nn::batch_norm2d(p / 2, nf, Default::default()));
    ConvLayer {
        conv,
        bn,
        relu: cfg.relu,
        name: path_name(p),
    }
}

impl ModuleT for ConvLayer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.apply(&self.conv);
        if self.relu {
            x = x.relu();
        }
        if let Some(bn) = &self.bn {
            x = x.apply_t(bn, train);
        }
        tap(&self.name, x)
    }
}

/// fastai v1's `res_block(nf)`: `x + conv_layer(conv_layer(x))`, shapes kept (`p/0`, `p/1`).
#[derive(Debug)]
pub struct ResBlock {
    c1: ConvLayer,
    c2: ConvLayer,
    name: String,
}

pub fn res_block<'a>(p: impl std::borrow::Borrow<nn::Path<'a>>, nf: i64) -> ResBlock {
    let p = p.borrow();
    ResBlock {
        c1: conv_layer(p / 0, nf, nf),
        c2: conv_layer(p / 1, nf, nf),
        name: path_name(p),
    }
}

impl ModuleT for ResBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = self.c2.forward_t(&self.c1.forward_t(xs, train), train);
        tap(&self.name, xs + y)
    }
}

/// `(N, ...)` -> `(N, rest)`.
#[derive(Debug, Clone, Copy)]
pub struct Flatten;

impl ModuleT for Flatten {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        xs.flatten(1, -1)
    }
}

/// Layers applied one after the other. Each one's output is a hook point named
/// `<path>.<index>` (the names of the variables when the layers are built on `p / index`).
#[derive(Debug)]
pub struct Sequential {
    prefix: String,
    layers: Vec<Box<dyn ModuleT>>,
}

/// An empty [`Sequential`] whose layers go under `p`.
pub fn sequential(p: &nn::Path) -> Sequential {
    Sequential {
        prefix: path_name(p),
        layers: Vec::new(),
    }
}

impl Sequential {
    /// Appends a layer.
    pub fn add<M: ModuleT + 'static>(mut self, layer: M) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a function without variables (`|x| x.relu()`).
    pub fn add_fn(self, f: impl Fn(&Tensor) -> Tensor + Send + 'static) -> Self {
        self.add(nn::func_t(move |x, _| f(x)))
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl ModuleT for Sequential {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (i, l) in self.layers.iter().enumerate() {
            x = tap(&join(&self.prefix, &i.to_string()), l.forward_t(&x, train));
        }
        x
    }
}

/// fastai v1's `simple_cnn(actns, kernel_szs, strides, bn)`: one [`conv_layer`] per pair of
/// channel counts in `actns` (3x3, stride 2 unless given; BatchNorm on all but the last when
/// `bn`; no ReLU after the last), then average pooling to 1x1 and [`Flatten`].
pub fn simple_cnn(
    p: &nn::Path,
    actns: &[i64],
    kernel_szs: Option<&[i64]>,
    strides: Option<&[i64]>,
    bn: bool,
) -> Sequential {
    let n = actns.len().saturating_sub(1);
    let mut s = sequential(p);
    for i in 0..n {
        let cfg = ConvLayerConfig {
            ks: kernel_szs.and_then(|k| k.get(i).copied()).unwrap_or(3),
            stride: strides.and_then(|k| k.get(i).copied()).unwrap_or(2),
            padding: None,
            bn: bn && i + 1 < n,
            relu: true,
        };
        s = s.add(conv_layer_with(p / i, actns[i], actns[i + 1], cfg));
    }
    s.add_fn(|x| x.adaptive_avg_pool2d([1, 1])).add(Flatten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_names_and_the_residual() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let m = sequential(&p)
            .add(conv_layer_with(
                &p / 0,
                1,
                8,
                ConvLayerConfig {
                    stride: 2,
                    ..Default::default()
                },
            ))
            .add(res_block(&p / 1, 8))
            .add(Flatten);
        let y = m.forward_t(
            &Tensor::ones([2, 1, 28, 28], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), [2, 8 * 14 * 14]);
        let vars = vs.variables();
        assert_eq!(vars["0.0.weight"].size(), [8, 1, 3, 3]);
        assert!(!vars.contains_key("0.0.bias"), "no bias before BatchNorm");
        assert_eq!(vars["1.1.2.running_mean"].size(), [8]);
        let c = simple_cnn(&(vs.root() / "s"), &[3, 16, 16, 2], None, None, true);
        let y = c.forward_t(
            &Tensor::ones([4, 3, 32, 32], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), [4, 2]);
        assert!(
            vs.variables().contains_key("s.2.0.bias"),
            "the last conv has no BatchNorm"
        );
    }
}
