//! Loss functions as values, as fastai's `loss_func`: [`cross_entropy_flat`] (classes, also per
//! pixel), [`bce_with_logits_flat`] (multi-label), [`mse_loss_flat`] (regression), or any closure
//! `Fn(&Tensor, &Tensor) -> Tensor` (predictions, targets -> a scalar).
//!
//! "Flat" as in fastai: the class axis (1) is moved last and everything else flattened, so the
//! same loss serves `(N, C)` logits with `(N,)` targets and `(N, C, H, W)` with `(N, H, W)`.

use std::sync::Arc;

use tch::{Kind, Reduction, Tensor};

/// What turns the model's raw outputs into predictions (`get_preds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Probabilities over the class axis (1).
    Softmax,
    /// Independent probabilities (multi-label).
    Sigmoid,
    /// The outputs as they are (regression).
    Identity,
}

impl Activation {
    pub fn apply(self, out: &Tensor) -> Tensor {
        match self {
            Activation::Softmax => out.softmax(1, Kind::Float),
            Activation::Sigmoid => out.sigmoid(),
            Activation::Identity => out.shallow_clone(),
        }
    }
}

type LossFn = dyn Fn(&Tensor, &Tensor) -> Tensor + Send + Sync;

/// A loss function with its name and the activation that goes with it.
#[derive(Clone)]
pub struct Loss {
    name: String,
    f: Arc<LossFn>,
    pub activation: Activation,
}

impl Loss {
    /// A loss of your own: `f(predictions, targets)` returns a scalar tensor (mean over the batch,
    /// so that a batch's loss does not depend on its size). Its predictions are shown as they are
    /// (`with_activation` changes that).
    pub fn new(
        name: impl Into<String>,
        f: impl Fn(&Tensor, &Tensor) -> Tensor + Send + Sync + 'static,
    ) -> Loss {
        Loss {
            name: name.into(),
            f: Arc::new(f),
            activation: Activation::Identity,
        }
    }

    /// Sets what `get_preds` applies to the outputs.
    pub fn with_activation(mut self, a: Activation) -> Loss {
        self.activation = a;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The loss of `pred` against `target`.
    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Tensor {
        (self.f)(pred, target)
    }
}

impl std::fmt::Debug for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl<F> From<F> for Loss
where
    F: Fn(&Tensor, &Tensor) -> Tensor + Send + Sync + 'static,
{
    fn from(f: F) -> Loss {
        Loss::new("custom loss", f)
    }
}

/// `(N, C, ...)` -> `(N * ..., C)`: the class axis last, the rest flattened.
fn classes_last(pred: &Tensor) -> Tensor {
    if pred.dim() <= 2 {
        return pred.shallow_clone();
    }
    let c = pred.size()[1];
    pred.movedim(&[1i64][..], &[-1i64][..]).reshape([-1, c])
}

/// fastai's `CrossEntropyFlat()`: cross-entropy of logits `(N, C, ...)` against class indices
/// `(N, ...)` (Int64), mean over every position.
pub fn cross_entropy_flat() -> Loss {
    Loss::new("CrossEntropyFlat", |pred, targ| {
        classes_last(pred).cross_entropy_loss::<Tensor>(
            &targ.reshape([-1]).to_kind(Kind::Int64),
            None,
            Reduction::Mean,
            -100,
            0.0,
        )
    })
    .with_activation(Activation::Softmax)
}

/// fastai's `BCEWithLogitsFlat()`: binary cross-entropy of logits against 0/1 targets of the
/// same number of elements (multi-hot labels), mean over every element.
pub fn bce_with_logits_flat() -> Loss {
    Loss::new("BCEWithLogitsFlat", |pred, targ| {
        pred.reshape([-1])
            .binary_cross_entropy_with_logits::<Tensor>(
                &targ.reshape([-1]).to_kind(pred.kind()),
                None,
                None,
                Reduction::Mean,
            )
    })
    .with_activation(Activation::Sigmoid)
}

/// fastai's `MSELossFlat()`: mean squared error between predictions and targets of the same
/// number of elements.
pub fn mse_loss_flat() -> Loss {
    Loss::new("MSELossFlat", |pred, targ| {
        pred.reshape([-1])
            .mse_loss(&targ.reshape([-1]).to_kind(pred.kind()), Reduction::Mean)
    })
}

/// The loss fastai picks for a kind of targets: cross-entropy for classes and masks, BCE with
/// logits for multi-labels, MSE for points and numbers.
pub fn default_loss(y: &crate::data::Labels) -> Loss {
    use crate::data::Labels;
    match y {
        Labels::Category(_) | Labels::Mask(_) => cross_entropy_flat(),
        Labels::MultiCategory(_) => bce_with_logits_flat(),
        Labels::Points(_) | Labels::Float(_) => mse_loss_flat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn close(a: &Tensor, b: &Tensor) -> bool {
        (a - b).abs().max().double_value(&[]) < 1e-6
    }

    #[test]
    fn losses_equal_libtorch_on_fixed_tensors() {
        let logits = Tensor::from_slice(&[2.0f32, 0.5, -1.0, 0.1, 0.2, 3.0]).view([2, 3]);
        let y = Tensor::from_slice(&[0i64, 2]);
        // by hand: -log softmax at the target, averaged
        let ls = logits.log_softmax(1, Kind::Float);
        let by_hand = -(ls.double_value(&[0, 0]) + ls.double_value(&[1, 2])) / 2.0;
        let ce = cross_entropy_flat().compute(&logits, &y);
        assert!((ce.double_value(&[]) - by_hand).abs() < 1e-6);
        assert!(close(&ce, &logits.cross_entropy_for_logits(&y)));

        // per pixel: (N, C, H, W) against (N, H, W) = the flat (N*H*W, C) loss
        let seg = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let masks = Tensor::randint(3, [2, 4, 5], (Kind::Int64, Device::Cpu));
        let reference = seg.cross_entropy_loss::<Tensor>(&masks, None, Reduction::Mean, -100, 0.0);
        assert!(close(
            &cross_entropy_flat().compute(&seg, &masks),
            &reference
        ));

        let t = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0]).view([2, 3]);
        let reference =
            logits.binary_cross_entropy_with_logits::<Tensor>(&t, None, None, Reduction::Mean);
        assert!(close(
            &bce_with_logits_flat().compute(&logits, &t),
            &reference
        ));
        let by_hand = {
            let p = logits.sigmoid();
            let q: Tensor = 1.0 - &p;
            let nt: Tensor = 1.0 - &t;
            let ll: Tensor = &t * p.log() + nt * q.log();
            -ll.mean(Kind::Float)
        };
        assert!(close(
            &bce_with_logits_flat().compute(&logits, &t),
            &by_hand
        ));

        let pts = Tensor::from_slice(&[0.5f32, -0.5, 1.0, 0.0]).view([2, 2]);
        let targ = Tensor::from_slice(&[0.0f32, 0.0, 1.0, 1.0]).view([2, 2]);
        let mse = mse_loss_flat().compute(&pts, &targ).double_value(&[]);
        assert!((mse - (0.25 + 0.25 + 0.0 + 1.0) / 4.0).abs() < 1e-7);

        let l1: Loss = (|p: &Tensor, t: &Tensor| (p - t).abs().mean(Kind::Float)).into();
        assert!((l1.compute(&pts, &targ).double_value(&[]) - 2.0 / 4.0).abs() < 1e-7);
    }
}
