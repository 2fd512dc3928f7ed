//! Starting the ranks of a data-parallel run: what the `fastai-launch` program does (torchrun's
//! contract, without restarts) and what a notebook's launcher calls.
//!
//! Each rank is a process of `program` with `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//! `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` set, and `OMP_NUM_THREADS` (libtorch's
//! threads per rank) set to the machine's cores divided between the ranks unless the caller set
//! it. Each line a rank prints comes out prefixed with its rank. When one rank fails, the others
//! are ended (SIGTERM, then SIGKILL after a grace period) and the launch fails naming it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Where the ranks' output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankOutput {
    /// Every line of every rank, stdout to stdout and stderr to stderr, prefixed `[rank R] `.
    Prefixed,
    /// Rank 0's stdout passed through unchanged (so a notebook's displays - the progress table -
    /// arrive as rank 0 sent them); everything else prefixed on stderr.
    Rank0Raw,
}

/// What [`launch`] starts.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Processes on this machine.
    pub nproc: usize,
    /// Machines, and this one's index among them.
    pub nnodes: usize,
    pub node_rank: usize,
    /// Where rank 0 serves the rendezvous store. `None`: 127.0.0.1 and a free port (one machine
    /// only).
    pub master: Option<(String, u16)>,
    /// libtorch threads per rank (`OMP_NUM_THREADS`); `None`: cores / nproc, at least 1, unless
    /// `OMP_NUM_THREADS` is already set.
    pub threads_per_rank: Option<usize>,
    pub output: RankOutput,
    /// Between asking the other ranks to end (SIGTERM) and killing them.
    pub grace: Duration,
    /// More environment for every rank.
    pub env: Vec<(OsString, OsString)>,
    /// Pass an interrupt of this process (Ctrl-C, the notebook's stop button) on to every rank
    /// as SIGINT: their fits stop together at the next batch and they exit normally.
    pub forward_interrupt: bool,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            nproc: 1,
            nnodes: 1,
            node_rank: 0,
            master: None,
            threads_per_rank: None,
            output: RankOutput::Prefixed,
            grace: Duration::from_secs(5),
            env: Vec::new(),
            forward_interrupt: false,
        }
    }
}

/// A port nobody listens on now (for a single-machine run's rendezvous).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Msg(format!("finding a free port on 127.0.0.1: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| Error::Msg(format!("finding a free port: {e}")))?
        .port())
}

/// Starts `opts.nproc` ranks of `program args...` on this machine and waits for all of them.
/// `Ok` when every rank exits successfully; otherwise the error names the first rank that failed
/// (the others were ended).
pub fn launch(opts: &LaunchOptions, program: &OsString, args: &[OsString]) -> Result<()> {
    if opts.nproc == 0 || opts.nnodes == 0 || opts.node_rank >= opts.nnodes {
        return Err(Error::Msg(format!(
            "launch: {} processes on node {} of {}: need at least one process and a node rank \
             below the number of nodes",
            opts.nproc, opts.node_rank, opts.nnodes
        )));
    }
    let (addr, port) = match &opts.master {
        Some((a, p)) => (a.clone(), *p),
        None if opts.nnodes == 1 => ("127.0.0.1".to_string(), free_port()?),
        None => {
            return Err(Error::Msg(
                "launch: several nodes need --master ADDR:PORT (rank 0's machine, the same on \
                 every node)"
                    .into(),
            ))
        }
    };
    let world = opts.nproc * opts.nnodes;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = opts
        .threads_per_rank
        .or_else(|| {
            std::env::var("OMP_NUM_THREADS")
                .ok()
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or((cores / opts.nproc).max(1));

    let mut ranks: Vec<Rank> = Vec::with_capacity(opts.nproc);
    for local in 0..opts.nproc {
        let rank = opts.node_rank * opts.nproc + local;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("LOCAL_WORLD_SIZE", opts.nproc.to_string())
            .env("GROUP_RANK", opts.node_rank.to_string())
            .env("MASTER_ADDR", &addr)
            .env("MASTER_PORT", port.to_string())
            .env("OMP_NUM_THREADS", threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                end_all(&mut ranks, opts.grace);
                return Err(Error::Msg(format!(
                    "launch: cannot start {}: {e}",
                    program.to_string_lossy()
                )));
            }
        };
        let raw = opts.output == RankOutput::Rank0Raw && rank == 0;
        let out = child.stdout.take().map(|s| {
            if raw {
                forward_raw(s)
            } else if opts.output == RankOutput::Rank0Raw {
                forward_prefixed(s, rank, Stream::Stderr)
            } else {
                forward_prefixed(s, rank, Stream::Stdout)
            }
        });
        let err = child
            .stderr
            .take()
            .map(|s| forward_prefixed(s, rank, Stream::Stderr));
        ranks.push(Rank {
            rank,
            child,
            status: None,
            readers: out.into_iter().chain(err).collect(),
        });
    }

    // wait: all succeed, or the first failure ends the rest
    if opts.forward_interrupt {
        // (not arm(): an interrupt that came while the program was being prepared still counts)
        crate::learner::interrupt::install();
    }
    let mut failed: Option<(usize, ExitStatus)> = None;
    loop {
        if opts.forward_interrupt && crate::learner::interrupt::interrupted() {
            for r in ranks.iter().filter(|r| r.status.is_none()) {
                // SAFETY: kill(2) on our own, not yet reaped, child.
                unsafe {
                    libc::kill(r.child.id() as libc::pid_t, libc::SIGINT);
                }
            }
        }
        for r in ranks.iter_mut().filter(|r| r.status.is_none()) {
            if let Ok(Some(status)) = r.child.try_wait() {
                r.status = Some(status);
                if !status.success() && failed.is_none() {
                    failed = Some((r.rank, status));
                }
            }
        }
        if failed.is_some() || ranks.iter().all(|r| r.status.is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if failed.is_some() {
        end_all(&mut ranks, opts.grace);
    }
    for r in ranks.iter_mut() {
        for h in r.readers.drain(..) {
            let _ = h.join();
        }
    }
    match failed {
        None => Ok(()),
        Some((rank, status)) => {
            let others: Vec<String> = ranks
                .iter()
                .filter(|r| r.rank != rank)
                .map(|r| format!("rank {}: {}", r.rank, describe(r.status)))
                .collect();
            Err(Error::Msg(format!(
                "launch: rank {rank} failed ({}); the other ranks were stopped{}",
                describe(Some(status)),
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", others.join(", "))
                }
            )))
        }
    }
}

struct Rank {
    rank: usize,
    child: Child,
    status: Option<ExitStatus>,
    readers: Vec<JoinHandle<()>>,
}

fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "still running".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(0), _) => "exited normally".into(),
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => format!("{s}"),
        },
    }
}

/// Asks every running rank to end (SIGTERM), and kills those still running after `grace`.
fn end_all(ranks: &mut [Rank], grace: Duration) {
    for r in ranks.iter_mut().filter(|r| r.status.is_none()) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe {
            libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let mut running = false;
        for r in ranks.iter_mut().filter(|r| r.status.is_none()) {
            match r.child.try_wait() {
                Ok(Some(s)) => r.status = Some(s),
                _ => running = true,
            }
        }
        if !running {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for r in ranks.iter_mut().filter(|r| r.status.is_none()) {
        let _ = r.child.kill();
        r.status = r.child.wait().ok();
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

fn forward_prefixed(pipe: impl Read + Send + 'static, rank: usize, to: Stream) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if !line.ends_with(b"\n") {
                        line.push(b'\n');
                    }
                    let mut text = format!("[rank {rank}] ").into_bytes();
                    text.extend_from_slice(&line);
                    let _ = match to {
                        Stream::Stdout => std::io::stdout().lock().write_all(&text),
                        Stream::Stderr => std::io::stderr().lock().write_all(&text),
                    };
                }
            }
        }
    })
}

fn forward_raw(mut pipe: impl Read + Send + 'static) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
    })
}
