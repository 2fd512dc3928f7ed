//! What a `Learner` trains: [`Model`], a module together with the `VarStore` that holds its
//! weights. The layer groups used for discriminative learning rates and freezing are the ones
//! the builder set on the variables (`nn::Path::set_group`) - the store is the one source of truth.
//!
//! Your own model, as in fastai's `Learner(data, Mnist_Logistic())`:
//!
//! ```no_run
//! use fastai::vision::*;
//! #[derive(Debug)]
//! struct MnistLogistic { lin: nn::Linear }
//! impl nn::Module for MnistLogistic {
//!     fn forward(&self, xb: &Tensor) -> Tensor { xb.apply(&self.lin) }
//! }
//! # fn main() -> fastai::Result<()> {
//! # let data: DataBunch = todo!();
//! let model = Net::new(data.device(), |p| MnistLogistic { lin: nn::linear(p / "lin", 784, 10, Default::default()) });
//! let mut learn = Learner::new(data, model, cross_entropy_flat(), &[accuracy])?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use super::hooks::Taps;

/// A trainable model: forward pass plus the store of its variables.
pub trait Model: std::fmt::Debug + Send {
    /// The forward pass (`train`: dropout on, BatchNorm uses and updates batch statistics).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// The variables (weights and BatchNorm statistics), with their layer groups.
    fn var_store(&self) -> &nn::VarStore;
    fn var_store_mut(&mut self) -> &mut nn::VarStore;
    /// A short name for summaries ("resnet34", "custom").
    fn name(&self) -> String {
        "custom".into()
    }
    /// Where hooks attach: the model's named points (see [`crate::models::hooks`]). Models built
    /// from this library's layers have them; `None` for a model that declares none.
    fn taps(&self) -> Option<&Taps> {
        None
    }
}

/// Any module with its store: `Net::new(device, |p| build(p))` makes the store, builds the
/// module on its root, and keeps both. It dereferences to the module.
#[derive(Debug)]
pub struct Net<M> {
    pub vs: nn::VarStore,
    pub module: M,
    taps: Taps,
}

impl<M: ModuleT> Net<M> {
    /// A new store on `device`, and the module `build` makes on its root.
    pub fn new(device: Device, build: impl FnOnce(&nn::Path) -> M) -> Net<M> {
        let vs = nn::VarStore::new(device);
        let module = build(&vs.root());
        Net {
            vs,
            module,
            taps: Taps::default(),
        }
    }

    /// Wraps a module built on `vs`'s root.
    pub fn from_parts(vs: nn::VarStore, module: M) -> Net<M> {
        Net {
            vs,
            module,
            taps: Taps::default(),
        }
    }

    /// The trainable tensors (what `model.parameters()` gives in PyTorch).
    pub fn parameters(&self) -> Vec<Tensor> {
        self.vs.trainable_variables()
    }
}

impl<M> Deref for Net<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.module
    }
}

impl<M> DerefMut for Net<M> {
    fn deref_mut(&mut self) -> &mut M {
        &mut self.module
    }
}

impl<M: ModuleT> Model for Net<M> {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.taps.during(|| self.module.forward_t(xs, train))
    }
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }
    fn taps(&self) -> Option<&Taps> {
        Some(&self.taps)
    }
}

/// `(vs, module)` is a model too.
impl<M: ModuleT> Model for (nn::VarStore, M) {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.1.forward_t(xs, train)
    }
    fn var_store(&self) -> &nn::VarStore {
        &self.0
    }
    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.0
    }
}

/// A trainable variable with its name and layer group.
#[derive(Debug)]
pub struct Param {
    pub name: String,
    pub tensor: Tensor,
    pub group: usize,
    /// A BatchNorm weight or bias (stays trainable when its group is frozen, as fastai's train_bn).
    pub is_bn: bool,
}

/// The trainable variables of `vs` sorted by name, each with the group its builder set
/// (0 when it set none). BatchNorm parameters are recognised by their sibling `running_mean`.
pub fn params_of(vs: &nn::VarStore) -> Vec<Param> {
    let named = vs.variables();
    let by_ptr: HashMap<usize, &String> = named
        .iter()
        .filter(|(_, t)| t.numel() > 0)
        .map(|(n, t)| (t.data_ptr() as usize, n))
        .collect();
    let vars = vs.variables_.lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<Param> = vars
        .trainable_variables
        .iter()
        .filter_map(|v| {
            let name = by_ptr.get(&(v.tensor.data_ptr() as usize))?;
            let parent = name.rsplit_once('.').map_or("", |(p, _)| p);
            let sibling = if parent.is_empty() {
                "running_mean".to_string()
            } else {
                format!("{parent}.running_mean")
            };
            Some(Param {
                name: (*name).clone(),
                tensor: v.tensor.shallow_clone(),
                group: v.group,
                is_bn: named.contains_key(&sibling),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Values of every variable (weights and statistics), copied.
pub fn snapshot(vs: &nn::VarStore) -> BTreeMap<String, Tensor> {
    tch::no_grad(|| {
        vs.variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect()
    })
}

/// Puts back values taken by [`snapshot`].
pub fn restore(vs: &nn::VarStore, snap: &BTreeMap<String, Tensor>) {
    tch::no_grad(|| {
        for (name, var) in vs.variables() {
            if let Some(src) = snap.get(&name) {
                let mut v = var.shallow_clone();
                v.copy_(src);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn groups_come_from_the_store_and_batchnorm_is_recognised() {
        let net = Net::new(Device::Cpu, |p| {
            let a = nn::linear(p.set_group(0) / "a", 4, 4, Default::default());
            let bn = nn::batch_norm1d(p.set_group(1) / "bn", 4, Default::default());
            let b = nn::linear(p.set_group(2) / "b", 4, 2, Default::default());
            nn::seq_t().add(a).add(bn).add(b)
        });
        let ps = params_of(&net.vs);
        let got: Vec<(&str, usize, bool)> = ps
            .iter()
            .map(|p| (p.name.as_str(), p.group, p.is_bn))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.bias", 0, false),
                ("a.weight", 0, false),
                ("b.bias", 2, false),
                ("b.weight", 2, false),
                ("bn.bias", 1, true),
                ("bn.weight", 1, true),
            ]
        );
        let y = net.forward_t(&Tensor::ones([3, 4], (Kind::Float, Device::Cpu)), false);
        assert_eq!(y.size(), [3, 2]);
    }
}
