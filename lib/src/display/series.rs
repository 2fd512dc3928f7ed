//! What can be plotted: [`IntoSeries`] turns slices, arrays, `Vec`s and 1-d tensors into the
//! `f64` values a chart draws, and says clearly why when it cannot (a 2-d tensor, an empty series).
//!
//! Conversion happens once, when a series is added to a [`Plot`](super::plot::Plot); the chart
//! keeps its own copy, so a tensor can change afterwards (as it does in an SGD loop) without
//! changing a chart already made.

use tch::{Device, Kind, Tensor};

/// Values to plot: `&[T]`, `&Vec<T>`, `Vec<T>` and arrays of numbers (`f64`, `f32` and the
/// integer types: [`Number`]), or a 1-d [`Tensor`] (any device, any numeric kind; gradients
/// are ignored).
///
/// NaN and infinite values are allowed (a line breaks there, a scatter skips them).
pub trait IntoSeries {
    /// The values as `f64`, or what is wrong with them (said without the series' name: the
    /// caller adds "x" or "y").
    fn into_series(self) -> Result<Vec<f64>, String>;
}

/// A number that can be plotted (converted to `f64`; integers beyond 2^53 lose precision).
pub trait Number: Copy {
    fn to_f64(self) -> f64;
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

numbers!(f64, f32, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl<T: Number> IntoSeries for &[T] {
    fn into_series(self) -> Result<Vec<f64>, String> {
        Ok(self.iter().map(|v| v.to_f64()).collect())
    }
}

impl<T: Number> IntoSeries for &Vec<T> {
    fn into_series(self) -> Result<Vec<f64>, String> {
        self.as_slice().into_series()
    }
}

impl<T: Number> IntoSeries for Vec<T> {
    fn into_series(self) -> Result<Vec<f64>, String> {
        self.as_slice().into_series()
    }
}

impl<T: Number, const N: usize> IntoSeries for &[T; N] {
    fn into_series(self) -> Result<Vec<f64>, String> {
        self.as_slice().into_series()
    }
}

impl<T: Number, const N: usize> IntoSeries for [T; N] {
    fn into_series(self) -> Result<Vec<f64>, String> {
        self.as_slice().into_series()
    }
}

impl IntoSeries for &Tensor {
    fn into_series(self) -> Result<Vec<f64>, String> {
        if !self.defined() {
            return Err("is an undefined tensor (Tensor::new())".into());
        }
        let shape = self.size();
        if shape.len() != 1 {
            let hint = match shape.as_slice() {
                [] => "a scalar has nothing to plot; collect the values into a Vec or a 1-d tensor"
                    .to_string(),
                [n, 1] => format!("for a column use t.squeeze() or t.select(1, 0) (shape [{n}])"),
                [_, c, ..] => format!(
                    "plot one column at a time, e.g. t.select(1, 0) .. t.select(1, {})",
                    c - 1
                ),
                _ => unreachable!("the 1-d case is handled above"),
            };
            return Err(format!(
                "is a {}-d tensor of shape {shape:?}; a series must be 1-d: {hint}",
                shape.len()
            ));
        }
        let t = self
            .detach()
            .f_to_device(Device::Cpu)
            .and_then(|t| t.f_to_kind(Kind::Double))
            .map_err(|e| format!("could not be read as numbers: {e}"))?;
        Vec::<f64>::try_from(&t).map_err(|e| format!("could not be read as numbers: {e}"))
    }
}

impl IntoSeries for Tensor {
    fn into_series(self) -> Result<Vec<f64>, String> {
        (&self).into_series()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_vecs_arrays_and_tensors_convert() {
        let v32 = vec![1.0f32, 2.5];
        assert_eq!((&v32).into_series().unwrap(), vec![1.0, 2.5]);
        assert_eq!(v32[..].into_series().unwrap(), vec![1.0, 2.5]);
        assert_eq!([1u8, 2, 3].into_series().unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(vec![-1i32].into_series().unwrap(), vec![-1.0]);
        let epochs: Vec<usize> = vec![1, 2];
        assert_eq!((&epochs).into_series().unwrap(), vec![1.0, 2.0]);
        let t = Tensor::from_slice(&[0.5f32, 1.5]).set_requires_grad(true);
        assert_eq!((&t).into_series().unwrap(), vec![0.5, 1.5]);
        let ints = Tensor::arange(3, (Kind::Int64, Device::Cpu));
        assert_eq!(ints.into_series().unwrap(), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn tensors_that_are_not_1d_are_refused_with_a_hint() {
        let col = Tensor::zeros([5, 1], (Kind::Float, Device::Cpu));
        let e = (&col).into_series().unwrap_err();
        assert!(
            e.contains("2-d tensor of shape [5, 1]") && e.contains("squeeze"),
            "{e}"
        );
        let m = Tensor::zeros([5, 3], (Kind::Float, Device::Cpu));
        let e = m.into_series().unwrap_err();
        assert!(e.contains("t.select(1, 2)"), "{e}");
        let e = Tensor::from(1.0f64).into_series().unwrap_err();
        assert!(e.contains("0-d") && e.contains("scalar"), "{e}");
        let e = Tensor::new().into_series().unwrap_err();
        assert!(e.contains("undefined"), "{e}");
    }
}
