//! Metrics on predictions: `error_rate`, `accuracy`, top-k accuracy.

use tch::{Kind, Tensor};

/// A metric computed on the whole validation set (logits `(N, C)`, targets `(N,)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    ErrorRate,
    Accuracy,
    TopK(i64),
}

/// fastai's names, for `cnn_learner(&data, arch, &[error_rate])`.
#[allow(non_upper_case_globals)]
pub const error_rate: Metric = Metric::ErrorRate;
#[allow(non_upper_case_globals)]
pub const accuracy: Metric = Metric::Accuracy;

/// Top-k accuracy: the target is among the k highest scores.
pub fn top_k_accuracy(k: i64) -> Metric {
    Metric::TopK(k)
}

impl Metric {
    pub fn name(&self) -> String {
        match self {
            Metric::ErrorRate => "error_rate".into(),
            Metric::Accuracy => "accuracy".into(),
            Metric::TopK(k) => format!("top_{k}_accuracy"),
        }
    }

    pub fn compute(&self, logits: &Tensor, targets: &Tensor) -> f64 {
        if targets.numel() == 0 {
            return f64::NAN;
        }
        let acc = |k: i64| -> f64 {
            let k = k.min(logits.size()[1]);
            let (_, top) = logits.topk(k, 1, true, true);
            top.eq_tensor(&targets.unsqueeze(1))
                .any_dim(1, false)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[])
        };
        match self {
            Metric::ErrorRate => 1.0 - acc(1),
            Metric::Accuracy => acc(1),
            Metric::TopK(k) => acc(*k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_known_predictions() {
        let logits = Tensor::from_slice(&[
            0.9f32, 0.1, 0.0, 0.2, 0.7, 0.1, 0.5, 0.4, 0.1, 0.1, 0.2, 0.7,
        ])
        .view([4, 3]);
        let targets = Tensor::from_slice(&[0i64, 1, 1, 0]);
        assert!((Metric::Accuracy.compute(&logits, &targets) - 0.5).abs() < 1e-9);
        assert!((Metric::ErrorRate.compute(&logits, &targets) - 0.5).abs() < 1e-9);
        // top-2: item 2 (0.5, 0.4 -> classes 0, 1 contain 1), item 3 (0.7, 0.2 -> 2, 1: not 0)
        assert!((Metric::TopK(2).compute(&logits, &targets) - 0.75).abs() < 1e-9);
    }
}
