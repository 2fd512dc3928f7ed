//! Stopping training from the notebook's stop button (or Ctrl-C): the fastai kernel sends SIGINT
//! to the cell's process; we turn the first one into a flag the loop checks after every batch,
//! so training ends cleanly with the weights as they are. A second SIGINT while the flag is
//! still set gets the default action (the process ends), as an escape hatch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        // Order matters: the conditional default first (acts only if the flag is already set).
        let _ =
            signal_hook::flag::register_conditional_default(signal_hook::consts::SIGINT, f.clone());
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, f.clone());
        f
    })
}

/// Installs the handler (once) and clears the flag: call when training starts.
pub fn arm() {
    flag().store(false, Ordering::SeqCst);
}

/// Whether an interrupt arrived since [`arm`].
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Clears the flag (after the loop has stopped because of it).
pub fn clear() {
    if let Some(f) = FLAG.get() {
        f.store(false, Ordering::SeqCst);
    }
}

/// Raises the flag as an interrupt would (for tests and for stopping from code).
pub fn request() {
    flag().store(true, Ordering::SeqCst);
}
