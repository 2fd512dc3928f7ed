//! `learn.summary()`: the model's layers with their output shapes and parameter counts, as
//! fastai's `model_summary` prints them.
//!
//! One batch (two items of the validation set) goes through the model in eval mode while the
//! model's hook points record their outputs ([`crate::models::hooks`]). Each point is a row
//! (the innermost ones: a block's row is replaced by the rows of its layers), with the
//! parameters whose names start with the point's name. Parameters no point accounts for (layers
//! that declare no hook point, e.g. plain `nn::linear` fields of a model of your own) are listed
//! by their module, without an output shape.

use std::collections::BTreeMap;
use std::fmt;

use super::Learner;
use crate::bail;
use crate::data::Data;
use crate::error::{Error, Result};

/// One row of a [`Summary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// The hook point's (or module's) name: its variables' path.
    pub name: String,
    /// The output's shape without the batch dimension; `None` when not seen.
    pub shape: Option<Vec<i64>>,
    pub params: i64,
    /// Whether its parameters train now (`None`: it has none; `Some(false)` if any is frozen).
    pub trainable: Option<bool>,
}

/// What `learn.summary()` returns; prints as a table.
#[derive(Debug, Clone)]
pub struct Summary {
    pub model: String,
    pub input: Vec<i64>,
    pub rows: Vec<SummaryRow>,
    pub total: i64,
    pub trainable: i64,
}

impl<D: Data + 'static> Learner<D> {
    /// fastai's `learn.summary()`.
    pub fn summary(&mut self) -> Result<Summary> {
        let Some(batch) = self
            .data
            .valid_batches()
            .next()
            .or_else(|| self.data.train_batches().next())
        else {
            bail!("summary needs one batch of data, and the data has none");
        };
        let n = batch.x.size().first().copied().unwrap_or(0).min(2);
        let x = batch.x.narrow(0, 0, n);
        let model = &self.model;
        let run = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tch::no_grad(|| model.forward_t(&x, false))
            }))
        };
        let (out, seen) = match model.taps() {
            Some(taps) => taps.record(run),
            None => (run(), Vec::new()),
        };
        let out = out.map_err(|_| {
            Error::Msg(format!(
                "the model failed on a batch of shape {:?} (see the message above)",
                x.size()
            ))
        })?;
        let mut summary = build(&self.model.name(), &self.params, x.size(), seen);
        summary.rows.push(SummaryRow {
            name: "(output)".into(),
            shape: Some(out.size()[1..].to_vec()),
            params: 0,
            trainable: None,
        });
        Ok(summary)
    }
}

fn build(
    model: &str,
    params: &[crate::models::model::Param],
    input: Vec<i64>,
    seen: Vec<(String, Vec<i64>)>,
) -> Summary {
    // points in order of execution, once each (a layer's own point and its container's may
    // coincide); only the innermost: drop a point whose name prefixes another's
    let mut points: Vec<(String, Vec<i64>)> = Vec::new();
    for (name, shape) in seen {
        if !points.iter().any(|(n, _)| *n == name) {
            points.push((name, shape[1..].to_vec()));
        }
    }
    let names: Vec<String> = points.iter().map(|(n, _)| n.clone()).collect();
    points.retain(|(n, _)| {
        !names.iter().any(|m| {
            m.len() > n.len() && m.starts_with(n.as_str()) && m.as_bytes()[n.len()] == b'.'
        })
    });
    // each parameter goes to the longest point name that prefixes it
    let mut per_point: BTreeMap<String, (i64, bool, bool)> = BTreeMap::new();
    let mut unseen: BTreeMap<String, (i64, bool, bool)> = BTreeMap::new();
    let (mut total, mut trainable) = (0i64, 0i64);
    for p in params {
        let n = p.tensor.numel() as i64;
        let tr = p.tensor.requires_grad();
        total += n;
        trainable += if tr { n } else { 0 };
        let owner = points
            .iter()
            .map(|(name, _)| name)
            .filter(|name| p.name.starts_with(&format!("{name}.")))
            .max_by_key(|name| name.len());
        let (map, key) = match owner {
            Some(o) => (&mut per_point, o.clone()),
            None => (
                &mut unseen,
                p.name
                    .rsplit_once('.')
                    .map_or(p.name.clone(), |(m, _)| m.to_string()),
            ),
        };
        let e = map.entry(key).or_insert((0, true, false));
        e.0 += n;
        e.1 &= tr;
        e.2 = true;
    }
    let row = |name: String, shape: Option<Vec<i64>>, e: Option<&(i64, bool, bool)>| SummaryRow {
        name,
        shape,
        params: e.map_or(0, |e| e.0),
        trainable: e.and_then(|e| e.2.then_some(e.1)),
    };
    let mut rows: Vec<SummaryRow> = points
        .iter()
        .map(|(name, shape)| row(name.clone(), Some(shape.clone()), per_point.get(name)))
        .collect();
    rows.extend(
        unseen
            .iter()
            .map(|(name, e)| row(name.clone(), None, Some(e))),
    );
    Summary {
        model: model.to_string(),
        input: input[1..].to_vec(),
        rows,
        total,
        trainable,
    }
}

/// `1234567` -> `1,234,567`.
fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = "=".repeat(72);
        writeln!(f, "{} (input {:?})", self.model, self.input)?;
        writeln!(f, "{line}")?;
        writeln!(
            f,
            "{:<26} {:<22} {:>12}  {}",
            "Layer", "Output Shape", "Param #", "Trainable"
        )?;
        writeln!(f, "{line}")?;
        for r in &self.rows {
            let shape = r.shape.as_ref().map_or("?".into(), |s| format!("{s:?}"));
            let tr = match r.trainable {
                Some(true) => "True",
                Some(false) => "False",
                None => "",
            };
            writeln!(
                f,
                "{:<26} {:<22} {:>12}  {tr}",
                r.name,
                shape,
                thousands(r.params)
            )?;
        }
        writeln!(f, "{line}")?;
        writeln!(f, "Total params: {}", thousands(self.total))?;
        writeln!(f, "Total trainable params: {}", thousands(self.trainable))?;
        write!(
            f,
            "Total non-trainable params: {}",
            thousands(self.total - self.trainable)
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(21_284_672), "21,284,672");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
    }
}
