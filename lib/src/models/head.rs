//! fastai's classifier head: concat pooling, then two BatchNorm/Dropout/Linear blocks.
//!
//! `(N, nf, h, w)` -> AdaptiveConcatPool2d (max and average, `(N, 2nf)`) -> BatchNorm1d ->
//! Dropout(0.25) -> Linear(2nf, 512) -> ReLU -> BatchNorm1d -> Dropout(0.5) -> Linear(512, c)
//! by default; `lin_ftrs`, `ps` and `y_range` change it as in fastai's `create_head`.
//! Linear weights are Kaiming-normal initialised, biases zero (fastai's `init=nn.init.kaiming_normal_`),
//! or left at PyTorch's own `nn.Linear` initialisation ([`HeadInit::Default`], fastai's `init=None`).

use tch::nn::{self, init, ModuleT};
use tch::Tensor;

/// fastai's `create_head`: concat pooling, then for each layer BatchNorm1d, Dropout, Linear
/// (ReLU between layers), and optionally `sigmoid_range` on the output.
#[derive(Debug)]
pub struct Head {
    layers: Vec<(nn::BatchNorm, nn::Linear)>,
    /// Dropout before each linear layer.
    pub ps: Vec<f64>,
    /// The outputs squashed into `(lo, hi)` by a scaled sigmoid (regression targets).
    pub y_range: Option<(f64, f64)>,
    /// A BatchNorm on the outputs (fastai's `bn_final`).
    bn_final: Option<nn::BatchNorm>,
}

/// How the head's linear layers start (`cnn_learner`'s `init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadInit {
    /// Weights Kaiming-normal (fan in, ReLU gain), biases zero: fastai's default
    /// (`init=nn.init.kaiming_normal_`, v1 and 2).
    #[default]
    KaimingNormal,
    /// PyTorch's own `nn.Linear` initialisation, weights and biases uniform in
    /// `(-1/sqrt(fan_in), 1/sqrt(fan_in))`: what fastai gives with `init=None`.
    Default,
}

/// The shape of a head: hidden sizes and dropout, as `cnn_learner`'s `lin_ftrs` and `ps`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadConfig {
    /// Hidden layer sizes (fastai's default: one layer of 512).
    pub lin_ftrs: Vec<i64>,
    /// Dropout of the last layer; the ones before get half of it (fastai's rule).
    pub ps: f64,
    pub y_range: Option<(f64, f64)>,
    /// End with a BatchNorm of the outputs (momentum 0.01), as fastai's `bn_final=True`.
    pub bn_final: bool,
    /// How the linear layers start.
    pub init: HeadInit,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            lin_ftrs: vec![512],
            ps: 0.5,
            y_range: None,
            bn_final: false,
            init: HeadInit::KaimingNormal,
        }
    }
}

impl Head {
    /// fastai's default head for a body with `nf` feature channels and `n_classes` outputs.
    pub fn new(p: &nn::Path, nf: i64, n_classes: i64) -> Head {
        Head::with_config(p, nf, n_classes, &HeadConfig::default())
    }

    /// A head of the given shape. Variables are `bn1, fc1, bn2, fc2, ...` under `p`.
    pub fn with_config(p: &nn::Path, nf: i64, n_classes: i64, cfg: &HeadConfig) -> Head {
        let lin = |fan_in: i64| match cfg.init {
            HeadInit::KaimingNormal => nn::LinearConfig {
                ws_init: init::Init::Kaiming {
                    dist: init::NormalOrUniform::Normal,
                    fan: init::FanInOut::FanIn,
                    non_linearity: init::NonLinearity::ReLU,
                },
                bs_init: Some(init::Init::Const(0.0)),
                bias: true,
            },
            HeadInit::Default => {
                let bound = 1.0 / (fan_in as f64).sqrt();
                let uniform = init::Init::Uniform {
                    lo: -bound,
                    up: bound,
                };
                nn::LinearConfig {
                    ws_init: uniform,
                    bs_init: Some(uniform),
                    bias: true,
                }
            }
        };
        let sizes: Vec<i64> = std::iter::once(2 * nf)
            .chain(cfg.lin_ftrs.iter().copied())
            .chain(std::iter::once(n_classes))
            .collect();
        let layers: Vec<(nn::BatchNorm, nn::Linear)> = sizes
            .windows(2)
            .enumerate()
            .map(|(k, io)| {
                (
                    nn::batch_norm1d(p / format!("bn{}", k + 1), io[0], Default::default()),
                    nn::linear(p / format!("fc{}", k + 1), io[0], io[1], lin(io[0])),
                )
            })
            .collect();
        let mut ps = vec![cfg.ps / 2.0; layers.len() - 1];
        ps.push(cfg.ps);
        let bn_final = cfg.bn_final.then(|| {
            nn::batch_norm1d(
                p / "bn_final",
                n_classes,
                nn::BatchNormConfig {
                    momentum: 0.01,
                    ..Default::default()
                },
            )
        });
        Head {
            layers,
            ps,
            y_range: cfg.y_range,
            bn_final,
        }
    }
}

/// Max and average pooling to 1x1, concatenated on channels (max first, as fastai).
pub fn concat_pool(x: &Tensor) -> Tensor {
    let max = x.adaptive_max_pool2d([1, 1]).0;
    let avg = x.adaptive_avg_pool2d([1, 1]);
    Tensor::cat(&[max, avg], 1).flatten(1, -1)
}

impl ModuleT for Head {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = concat_pool(x);
        let last = self.layers.len() - 1;
        for (k, ((bn, fc), &p)) in self.layers.iter().zip(&self.ps).enumerate() {
            x = x.apply_t(bn, train).dropout(p, train).apply(fc);
            if k < last {
                x = x.relu();
            }
        }
        if let Some(bn) = &self.bn_final {
            x = x.apply_t(bn, train);
        }
        match self.y_range {
            Some(r) => sigmoid_range(&x, r),
            None => x,
        }
    }
}

/// fastai's `sigmoid_range`: a sigmoid scaled to `(lo, hi)`.
pub fn sigmoid_range(x: &Tensor, (lo, hi): (f64, f64)) -> Tensor {
    x.sigmoid() * (hi - lo) + lo
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first linear layer's weight and bias of a head over 64 channels (fan in 128).
    fn fc1(init: HeadInit) -> (Tensor, Tensor) {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let cfg = HeadConfig {
            init,
            ..Default::default()
        };
        let _head = Head::with_config(&vs.root(), 64, 10, &cfg);
        let vars = vs.variables();
        (
            vars["fc1.weight"].shallow_clone(),
            vars["fc1.bias"].shallow_clone(),
        )
    }

    #[test]
    fn kaiming_init_has_relu_gain_and_zero_biases() {
        let (w, b) = fc1(HeadInit::KaimingNormal);
        let std = w.std(true).double_value(&[]);
        let want = (2.0f64 / 128.0).sqrt();
        assert!((std - want).abs() < 0.05 * want, "std {std} vs {want}");
        assert_eq!(b.abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn default_init_is_pytorchs_uniform_for_weights_and_biases() {
        let (w, b) = fc1(HeadInit::Default);
        let bound = 1.0 / 128f64.sqrt();
        for t in [&w, &b] {
            let max = t.abs().max().double_value(&[]);
            assert!(max <= bound + 1e-7, "{max} beyond {bound}");
        }
        // uniform on (-bound, bound): std bound / sqrt(3), biases not zero
        let std = w.std(true).double_value(&[]);
        assert!(
            (std - bound / 3f64.sqrt()).abs() < 0.05 * bound,
            "std {std}"
        );
        let mean_abs = b.abs().mean(tch::Kind::Float).double_value(&[]);
        assert!(
            mean_abs > 0.3 * bound,
            "biases near zero: mean |b| {mean_abs}"
        );
    }
}
