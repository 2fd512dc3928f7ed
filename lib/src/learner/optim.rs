//! Learning rates per parameter group: a single rate, or fastai's `slice`.
//!
//! `slice(a, b)` spreads rates geometrically from `a` (first group) to `b` (last group);
//! `slice(b)` (`Lr::Stop`) gives the last group `b` and the others `b / 10`.

/// A learning rate, or a range over the parameter groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lr {
    /// The same rate for every group.
    Single(f64),
    /// `slice(stop)`: `stop` for the last group (the head), `stop / 10` for the others.
    Stop(f64),
    /// `slice(start, stop)`: geometric from `start` to `stop`.
    Range(f64, f64),
}

/// fastai's `slice(start, stop)`.
pub fn slice(start: f64, stop: f64) -> Lr {
    Lr::Range(start, stop)
}

/// fastai's `slice(stop)`.
pub fn slice_stop(stop: f64) -> Lr {
    Lr::Stop(stop)
}

impl From<f64> for Lr {
    fn from(v: f64) -> Lr {
        Lr::Single(v)
    }
}

impl Lr {
    /// One rate per group, for `n` groups.
    pub fn per_group(self, n: usize) -> Vec<f64> {
        match self {
            Lr::Single(v) => vec![v; n],
            Lr::Stop(stop) => (0..n)
                .map(|i| if i + 1 == n { stop } else { stop / 10.0 })
                .collect(),
            Lr::Range(a, b) if n > 1 => {
                let step = (b / a).powf(1.0 / (n - 1) as f64);
                (0..n).map(|i| a * step.powi(i as i32)).collect()
            }
            Lr::Range(_, b) => vec![b],
        }
    }

    /// The largest rate (for display).
    pub fn max(self) -> f64 {
        match self {
            Lr::Single(v) | Lr::Stop(v) => v,
            Lr::Range(a, b) => a.max(b),
        }
    }
}

impl std::fmt::Display for Lr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lr::Single(v) => write!(f, "{v:.0e}"),
            Lr::Stop(v) => write!(f, "slice({v:.0e})"),
            Lr::Range(a, b) => write!(f, "slice({a:.0e}, {b:.0e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_geometric() {
        let v = slice(1e-6, 1e-4).per_group(3);
        assert!(
            (v[0] - 1e-6).abs() < 1e-18
                && (v[1] - 1e-5).abs() < 1e-15
                && (v[2] - 1e-4).abs() < 1e-15
        );
        let v = slice_stop(3e-3).per_group(3);
        assert!(
            (v[0] - 3e-4).abs() < 1e-15 && (v[1] - 3e-4).abs() < 1e-15 && v[2] == 3e-3,
            "{v:?}"
        );
        assert_eq!(Lr::from(0.01).per_group(2), vec![0.01, 0.01]);
    }
}
