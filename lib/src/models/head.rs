//! fastai's classifier head: concat pooling, then two BatchNorm/Dropout/Linear blocks.
//!
//! `(N, nf, h, w)` -> AdaptiveConcatPool2d (max and average, `(N, 2nf)`) -> BatchNorm1d ->
//! Dropout(0.25) -> Linear(2nf, 512) -> ReLU -> BatchNorm1d -> Dropout(0.5) -> Linear(512, c).
//! Linear weights are Kaiming-normal initialised, biases zero.

use tch::nn::{self, init, ModuleT};
use tch::Tensor;

#[derive(Debug)]
pub struct Head {
    bn1: nn::BatchNorm,
    fc1: nn::Linear,
    bn2: nn::BatchNorm,
    fc2: nn::Linear,
    /// Dropout before the first and the last linear layer.
    pub ps: (f64, f64),
}

impl Head {
    /// A head for a body with `nf` feature channels and `n_classes` outputs.
    pub fn new(p: &nn::Path, nf: i64, n_classes: i64) -> Head {
        let lin = nn::LinearConfig {
            ws_init: init::Init::Kaiming {
                dist: init::NormalOrUniform::Normal,
                fan: init::FanInOut::FanIn,
                non_linearity: init::NonLinearity::ReLU,
            },
            bs_init: Some(init::Init::Const(0.0)),
            bias: true,
        };
        Head {
            bn1: nn::batch_norm1d(p / "bn1", 2 * nf, Default::default()),
            fc1: nn::linear(p / "fc1", 2 * nf, 512, lin),
            bn2: nn::batch_norm1d(p / "bn2", 512, Default::default()),
            fc2: nn::linear(p / "fc2", 512, n_classes, lin),
            ps: (0.25, 0.5),
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
        concat_pool(x)
            .apply_t(&self.bn1, train)
            .dropout(self.ps.0, train)
            .apply(&self.fc1)
            .relu()
            .apply_t(&self.bn2, train)
            .dropout(self.ps.1, train)
            .apply(&self.fc2)
    }
}
