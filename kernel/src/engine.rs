//! The engine: evcxr's `CommandContext` on a thread of its own.
//!
//! Compiling and running a cell blocks for seconds to hours, so the context lives on one dedicated
//! thread and the async message loop talks to it through a channel. The child process's stdout and
//! stderr lines are forwarded live, as they are printed, through [`OutputSink`].

use std::collections::HashMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use evcxr::{CommandContext, EvalContextOutputs};
use tokio::sync::oneshot;

use crate::inspect::Inspection;
use crate::shortcut;

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives every output line of the cell process as it is printed.
pub type OutputSink = Arc<dyn Fn(Stream, String) + Send + Sync>;

/// How a cell ended.
pub enum Outcome {
    /// Ran to the end; rich outputs by MIME type (possibly empty).
    Ok(HashMap<String, String>),
    /// Did not compile.
    CompileErrors {
        evalue: String,
        traceback: Vec<String>,
    },
    /// The cell process died (crash, or killed by an interrupt); evcxr has started a fresh one.
    ProcessDied(String),
    /// Any other failure evcxr reports.
    Failed(String),
    /// Stopped by an interrupt. `killed`: it did not stop within the grace period after
    /// SIGINT, or SIGINT ended it; either way the process restarted and variables were lost.
    Interrupted { killed: bool },
}

/// Interrupt states of the running cell.
const NOT_INTERRUPTED: u8 = 0;
const SIGINT_SENT: u8 = 1;
const KILLED: u8 = 2;

/// A completion answer, in byte offsets of the code.
pub struct Completion {
    pub matches: Vec<String>,
    pub start: usize,
    pub end: usize,
}

enum Request {
    Execute(String, oneshot::Sender<Outcome>),
    Complete(String, usize, oneshot::Sender<Option<Completion>>),
    Inspect(String, usize, oneshot::Sender<Option<Inspection>>),
}

#[derive(Clone)]
pub struct Engine {
    requests: Sender<Request>,
    child: Arc<Mutex<Option<Arc<Mutex<Child>>>>>,
    /// Sequence number of the cell running now (0: none).
    running: Arc<AtomicU64>,
    interrupt: Arc<AtomicU8>,
    /// The library is being compiled into the build folder (start-up, after its sources changed).
    preloading: Arc<AtomicBool>,
}

impl Engine {
    /// Starts the engine thread. The evcxr context is created there; requests wait for it.
    /// `preload`: code to run first, alternatives in the order to try them (empty: none).
    pub fn start(sink: OutputSink, preload: Vec<String>) -> Engine {
        let (tx, rx) = crossbeam_channel::unbounded::<Request>();
        let child = Arc::new(Mutex::new(None));
        let (running, interrupt) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU8::new(NOT_INTERRUPTED)),
        );
        let preloading = Arc::new(AtomicBool::new(!preload.is_empty()));
        let flags = CellFlags {
            child: child.clone(),
            running: running.clone(),
            interrupt: interrupt.clone(),
            preloading: preloading.clone(),
        };
        std::thread::Builder::new()
            .name("evcxr-engine".into())
            .spawn(move || engine_thread(rx, sink, flags, preload))
            .expect("cannot start the engine thread");
        Engine {
            requests: tx,
            child,
            running,
            interrupt,
            preloading,
        }
    }

    /// Whether the library is still being preloaded (cells wait until it is done).
    pub fn is_preloading(&self) -> bool {
        self.preloading.load(Ordering::SeqCst)
    }

    pub async fn execute(&self, code: String) -> Outcome {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Execute(code, tx)).is_err() {
            return Outcome::Failed("the evcxr engine has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Outcome::Failed("the evcxr engine has stopped".into()))
    }

    pub async fn complete(&self, code: String, byte_pos: usize) -> Option<Completion> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Complete(code, byte_pos, tx))
            .ok()?;
        rx.await.ok().flatten()
    }

    /// What is known about the name at byte offset `byte_pos` (see [`crate::inspect`]).
    pub async fn inspect(&self, code: String, byte_pos: usize) -> Option<Inspection> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Inspect(code, byte_pos, tx))
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Interrupts the running cell: SIGINT to the cell process (fastai's training loop stops at
    /// the next batch and keeps the model); if the same cell still runs after `grace`, the
    /// process is killed as a last resort (variables lost). Does nothing between cells.
    pub fn interrupt(&self, grace: Duration) {
        let cell = self.running.load(Ordering::SeqCst);
        let Some(handle) = self.child.lock().unwrap().clone() else {
            return;
        };
        if cell == 0 {
            return;
        }
        let pid = handle.lock().unwrap().id();
        self.interrupt.store(SIGINT_SENT, Ordering::SeqCst);
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGINT);
        }
        let (running, interrupt) = (self.running.clone(), self.interrupt.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if running.load(Ordering::SeqCst) != cell {
                    return; // it stopped
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if running.load(Ordering::SeqCst) == cell {
                interrupt.store(KILLED, Ordering::SeqCst);
                let _ = handle.lock().unwrap().kill();
            }
        });
    }

    /// Kills the cell process (shutdown). Returns false when there is no process yet.
    pub fn kill_cell_process(&self) -> bool {
        let handle = self.child.lock().unwrap().clone();
        match handle {
            Some(h) => {
                let _ = h.lock().unwrap().kill();
                true
            }
            None => false,
        }
    }
}

/// What the engine thread shares with interrupt requests.
struct CellFlags {
    child: Arc<Mutex<Option<Arc<Mutex<Child>>>>>,
    running: Arc<AtomicU64>,
    interrupt: Arc<AtomicU8>,
    preloading: Arc<AtomicBool>,
}

fn engine_thread(rx: Receiver<Request>, sink: OutputSink, flags: CellFlags, preload: Vec<String>) {
    let child = flags.child.clone();
    let mut seq = 0u64;
    let (mut ctx, outputs) = match CommandContext::new() {
        Ok(x) => x,
        Err(e) => {
            let msg = format!("could not start the Rust engine (evcxr): {e}");
            flags.preloading.store(false, Ordering::SeqCst);
            sink(Stream::Stderr, msg.clone());
            for req in rx {
                match req {
                    Request::Execute(_, reply) => {
                        let _ = reply.send(Outcome::Failed(msg.clone()));
                    }
                    Request::Complete(_, _, reply) => {
                        let _ = reply.send(None);
                    }
                    Request::Inspect(_, _, reply) => {
                        let _ = reply.send(None);
                    }
                }
            }
            return;
        }
    };
    *child.lock().unwrap() = Some(ctx.process_handle());
    let stderr_watch = outputs.stderr.clone();
    let last_stderr = Arc::new(Mutex::new(Instant::now()));
    start_forwarder(outputs, sink.clone(), last_stderr.clone());

    // Preload the library before the first request is served (requests queue meanwhile),
    // together with the plain-value display shortcut (one compilation for both).
    let mut format = shortcut::Format::default();
    let mut preload_error = None;
    if !preload.is_empty() {
        let t0 = Instant::now();
        let shortcut = shortcut_definition(format.variant());
        match crate::preload::run_first(&mut ctx, &preload, shortcut.as_deref()) {
            Ok(()) => eprintln!(
                "fastai-kernel: fastai preloaded in {:.1} s",
                t0.elapsed().as_secs_f64()
            ),
            Err(e) => {
                preload_error = Some(format!(
                    "note: the fastai library could not be preloaded ({e}); `use fastai::vision::*;` \
                     will not work until this is fixed (re-run ./install.sh)"
                ));
                define_shortcut(&mut ctx, format.variant());
            }
        }
        warm_up_analyzer(&mut ctx);
    } else {
        define_shortcut(&mut ctx, format.variant());
    }
    flags.preloading.store(false, Ordering::SeqCst);

    for req in rx {
        match req {
            Request::Execute(code, reply) => {
                if let Some(note) = preload_error.take() {
                    sink(Stream::Stderr, note);
                }
                seq += 1;
                if code.lines().any(|l| l.trim_start().starts_with(":dep")) {
                    crate::preload::without_link_stubs();
                }
                // `:fmt` / `:types`: evcxr's own fallback prints this cell's value.
                let new_format = shortcut::changes_format(&code);
                if new_format {
                    define_shortcut(&mut ctx, shortcut::Variant::Off);
                }
                flags.interrupt.store(NOT_INTERRUPTED, Ordering::SeqCst);
                flags.running.store(seq, Ordering::SeqCst);
                let result = ctx.execute(&code);
                flags.running.store(0, Ordering::SeqCst);
                if new_format {
                    // evcxr keeps the commands' changes only when the cell succeeds.
                    if result.is_ok() {
                        format.apply_commands(&code);
                    }
                    define_shortcut(&mut ctx, format.variant());
                }
                let interrupted = flags.interrupt.swap(NOT_INTERRUPTED, Ordering::SeqCst);
                let outcome = match result {
                    Err(evcxr::Error::SubprocessTerminated(_))
                        if interrupted != NOT_INTERRUPTED =>
                    {
                        Outcome::Interrupted { killed: true }
                    }
                    Ok(_) if interrupted == SIGINT_SENT => Outcome::Interrupted { killed: false },
                    Ok(out) => {
                        // `:timing` on: evcxr measured the phases of the cell; show them as
                        // the stock kernel does, under the cell.
                        if out.timing.is_some() && !out.phases.is_empty() {
                            let phases: Vec<(&str, Duration)> = out
                                .phases
                                .iter()
                                .map(|p| (p.name.as_str(), p.duration))
                                .collect();
                            sink(Stream::Stdout, format_phases(&phases));
                        }
                        Outcome::Ok(out.content_by_mime_type)
                    }
                    Err(evcxr::Error::CompilationErrors(errors)) => Outcome::CompileErrors {
                        evalue: crate::errors::summary(&errors),
                        traceback: crate::errors::render_compile_errors(&code, &errors),
                    },
                    Err(evcxr::Error::SubprocessTerminated(m)) => Outcome::ProcessDied(m),
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                // evcxr waits for stdout to be consumed; stderr comes through its own pipe and
                // thread, so give it a moment to go quiet before the cell is declared done.
                settle(&stderr_watch, &last_stderr);
                let _ = reply.send(outcome);
            }
            Request::Complete(code, pos, reply) => {
                let answer = ctx.completions(&code, pos).ok().map(|c| Completion {
                    matches: c.completions.into_iter().map(|c| c.code).collect(),
                    start: c.start_offset,
                    end: c.end_offset,
                });
                let _ = reply.send(answer);
            }
            Request::Inspect(code, pos, reply) => {
                // rust-analyzer's hover is a large body of code: a panic there must not take the
                // engine (and every later cell) down with it.
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::inspect::inspect(&mut ctx, &code, pos)
                }))
                .unwrap_or(None);
                let _ = reply.send(answer);
            }
        }
    }
}

/// (Re)defines the plain-value display trait (see [`crate::shortcut`]); a failure only costs
/// speed, so it is logged, not shown.
fn define_shortcut(ctx: &mut CommandContext, variant: shortcut::Variant) {
    if let Some(code) = shortcut_definition(variant) {
        if let Err(e) = ctx.execute(&code) {
            eprintln!("fastai-kernel: the display shortcut could not be defined: {e}");
        }
    }
}

/// The shortcut's session code, its files written into the build folder.
fn shortcut_definition(variant: shortcut::Variant) -> Option<String> {
    let dir = std::env::var_os("EVCXR_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    shortcut::definition(&dir, variant)
        .map_err(|e| {
            eprintln!(
                "fastai-kernel: cannot write the display shortcut in {}: {e}",
                dir.display()
            )
        })
        .ok()
}

/// evcxr asks rust-analyzer for the type of every variable a cell defines. The first time, it
/// reads and indexes the standard library and the sources of every crate the library depends on
/// (seconds of CPU). This starts that work now, on evcxr's analysis thread (background analysis,
/// third_party/evcxr/PATCHES.md; with it off, here and now), while the notebook is already usable:
/// cells meanwhile do not wait for it, their variables' types are looked up once it is done.
fn warm_up_analyzer(ctx: &mut CommandContext) {
    let t0 = Instant::now();
    let primed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.prime_analysis()));
    match primed {
        Ok(()) => eprintln!(
            "fastai-kernel: rust-analyzer warm-up started ({:.1} s here)",
            t0.elapsed().as_secs_f64()
        ),
        Err(_) => eprintln!(
            "fastai-kernel: rust-analyzer warm-up failed (the first `let` will be slower)"
        ),
    }
}

fn start_forwarder(
    outputs: EvalContextOutputs,
    sink: OutputSink,
    last_stderr: Arc<Mutex<Instant>>,
) {
    std::thread::Builder::new()
        .name("cell-output".into())
        .spawn(move || {
            let EvalContextOutputs { stdout, stderr } = outputs;
            // The two pipes are read by two threads, so a line of each may be waiting at once;
            // `select!` would then pick one at random. A cell that prints and then fails
            // (`println!`, then a panic's report on stderr) wrote its stdout first, and that is
            // the usual order: stdout lines that are ready, or arrive within a moment, go first.
            let drain_stdout = |wait: Duration| -> bool {
                loop {
                    match stdout.recv_timeout(wait) {
                        Ok(l) => sink(Stream::Stdout, l),
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => return true,
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return false,
                    }
                }
            };
            loop {
                crossbeam_channel::select! {
                    recv(stdout) -> line => match line {
                        Ok(l) => sink(Stream::Stdout, l),
                        Err(_) => break,
                    },
                    recv(stderr) -> line => match line {
                        Ok(l) => {
                            // (marked first: `settle` waits for 15 ms of quiet after it)
                            let previous = std::mem::replace(
                                &mut *last_stderr.lock().unwrap(),
                                Instant::now(),
                            );
                            // the wait for stdout only before the first line of a burst: a
                            // cell writing thousands of lines on stderr is not slowed by it
                            let wait = if previous.elapsed() > Duration::from_millis(50) {
                                Duration::from_millis(2)
                            } else {
                                Duration::ZERO
                            };
                            let open = drain_stdout(wait);
                            sink(Stream::Stderr, l);
                            if !open {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                }
            }
        })
        .expect("cannot start the output thread");
}

fn settle(stderr: &Receiver<String>, last: &Arc<Mutex<Instant>>) {
    // With evcxr's stderr marker (patch 4, on by default) every line of the cell is in the
    // channel by now, and this only waits for the output thread to pass them on; without it,
    // the stderr pipe's reader thread may not have seen the last lines yet (a panic message is
    // written just before the cell reports completion on stdout), and this is a guess.
    let deadline = Instant::now() + Duration::from_secs(3);
    std::thread::sleep(Duration::from_millis(5));
    loop {
        let quiet = last.lock().unwrap().elapsed() >= Duration::from_millis(15);
        if (stderr.is_empty() && quiet) || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One line per compilation phase, as `:timing` asks for.
fn format_phases(phases: &[(&str, Duration)]) -> String {
    let total: Duration = phases.iter().map(|p| p.1).sum();
    let mut text = String::from("timing:");
    for (name, duration) in phases {
        text.push_str(&format!(" {name} {} ms,", duration.as_millis()));
    }
    text.push_str(&format!(" total {} ms", total.as_millis()));
    text
}
