//! Hooks: see what a model computes inside - fastai's `hook_output(module, grad=...)`.
//!
//! PyTorch attaches hooks to module objects; tch's modules are plain structs, so here the
//! library's layers announce their outputs at *named points* instead: a layer's forward calls
//! [`tap`]`("layer4.2", x)` with the name of its variables' path. That does nothing unless a
//! model is running with its [`Taps`] active ([`Taps::during`], which [`crate::models::Model`]
//! implementations do) and a hook asked for that name.
//!
//! ```no_run
//! # use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! # let mut learn: Learner = todo!(); let x: Tensor = todo!();
//! let acts = learn.hook_output("body", true)?;      // the body's output and its gradient
//! let out = learn.model.forward_t(&x, false);
//! out.get(0).get(3).backward();                     // gradient of class 3's score
//! let (a, g) = (acts.stored().unwrap(), acts.grad().unwrap());  // Grad-CAM's ingredients
//! # Ok(()) }
//! ```
//!
//! Gradients: libtorch keeps no gradient for intermediate tensors unless asked (`retain_grad`,
//! which tch does not expose). A gradient hook therefore adds a zero tensor that requires a
//! gradient to the output (`x + 0`): the value is unchanged, and after `backward()` that zero's
//! gradient is exactly the gradient with respect to the output.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

use tch::Tensor;

thread_local! {
    /// The taps of the models whose forward pass is running on this thread (innermost last).
    static ACTIVE: RefCell<Vec<Taps>> = const { RefCell::new(Vec::new()) };
}

/// A named point of a layer's forward pass: returns the tensor to continue with (`x` itself,
/// or `x + 0` when a gradient hook listens here).
pub fn tap(name: &str, x: Tensor) -> Tensor {
    let taps = ACTIVE.with(|a| a.borrow().last().cloned());
    match taps {
        Some(t) => t.pass(name, x),
        None => x,
    }
}

/// `prefix` + `name` as a variable path: `"layer1.0"` from (`"layer1"`, `"0"`), `"conv1"` from
/// (`""`, `"conv1"`).
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The path of a `nn::Path` as a dotted string (what its variables' names start with).
pub fn path_name(p: &tch::nn::Path) -> String {
    p.components().collect::<Vec<_>>().join(".")
}

#[derive(Default)]
struct State {
    hooks: Vec<Slot>,
    next_id: u64,
    /// While recording (for `summary`): every point passed, with the output's shape.
    record: Option<Vec<(String, Vec<i64>)>>,
}

struct Slot {
    id: u64,
    name: String,
    grad: bool,
    /// Keep the output detached from the graph (user hooks), or as it is (a model's own use).
    detach: bool,
    output: Option<Tensor>,
    probe: Option<Tensor>,
    passed: usize,
}

/// The hook points of one model. Cloning shares them.
#[derive(Clone, Default)]
pub struct Taps(Arc<Mutex<State>>);

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Taps({} hooks)", self.lock().hooks.len())
    }
}

impl Taps {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` (a forward pass) with these taps active on this thread.
    pub fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Pop;
        impl Drop for Pop {
            fn drop(&mut self) {
                ACTIVE.with(|a| {
                    a.borrow_mut().pop();
                });
            }
        }
        ACTIVE.with(|a| a.borrow_mut().push(self.clone()));
        let _pop = Pop;
        f()
    }

    /// Starts keeping the output of point `name` (and, with `grad`, its gradient after the
    /// next `backward()`). The hook stops when dropped.
    pub fn hook_output(&self, name: &str, grad: bool) -> Hook {
        self.add_hook(name, grad, true)
    }

    /// fastai's `hook_output(module, detach=False)`: keeps the output of point `name` as it is,
    /// still in the autograd graph, for a model that reads it later in the same forward pass (a
    /// U-Net's skip connections). Read it with [`Hook::take`], which lets it go.
    pub fn hook_output_attached(&self, name: &str) -> Hook {
        self.add_hook(name, false, false)
    }

    fn add_hook(&self, name: &str, grad: bool, detach: bool) -> Hook {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.hooks.push(Slot {
            id,
            name: name.to_string(),
            grad,
            detach,
            output: None,
            probe: None,
            passed: 0,
        });
        Hook {
            taps: self.clone(),
            id,
            name: name.to_string(),
        }
    }

    /// Runs `f` and lists every named point it passed, with the output's shape (for `summary`).
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<(String, Vec<i64>)>) {
        self.lock().record = Some(Vec::new());
        let out = self.during(f);
        let seen = self.lock().record.take().unwrap_or_default();
        (out, seen)
    }

    fn pass(&self, name: &str, x: Tensor) -> Tensor {
        let mut s = self.lock();
        if let Some(r) = s.record.as_mut() {
            r.push((name.to_string(), x.size()));
        }
        let mut x = x;
        for slot in s.hooks.iter_mut().filter(|h| h.name == name) {
            slot.passed += 1;
            // (also when the model's weights are all frozen, so x needs no gradient yet: the
            // probe is what makes the output's gradient reach this point)
            if slot.grad {
                let probe = x.zeros_like().set_requires_grad(true);
                x = &x + &probe;
                slot.probe = Some(probe);
            } else {
                slot.probe = None;
            }
            slot.output = Some(if slot.detach {
                x.detach()
            } else {
                x.shallow_clone()
            });
        }
        x
    }
}

/// What a hook caught at its point during the last forward pass.
pub struct Hook {
    taps: Taps,
    id: u64,
    name: String,
}

impl Hook {
    /// The name of the point.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn with<T>(&self, f: impl FnOnce(&Slot) -> T) -> Option<T> {
        let s = self.taps.lock();
        s.hooks.iter().find(|h| h.id == self.id).map(f)
    }

    /// The output at the point in the last forward pass (detached), if one passed it.
    pub fn stored(&self) -> Option<Tensor> {
        self.with(|s| s.output.as_ref().map(|t| t.shallow_clone()))
            .flatten()
    }

    /// Takes the output caught in the last forward pass out of the hook (`None` if nothing passed
    /// since the last take).
    pub fn take(&self) -> Option<Tensor> {
        let mut s = self.taps.lock();
        s.hooks
            .iter_mut()
            .find(|h| h.id == self.id)
            .and_then(|h| h.output.take())
    }

    /// The gradient of what `backward()` was called on with respect to that output (a gradient
    /// hook, after a forward pass with gradients and a `backward()`).
    pub fn grad(&self) -> Option<Tensor> {
        self.with(|s| s.probe.as_ref().map(|p| p.grad()).filter(|g| g.defined()))
            .flatten()
    }

    /// How many forward passes went through the point since the hook started (0 means the name
    /// is not a point of this model: see `learn.summary()` for the names).
    pub fn passes(&self) -> usize {
        self.with(|s| s.passed).unwrap_or(0)
    }

    /// Stops the hook (as dropping it does).
    pub fn remove(self) {}
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.taps.lock().hooks.retain(|h| h.id != self.id);
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hook({:?}, {} passes, stored: {:?})",
            self.name,
            self.passes(),
            self.stored().map(|t| t.size())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn a_hook_keeps_the_output_and_its_gradient() {
        let taps = Taps::default();
        let h = taps.hook_output("mid", true);
        let w = Tensor::from_slice(&[2.0f32, 3.0]).set_requires_grad(true);
        let out = taps.during(|| {
            let mid = tap("mid", &w * 4.0); // [8, 12]
            (&mid * &mid).sum(Kind::Float) // d/dmid = 2 * mid
        });
        out.backward();
        assert_eq!(
            Vec::<f32>::try_from(h.stored().unwrap()).unwrap(),
            [8.0, 12.0]
        );
        assert_eq!(
            Vec::<f32>::try_from(h.grad().unwrap()).unwrap(),
            [16.0, 24.0]
        );
        // the gradient reaching the weights is unchanged by the probe: 2 * mid * 4
        assert_eq!(Vec::<f32>::try_from(w.grad()).unwrap(), [64.0, 96.0]);
        assert_eq!(h.passes(), 1);
        // outside `during` nothing is caught; a dropped hook is gone
        let _ = tap("mid", Tensor::zeros([1], (Kind::Float, Device::Cpu)));
        assert_eq!(h.passes(), 1);
        drop(h);
        assert_eq!(taps.lock().hooks.len(), 0);
    }

    #[test]
    fn an_attached_hook_keeps_the_graph_and_is_taken_once() {
        let taps = Taps::default();
        let h = taps.hook_output_attached("mid");
        let w = Tensor::from_slice(&[2.0f32, 3.0]).set_requires_grad(true);
        let out = taps.during(|| {
            let _ = tap("mid", &w * 4.0);
            // the model reads the point back and goes on from it (a skip connection)
            let mid = h.take().unwrap();
            (&mid * &mid).sum(Kind::Float)
        });
        out.backward();
        // d/dw (4w)^2 = 32 w: the gradient went through the kept output
        assert_eq!(Vec::<f32>::try_from(w.grad()).unwrap(), [64.0, 96.0]);
        assert!(h.take().is_none(), "taken once");
        assert_eq!(h.passes(), 1);
    }
}
