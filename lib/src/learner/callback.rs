//! The training loop's extension points. The loop itself only runs batches; schedules,
//! recording, progress display and interruption are callbacks that read and change [`FitState`].

/// What the loop knows, shared with every callback.
#[derive(Debug, Clone, Default)]
pub struct FitState {
    pub epoch: usize,
    pub n_epochs: usize,
    /// Iteration in this fit (all epochs), and the total planned.
    pub iter: usize,
    pub n_iter: usize,
    /// Batch within the epoch, and batches per epoch.
    pub batch: usize,
    pub n_batches: usize,
    /// Learning rate per parameter group and momentum for the next step (a schedule sets them).
    pub lrs: Vec<f64>,
    pub mom: f64,
    /// Loss of the last batch, and its debiased moving average (beta 0.98), as fastai shows.
    pub loss: f64,
    pub smooth_loss: f64,
    /// Filled after each epoch's validation.
    pub valid_loss: Option<f64>,
    pub metrics: Vec<(String, f64)>,
    /// Set by a callback to stop training after the current batch.
    pub stop: bool,
    /// Why training stopped early, if it did.
    pub stop_reason: Option<String>,
}

/// Hooks around the loop; every method has an empty default.
pub trait Callback {
    fn before_fit(&mut self, _s: &mut FitState) {}
    fn before_epoch(&mut self, _s: &mut FitState) {}
    /// Before the forward pass: the place to set `s.lrs` / `s.mom`.
    fn before_batch(&mut self, _s: &mut FitState) {}
    /// After the optimizer step, with `s.loss` and `s.smooth_loss` set.
    fn after_batch(&mut self, _s: &mut FitState) {}
    /// After validation, with `s.valid_loss` and `s.metrics` set.
    fn after_epoch(&mut self, _s: &mut FitState) {}
    fn after_fit(&mut self, _s: &mut FitState) {}
}

/// The debiased exponential moving average fastai uses for the displayed loss.
#[derive(Debug, Clone, Default)]
pub struct SmoothLoss {
    avg: f64,
    n: i32,
}

impl SmoothLoss {
    pub const BETA: f64 = 0.98;
    pub fn add(&mut self, v: f64) -> f64 {
        self.n += 1;
        self.avg = Self::BETA * self.avg + (1.0 - Self::BETA) * v;
        self.avg / (1.0 - Self::BETA.powi(self.n))
    }
}
