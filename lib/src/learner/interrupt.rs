//! Stopping training from the notebook's stop button (or Ctrl-C): the fastai kernel sends SIGINT
//! to the cell's process; we turn the first one into a flag the loop checks after every batch,
//! so training ends cleanly with the weights as they are. A second SIGINT while the flag is
//! still set gets the default action (the process ends), as an escape hatch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Where the flag's address is published: `<pid>:<address>`.
const ENV: &str = "FASTAI_SIGINT_FLAG";

/// The process's one flag (one for all notebook cells: see [`crate::process_global`]).
fn flag() -> &'static AtomicBool {
    static LOCAL: OnceLock<&'static AtomicBool> = OnceLock::new();
    LOCAL.get_or_init(|| {
        crate::process_global::shared(ENV, || {
            let shared = Arc::new(AtomicBool::new(false));
            // Order matters: the conditional default first (acts only if the flag is already set).
            let _ = signal_hook::flag::register_conditional_default(
                signal_hook::consts::SIGINT,
                shared.clone(),
            );
            let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, shared.clone());
            let ptr = Arc::as_ptr(&shared);
            std::mem::forget(shared); // never freed: the handlers and later cells point at it
                                      // SAFETY: the Arc's allocation is leaked above, so the reference is valid forever.
            unsafe { &*ptr }
        })
    })
}

/// Installs the SIGINT handler (idempotent). The fastai kernel does this when it starts, so that
/// the stop button never kills a cell that checks [`interrupted`]; training installs it too.
pub fn install() {
    let _ = flag();
}

/// Whether the stop button (SIGINT) was pressed since the last check; checking clears it.
/// Call it in long loops of your own to make them stoppable without losing variables:
///
/// ```no_run
/// # use fastai::vision::*;
/// for step in 0.. {
///     if interrupted() { println!("stopped at step {step}"); break; }
///     // ... work ...
/// }
/// ```
pub fn interrupted() -> bool {
    flag().swap(false, Ordering::SeqCst)
}

/// Installs the handler (once) and clears the flag: call when training starts.
pub fn arm() {
    flag().store(false, Ordering::SeqCst);
}

/// Whether an interrupt arrived since [`arm`].
pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// Clears the flag (after the loop has stopped because of it).
pub fn clear() {
    flag().store(false, Ordering::SeqCst);
}

/// Raises the flag as an interrupt would (for tests and for stopping from code).
pub fn request() {
    flag().store(true, Ordering::SeqCst);
}
