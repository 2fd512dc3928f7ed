//! Data-parallel training on PyTorch's own distributed engine (c10d): the same notebook code on
//! several processes - one per GPU, or per CPU socket, or across machines - each training on its
//! share of every batch, with gradients averaged before every optimizer step.
//!
//! ```no_run
//! use fastai::distributed::{rank0_first, DistContext};
//! use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! // started by `fastai-launch --nproc 2 ./my-training`, which sets RANK, WORLD_SIZE, ...
//! let ctx = DistContext::from_env()?;
//! let path = rank0_first(&ctx, || untar_data(URLs::MNIST_SAMPLE))?;
//! let data = ImageDataBunch::from_folder(&path, DataOptions::default())?;
//! let mut learn = cnn_learner(data, models::resnet18, &[error_rate])?;
//! learn.to_distributed(&ctx)?;
//! learn.fit_one_cycle(1, None) // rank 0 shows the table; all ranks end with the same weights
//! # }
//! ```
//!
//! The pieces: [`Store`] and [`ProcessGroup`] (c10d's rendezvous and Gloo collectives),
//! [`DistContext`] (torchrun's environment), [`Learner::to_distributed`] (fastai v1's name),
//! [`launch`] (what the `fastai-launch` program runs) and, in a notebook,
//! [`notebook_launcher!`](crate::notebook_launcher) ([`notebook`]).

mod c10d;
mod launch;
pub mod notebook;
mod trainer;

use std::sync::Arc;
use std::time::Duration;

pub use c10d::{available, ProcessGroup, ReduceOp, Store};
pub use launch::{launch, LaunchOptions, RankOutput};
pub use notebook::notebook_launch;
pub use trainer::{DistributedTrainer, StopSync};

use crate::data::Data;
use crate::error::{Error, Result};
use crate::learner::Learner;

/// Where this process stands in a data-parallel run: its rank, how many ranks, and the group
/// they talk through. A run of one process (no `RANK` in the environment) is a context too, so
/// the same code runs alone and distributed.
#[derive(Clone)]
pub struct DistContext {
    /// This process's rank, 0..world_size.
    pub rank: usize,
    pub world_size: usize,
    /// Rank within this machine (which GPU to use).
    pub local_rank: usize,
    group: Option<Arc<ProcessGroup>>,
    store: Option<Arc<Store>>,
}

/// How long a collective or the rendezvous waits for a silent peer before failing
/// (`FASTAI_DIST_TIMEOUT` seconds, default 30 minutes as PyTorch's).
pub fn default_timeout() -> Duration {
    std::env::var("FASTAI_DIST_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30 * 60))
}

fn env_number(var: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>> {
    match var(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
            Error::Msg(format!(
                "{name}={v:?} is not a number (fastai-launch and torchrun set it; unset it to run \
                 a single process)"
            ))
        }),
    }
}

/// Whether this build of the library can make NCCL process groups (compiled against the CUDA
/// libtorch with its headers; see `FASTAI_NCCL_UNAVAILABLE` in build.rs otherwise).
pub fn nccl_built() -> bool {
    option_env!("FASTAI_C10D_NCCL_SO").is_some()
}

impl DistContext {
    /// A single process: rank 0 of 1, no group.
    pub fn single() -> DistContext {
        DistContext {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            group: None,
            store: None,
        }
    }

    /// The run torchrun or `fastai-launch` started: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
    /// `MASTER_ADDR` (default 127.0.0.1) and `MASTER_PORT` (default 29500). Rank 0 serves the
    /// rendezvous store; every rank then joins the group: NCCL when this rank has a GPU and the
    /// library was built with NCCL, else Gloo (`FASTAI_DIST_BACKEND=gloo|nccl` chooses). Without `RANK` / `WORLD_SIZE` (or
    /// with a world of one) this is [`DistContext::single`].
    pub fn from_env() -> Result<DistContext> {
        DistContext::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading the variables through `var` (tests, or a launcher
    /// of one's own).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<DistContext> {
        let var: &dyn Fn(&str) -> Option<String> = &var;
        let rank = env_number(var, "RANK")?;
        let world = env_number(var, "WORLD_SIZE")?;
        let (rank, world) =
            match (rank, world) {
                (None, None) => return Ok(DistContext::single()),
                (Some(r), Some(w)) => (r, w),
                (Some(_), None) => return Err(Error::Msg(
                    "RANK is set but WORLD_SIZE is not: start the ranks with fastai-launch (or \
                     torchrun), which sets both"
                        .into(),
                )),
                (None, Some(_)) => return Err(Error::Msg(
                    "WORLD_SIZE is set but RANK is not: start the ranks with fastai-launch (or \
                     torchrun), which sets both"
                        .into(),
                )),
            };
        if world == 0 || rank >= world {
            return Err(Error::Msg(format!(
                "RANK={rank} with WORLD_SIZE={world}: the rank must be below the world size"
            )));
        }
        let local_rank = env_number(var, "LOCAL_RANK")?.unwrap_or(rank);
        if world == 1 {
            return Ok(DistContext {
                local_rank,
                ..DistContext::single()
            });
        }
        let addr = var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let port = match var("MASTER_PORT") {
            None => 29500,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    Error::Msg(format!("MASTER_PORT={p:?} is not a port number (1-65535)"))
                })?,
        };
        let timeout = default_timeout();
        let store = Store::tcp(&addr, port, world, rank == 0, timeout)?;
        let group = match var("FASTAI_DIST_BACKEND").as_deref().unwrap_or("auto") {
            "gloo" => None,
            "nccl" => Some(true),
            "auto" | "" => Some(false),
            other => {
                return Err(Error::Msg(format!(
                    "FASTAI_DIST_BACKEND={other:?}: choose gloo (CPU, or GPUs through the host) \
                     or nccl (GPUs), or leave it unset (nccl when this rank has a GPU and the \
                     library has NCCL, else gloo)"
                )))
            }
        };
        let use_nccl = match group {
            None => false,
            Some(true) => true,
            Some(false) => nccl_built() && crate::device::device().is_cuda(),
        };
        let group = if use_nccl {
            ProcessGroup::nccl(&store, rank, world, local_rank, timeout)?
        } else {
            let host = c10d::transport_host(Some(&addr));
            ProcessGroup::gloo_on(&store, rank, world, timeout, &host)?
        };
        Ok(DistContext::from_group(group, Some(store), local_rank))
    }

    /// A context over a group made by hand (threads of one process, tests).
    pub fn from_group(group: ProcessGroup, store: Option<Store>, local_rank: usize) -> DistContext {
        DistContext {
            rank: group.rank(),
            world_size: group.size(),
            local_rank,
            group: Some(Arc::new(group)),
            store: store.map(Arc::new),
        }
    }

    /// Whether this is rank 0, the one that shows progress and saves.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// Whether there is more than one rank.
    pub fn is_distributed(&self) -> bool {
        self.world_size > 1
    }

    /// The process group (`None` for a single process).
    pub fn group(&self) -> Option<&ProcessGroup> {
        self.group.as_deref()
    }

    /// The rendezvous store, when this context made one.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_deref()
    }

    /// Waits until every rank gets here (nothing for a single process).
    pub fn barrier(&self) -> Result<()> {
        match self.group() {
            Some(g) => g.barrier(),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for DistContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DistContext(rank {} of {}, local rank {})",
            self.rank, self.world_size, self.local_rank
        )
    }
}

/// fastai's `rank0_first`: runs `f` on rank 0 first (a download, an extraction, a cache being
/// written), then on the other ranks once rank 0 is done - so they find its files instead of
/// racing to write them. A failure on rank 0 is reported to every rank.
pub fn rank0_first<T, E: Into<Error>>(
    ctx: &DistContext,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> Result<T> {
    let Some(group) = ctx.group() else {
        return f().map_err(Into::into);
    };
    if ctx.is_main() {
        let result = f().map_err(Into::into);
        // tell the others whether to go on (1) or give up (0)
        let mut ok = tch::Tensor::from_slice(&[result.is_ok() as i64]);
        group.broadcast(&mut [&mut ok], 0)?;
        result
    } else {
        let mut ok = tch::Tensor::from_slice(&[0i64]);
        group.broadcast(&mut [&mut ok], 0)?;
        if ok.int64_value(&[0]) == 0 {
            return Err(Error::Msg(
                "rank0_first: rank 0 failed (its error is in its output); this rank did not run"
                    .into(),
            ));
        }
        f().map_err(Into::into)
    }
}

impl<D: Data + ?Sized> Learner<D> {
    /// fastai v1's `learn.to_distributed()`: from the next fit on, this learner trains as one
    /// rank of `ctx` - weights and BatchNorm statistics broadcast from rank 0 when each fit
    /// starts, every epoch's training and validation items split between the ranks, gradients
    /// averaged across ranks before every optimizer step, validation predictions gathered so
    /// every rank reports the same metrics over the whole validation set, and only rank 0
    /// showing progress. Each rank's batch is the data's `bs`: the global batch is
    /// `bs * world_size`. A single-process context changes nothing.
    pub fn to_distributed(&mut self, ctx: &DistContext) -> Result<&mut Self> {
        self.remove_cb::<DistributedTrainer>();
        self.remove_cb::<StopSync>();
        if !ctx.is_distributed() {
            return Ok(self);
        }
        if !ctx.is_main() {
            self.remove_cb::<crate::learner::progress::ProgressCallback>();
            self.remove_cb::<crate::learner::callback::StopButton>();
        }
        self.add_cb(DistributedTrainer::new(ctx.clone())?);
        self.add_cb(StopSync::new(ctx.clone()));
        Ok(self)
    }
}
