//! PyTorch's distributed engine (c10d), as libtorch ships it: rendezvous stores, the Gloo
//! process group and the collectives of data-parallel training. The C++ side is
//! `lib/csrc/c10d.cpp`, compiled by `build.rs` against the headers of the libtorch tch links;
//! every C++ exception becomes an [`Error`](crate::Error) here, never an abort.
//!
//! ```no_run
//! use fastai::distributed::{ProcessGroup, ReduceOp, Store};
//! # fn main() -> fastai::Result<()> {
//! // two processes, rank 0 and rank 1, on one machine
//! let rank = 0;
//! let store = Store::tcp("127.0.0.1", 29500, 2, rank == 0, std::time::Duration::from_secs(60))?;
//! let group = ProcessGroup::gloo(&store, rank, 2, std::time::Duration::from_secs(60))?;
//! let mut t = tch::Tensor::from_slice(&[rank as f32 + 1.0]);
//! group.all_reduce(&mut [&mut t], ReduceOp::Sum)?; // 3.0 on both ranks
//! # Ok(()) }
//! ```

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;

use tch::Tensor;

use crate::error::{Error, Result};

#[cfg(fastai_c10d)]
mod sys {
    use std::ffi::{c_char, c_int, c_void};
    use torch_sys::C_tensor;

    extern "C" {
        pub fn fastai_c10d_free_string(s: *mut c_char);
        pub fn fastai_c10d_free_bytes(data: *mut u8);
        pub fn fastai_c10d_tcp_store(
            host: *const c_char,
            port: u16,
            world_size: c_int,
            is_server: c_int,
            wait_workers: c_int,
            timeout_ms: i64,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn fastai_c10d_hash_store(out: *mut *mut c_void) -> *mut c_char;
        pub fn fastai_c10d_store_free(store: *mut c_void);
        pub fn fastai_c10d_store_set(
            store: *mut c_void,
            key: *const c_char,
            data: *const u8,
            len: usize,
        ) -> *mut c_char;
        pub fn fastai_c10d_store_get(
            store: *mut c_void,
            key: *const c_char,
            data: *mut *mut u8,
            len: *mut usize,
        ) -> *mut c_char;
        pub fn fastai_c10d_store_add(
            store: *mut c_void,
            key: *const c_char,
            amount: i64,
            result: *mut i64,
        ) -> *mut c_char;
        pub fn fastai_c10d_gloo(
            store: *mut c_void,
            rank: c_int,
            size: c_int,
            timeout_ms: i64,
            hostname: *const c_char,
            interface: *const c_char,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn fastai_c10d_group_free(group: *mut c_void);
        pub fn fastai_c10d_all_reduce(
            group: *mut c_void,
            tensors: *mut *mut C_tensor,
            n: usize,
            op: c_int,
        ) -> *mut c_char;
        pub fn fastai_c10d_broadcast(
            group: *mut c_void,
            tensors: *mut *mut C_tensor,
            n: usize,
            root: c_int,
        ) -> *mut c_char;
        pub fn fastai_c10d_all_gather(
            group: *mut c_void,
            input: *mut C_tensor,
            outputs: *mut *mut C_tensor,
            n: usize,
        ) -> *mut c_char;
        pub fn fastai_c10d_barrier(group: *mut c_void) -> *mut c_char;
    }
}

/// Without c10d (a libtorch built without distributed support, found by build.rs) the same
/// functions exist but only store creation is ever reached, and it says why it cannot work.
#[cfg(not(fastai_c10d))]
#[allow(clippy::missing_safety_doc, unused_variables)]
mod sys {
    use std::ffi::{c_char, c_int, c_void};
    use torch_sys::C_tensor;
    const NONE: &str = "no store can exist without c10d";
    pub unsafe fn fastai_c10d_free_string(s: *mut c_char) {}
    pub unsafe fn fastai_c10d_free_bytes(data: *mut u8) {}
    pub unsafe fn fastai_c10d_tcp_store(
        host: *const c_char,
        port: u16,
        world_size: c_int,
        is_server: c_int,
        wait_workers: c_int,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_hash_store(out: *mut *mut c_void) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_store_free(store: *mut c_void) {}
    pub unsafe fn fastai_c10d_store_set(
        store: *mut c_void,
        key: *const c_char,
        data: *const u8,
        len: usize,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_store_get(
        store: *mut c_void,
        key: *const c_char,
        data: *mut *mut u8,
        len: *mut usize,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_store_add(
        store: *mut c_void,
        key: *const c_char,
        amount: i64,
        result: *mut i64,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_gloo(
        store: *mut c_void,
        rank: c_int,
        size: c_int,
        timeout_ms: i64,
        hostname: *const c_char,
        interface: *const c_char,
        out: *mut *mut c_void,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_group_free(group: *mut c_void) {}
    pub unsafe fn fastai_c10d_all_reduce(
        group: *mut c_void,
        tensors: *mut *mut C_tensor,
        n: usize,
        op: c_int,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_broadcast(
        group: *mut c_void,
        tensors: *mut *mut C_tensor,
        n: usize,
        root: c_int,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_all_gather(
        group: *mut c_void,
        input: *mut C_tensor,
        outputs: *mut *mut C_tensor,
        n: usize,
    ) -> *mut c_char {
        unreachable!("{NONE}")
    }
    pub unsafe fn fastai_c10d_barrier(group: *mut c_void) -> *mut c_char {
        unreachable!("{NONE}")
    }
}

/// Whether this build of the library can do distributed training (it was compiled against a
/// libtorch with c10d's headers).
pub fn available() -> bool {
    cfg!(fastai_c10d)
}

fn require() -> Result<()> {
    if available() {
        Ok(())
    } else {
        Err(Error::Msg(
            "distributed training is not available: the library was built against a libtorch \
             without c10d's headers (torch/csrc/distributed/c10d); rebuild against the PyPI \
             torch that install.sh installs"
                .into(),
        ))
    }
}

/// Turns the shim's error message (NULL = success) into a Result, freeing the message.
fn check(what: &str, message: *mut c_char) -> Result<()> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is a NUL-terminated string malloc'd by the shim.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .trim()
        .to_string();
    unsafe { sys::fastai_c10d_free_string(message) };
    Err(Error::Msg(format!("{what}: {}", readable(&text))))
}

/// c10d's message without the C++ source location it starts with, and with what to do when the
/// cause is another rank's end.
fn readable(text: &str) -> String {
    let mut t = text.trim();
    if t.starts_with('[') {
        if let Some(end) = t.find("] ") {
            if t[..end].contains(".cc:") || t[..end].contains(".cpp:") {
                t = t[end + 2..].trim_start();
            }
        }
    }
    let t = t.split(" GLHF").next().unwrap_or(t).trim_end();
    if t.contains("Connection closed by peer") || t.contains("Connection reset by peer") {
        format!("{t} (another rank ended - crashed or stopped: its own output says why)")
    } else {
        t.to_string()
    }
}

fn c_string(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Msg(format!("{what}: {s:?} contains a NUL byte")))
}

fn millis(d: Duration) -> i64 {
    d.as_millis().clamp(1, i64::MAX as u128) as i64
}

/// A rendezvous store: where ranks find each other (c10d's `TCPStore` across processes and
/// machines, `HashStore` between threads of one process). Cheap to share: the process group
/// keeps its own reference.
pub struct Store {
    ptr: *mut c_void,
    describe: String,
}

// SAFETY: c10d's stores are thread-safe (TCPStore's client serializes its requests; HashStore
// locks), and the box itself is never mutated after creation.
unsafe impl Send for Store {}
unsafe impl Sync for Store {}

impl Store {
    /// A TCP store at `host:port`. Rank 0 passes `is_server` and listens there (waiting up to
    /// `timeout` for the `world_size - 1` others to connect); the other ranks connect, retrying
    /// until `timeout`.
    pub fn tcp(
        host: &str,
        port: u16,
        world_size: usize,
        is_server: bool,
        timeout: Duration,
    ) -> Result<Store> {
        require()?;
        // c10d retries an address it cannot resolve until the timeout (30 minutes by default):
        // a misspelt MASTER_ADDR is better said at once
        use std::net::ToSocketAddrs;
        if let Err(e) = (host, port).to_socket_addrs() {
            return Err(Error::Msg(format!(
                "the rendezvous address {host:?} cannot be resolved ({e}): set MASTER_ADDR to rank \
                 0's machine (an IP address or a name this machine resolves)"
            )));
        }
        let c_host = c_string("the store's host", host)?;
        let mut ptr = std::ptr::null_mut();
        let role = if is_server { "serving" } else { "joining" };
        let what =
            format!("{role} the rendezvous store at {host}:{port} (world size {world_size})");
        // SAFETY: valid C string; `ptr` is written only on success.
        check(&what, unsafe {
            sys::fastai_c10d_tcp_store(
                c_host.as_ptr(),
                port,
                world_size as c_int,
                is_server as c_int,
                // the server does not block its constructor waiting for the clients: the
                // process group's own rendezvous waits (with the same timeout)
                0,
                millis(timeout),
                &mut ptr,
            )
        })
        .map_err(|e| explain_store_error(e, host, port, is_server))?;
        Ok(Store {
            ptr,
            describe: format!("tcp://{host}:{port}"),
        })
    }

    /// An in-memory store for process groups of threads of this process (tests, examples).
    pub fn hash() -> Result<Store> {
        require()?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: `ptr` is written only on success.
        check("creating an in-memory store", unsafe {
            sys::fastai_c10d_hash_store(&mut ptr)
        })?;
        Ok(Store {
            ptr,
            describe: "in-memory".into(),
        })
    }

    /// Sets `key` (visible to every rank).
    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let c_key = c_string("store key", key)?;
        // SAFETY: live store, valid key and buffer.
        check(&format!("setting {key:?} in the store"), unsafe {
            sys::fastai_c10d_store_set(self.ptr, c_key.as_ptr(), value.as_ptr(), value.len())
        })
    }

    /// The value of `key`, waiting (up to the store's timeout) until some rank sets it.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let c_key = c_string("store key", key)?;
        let (mut data, mut len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: live store; `data` is malloc'd by the shim on success, freed below.
        check(&format!("reading {key:?} from the store"), unsafe {
            sys::fastai_c10d_store_get(self.ptr, c_key.as_ptr(), &mut data, &mut len)
        })?;
        let value = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
        unsafe { sys::fastai_c10d_free_bytes(data) };
        Ok(value)
    }

    /// Adds `amount` to the counter `key` and returns the new value (atomic across ranks).
    pub fn add(&self, key: &str, amount: i64) -> Result<i64> {
        let c_key = c_string("store key", key)?;
        let mut result = 0i64;
        // SAFETY: live store, valid key.
        check(&format!("adding to {key:?} in the store"), unsafe {
            sys::fastai_c10d_store_add(self.ptr, c_key.as_ptr(), amount, &mut result)
        })?;
        Ok(result)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: the box was made by the shim and is dropped once.
        unsafe { sys::fastai_c10d_store_free(self.ptr) }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.describe)
    }
}

fn explain_store_error(e: Error, host: &str, port: u16, is_server: bool) -> Error {
    let text = e.to_string();
    let hint = if is_server && (text.contains("in use") || text.contains("EADDRINUSE")) {
        format!(
            " - port {port} is already taken (another training still running?): choose a free \
             one with MASTER_PORT"
        )
    } else if text.contains("resolve")
        || text.contains("getaddrinfo")
        || text.contains("Name or service")
    {
        format!(" - {host:?} is not an address this machine can resolve: check MASTER_ADDR")
    } else if !is_server && (text.contains("timed out") || text.contains("Timeout")) {
        format!(
            " - rank 0 never answered at {host}:{port}: check MASTER_ADDR / MASTER_PORT and \
             that rank 0 is running"
        )
    } else {
        String::new()
    };
    Error::Msg(format!("{text}{hint}"))
}

/// How [`ProcessGroup::all_reduce`] combines the ranks' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    /// The mean over the ranks (a sum, then a division by the number of ranks; floating-point
    /// tensors only).
    Avg,
    Product,
    Min,
    Max,
}

/// A group of ranks that run collectives together (c10d's Gloo backend: CPU tensors, TCP
/// between ranks). Every rank must call the same collectives in the same order.
pub struct ProcessGroup {
    ptr: *mut c_void,
    rank: usize,
    size: usize,
    /// NCCL: the rank's GPU, where CPU tensors are moved for a collective (and back).
    cuda: Option<usize>,
}

type NcclNew =
    unsafe extern "C" fn(*mut c_void, c_int, c_int, i64, *mut *mut c_void) -> *mut c_char;

/// The NCCL half of the shim (a shared library of its own, see build.rs), loaded once.
fn nccl_constructor() -> Result<NcclNew> {
    static LOADED: std::sync::OnceLock<std::result::Result<NcclNew, String>> =
        std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let Some(path) = option_env!("FASTAI_C10D_NCCL_SO") else {
                return Err(format!(
                    "NCCL is not available in this build of the library: {} (Gloo works on \
                     GPUs too, through the host: FASTAI_DIST_BACKEND=gloo)",
                    option_env!("FASTAI_NCCL_UNAVAILABLE").unwrap_or("reason unknown")
                ));
            };
            // SAFETY: our own shim; its initialisers only register c10d's types.
            let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
                format!(
                    "loading NCCL support ({path}): {e} - the CUDA libtorch's libraries \
                     (libtorch_cuda, libcudart, libnccl) must be installed (./install.sh --cuda)"
                )
            })?;
            // SAFETY: the symbol has this signature (csrc/c10d_nccl.cpp).
            let f: NcclNew = unsafe { lib.get::<NcclNew>(b"fastai_c10d_nccl\0") }
                .map(|s| *s)
                .map_err(|e| format!("{path} lacks fastai_c10d_nccl: {e}"))?;
            std::mem::forget(lib); // the process groups it makes live as long as the process
            Ok(f)
        })
        .clone()
        .map_err(Error::Msg)
}

// SAFETY: c10d backends are made to be called from any thread (one at a time per group, which
// `&mut` tensors and the learner's single loop give).
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl ProcessGroup {
    /// Joins a Gloo group of `size` ranks as `rank`, meeting the others through `store`.
    /// Collectives fail after `timeout` without an answer, and at once when a peer's connection
    /// closes (it died). The transport binds to the interface in `GLOO_SOCKET_IFNAME` when set,
    /// else to the address of `MASTER_ADDR`'s side of this machine (127.0.0.1 for local runs).
    pub fn gloo(store: &Store, rank: usize, size: usize, timeout: Duration) -> Result<Self> {
        let host = transport_host(std::env::var("MASTER_ADDR").ok().as_deref());
        Self::gloo_on(store, rank, size, timeout, &host)
    }

    /// [`gloo`](Self::gloo) binding its transport to the address `hostname` resolves to.
    pub fn gloo_on(
        store: &Store,
        rank: usize,
        size: usize,
        timeout: Duration,
        hostname: &str,
    ) -> Result<Self> {
        require()?;
        if size == 0 || rank >= size {
            return Err(Error::Msg(format!(
                "rank {rank} is not in a group of {size}: ranks go from 0 to WORLD_SIZE - 1"
            )));
        }
        let interface = std::env::var("GLOO_SOCKET_IFNAME").unwrap_or_default();
        let c_host = c_string("the transport's host", hostname)?;
        let c_iface = c_string("GLOO_SOCKET_IFNAME", &interface)?;
        let mut ptr = std::ptr::null_mut();
        let what = format!(
            "rank {rank} of {size} joining the Gloo group through the {} store",
            store.describe
        );
        // SAFETY: live store, valid C strings; `ptr` is written only on success.
        check(&what, unsafe {
            sys::fastai_c10d_gloo(
                store.ptr,
                rank as c_int,
                size as c_int,
                millis(timeout),
                c_host.as_ptr(),
                c_iface.as_ptr(),
                &mut ptr,
            )
        })?;
        Ok(ProcessGroup {
            ptr,
            rank,
            size,
            cuda: None,
        })
    }

    /// Joins a NCCL group (GPUs only; libtorch's CUDA build) of `size` ranks as `rank`, whose
    /// GPU is `cuda:gpu`. Collectives take CUDA tensors; CPU tensors are moved to the rank's GPU
    /// for the call and the result copied back.
    pub fn nccl(
        store: &Store,
        rank: usize,
        size: usize,
        gpu: usize,
        timeout: Duration,
    ) -> Result<Self> {
        require()?;
        if size == 0 || rank >= size {
            return Err(Error::Msg(format!(
                "rank {rank} is not in a group of {size}: ranks go from 0 to WORLD_SIZE - 1"
            )));
        }
        let make = nccl_constructor()?;
        let mut ptr = std::ptr::null_mut();
        let what = format!(
            "rank {rank} of {size} joining the NCCL group through the {} store",
            store.describe
        );
        // SAFETY: live store; `ptr` is written only on success.
        check(&what, unsafe {
            make(
                store.ptr,
                rank as c_int,
                size as c_int,
                millis(timeout),
                &mut ptr,
            )
        })?;
        Ok(ProcessGroup {
            ptr,
            rank,
            size,
            cuda: Some(gpu),
        })
    }

    /// "gloo" or "nccl".
    pub fn backend(&self) -> &'static str {
        if self.cuda.is_some() {
            "nccl"
        } else {
            "gloo"
        }
    }

    /// Runs `op` on the tensors, on the rank's GPU for a NCCL group (copying CPU tensors there
    /// and the results back).
    fn on_device(
        &self,
        tensors: &mut [&mut Tensor],
        op: impl FnOnce(&mut [&mut Tensor]) -> Result<()>,
    ) -> Result<()> {
        let Some(gpu) = self.cuda else {
            return op(tensors);
        };
        let device = tch::Device::Cuda(gpu);
        let moved: Vec<bool> = tensors.iter().map(|t| t.device() != device).collect();
        let mut staged: Vec<Tensor> = tensors
            .iter()
            .zip(&moved)
            .map(|(t, &m)| {
                if m {
                    t.to_device(device)
                } else {
                    t.shallow_clone()
                }
            })
            .collect();
        let mut refs: Vec<&mut Tensor> = staged.iter_mut().collect();
        op(&mut refs)?;
        for ((t, s), m) in tensors.iter_mut().zip(&staged).zip(moved) {
            if m {
                t.copy_(s);
            }
        }
        Ok(())
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Reduces each tensor across ranks, in place: afterwards every rank holds the same result.
    /// Tensors must be dense and contiguous, and alike on every rank.
    pub fn all_reduce(&self, tensors: &mut [&mut Tensor], op: ReduceOp) -> Result<()> {
        check_dense("all_reduce", tensors.iter().map(|t| &**t))?;
        if op == ReduceOp::Avg && tensors.iter().any(|t| !t.is_floating_point()) {
            return Err(Error::Msg(
                "all_reduce with ReduceOp::Avg needs floating-point tensors (use Sum for counts)"
                    .into(),
            ));
        }
        let code = match op {
            ReduceOp::Sum | ReduceOp::Avg => 0,
            ReduceOp::Product => 1,
            ReduceOp::Min => 2,
            ReduceOp::Max => 3,
        };
        self.on_device(tensors, |tensors| {
            let mut ptrs: Vec<_> = tensors.iter_mut().map(|t| t.as_mut_ptr()).collect();
            // SAFETY: live group; the pointers are tch tensors borrowed for the call.
            check(&self.what("all_reduce"), unsafe {
                sys::fastai_c10d_all_reduce(self.ptr, ptrs.as_mut_ptr(), ptrs.len(), code)
            })
        })?;
        if op == ReduceOp::Avg {
            let _guard = tch::no_grad_guard();
            for t in tensors.iter_mut() {
                let _ = t.divide_scalar_(self.size as f64);
            }
        }
        Ok(())
    }

    /// [`all_reduce`](Self::all_reduce) of many tensors (a model's gradients) in a few large
    /// collectives: they are flattened into buckets of at most `bucket_bytes` (by type and
    /// device, in the order given - which must be the same on every rank), reduced, and copied
    /// back. The tensors are handles to what is reduced (e.g. `param.grad()`).
    pub fn all_reduce_bucketed(
        &self,
        tensors: &[Tensor],
        op: ReduceOp,
        bucket_bytes: usize,
    ) -> Result<()> {
        in_buckets(tensors, bucket_bytes, |flat| {
            self.all_reduce(&mut [flat], op)
        })
    }

    /// [`broadcast`](Self::broadcast) of many tensors in buckets, as
    /// [`all_reduce_bucketed`](Self::all_reduce_bucketed).
    pub fn broadcast_bucketed(
        &self,
        tensors: &[Tensor],
        root: usize,
        bucket_bytes: usize,
    ) -> Result<()> {
        in_buckets(tensors, bucket_bytes, |flat| {
            self.broadcast(&mut [flat], root)
        })
    }

    /// Overwrites each tensor with rank `root`'s.
    pub fn broadcast(&self, tensors: &mut [&mut Tensor], root: usize) -> Result<()> {
        check_dense("broadcast", tensors.iter().map(|t| &**t))?;
        if root >= self.size {
            return Err(Error::Msg(format!(
                "broadcast from rank {root} in a group of {}",
                self.size
            )));
        }
        self.on_device(tensors, |tensors| {
            let mut ptrs: Vec<_> = tensors.iter_mut().map(|t| t.as_mut_ptr()).collect();
            // SAFETY: as in all_reduce.
            check(&self.what("broadcast"), unsafe {
                sys::fastai_c10d_broadcast(self.ptr, ptrs.as_mut_ptr(), ptrs.len(), root as c_int)
            })
        })
    }

    /// Every rank's `input`, in rank order (each shaped as `input`).
    pub fn all_gather(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        let back = input.device();
        let mut input = match self.cuda {
            Some(gpu) => input.to_device(tch::Device::Cuda(gpu)).contiguous(),
            None => input.contiguous(),
        };
        check_dense("all_gather", std::iter::once(&input))?;
        let mut outputs: Vec<Tensor> = (0..self.size).map(|_| input.empty_like()).collect();
        let mut ptrs: Vec<_> = outputs.iter_mut().map(|t| t.as_mut_ptr()).collect();
        // SAFETY: as in all_reduce.
        check(&self.what("all_gather"), unsafe {
            sys::fastai_c10d_all_gather(self.ptr, input.as_mut_ptr(), ptrs.as_mut_ptr(), ptrs.len())
        })?;
        Ok(outputs.into_iter().map(|t| t.to_device(back)).collect())
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: live group.
        check(&self.what("barrier"), unsafe {
            sys::fastai_c10d_barrier(self.ptr)
        })
    }

    fn what(&self, op: &str) -> String {
        format!("{op} on rank {} of {}", self.rank, self.size)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: made by the shim, dropped once.
        unsafe { sys::fastai_c10d_group_free(self.ptr) }
    }
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProcessGroup({}, rank {} of {})",
            self.backend(),
            self.rank,
            self.size
        )
    }
}

fn check_dense<'a>(op: &str, tensors: impl Iterator<Item = &'a Tensor>) -> Result<()> {
    for t in tensors {
        if !t.defined() || !t.is_contiguous() {
            return Err(Error::Msg(format!(
                "{op}: every tensor must be defined and contiguous (call .contiguous() first)"
            )));
        }
    }
    Ok(())
}

/// The address Gloo's transport binds to: `FASTAI_GLOO_HOST` when set, 127.0.0.1 when the
/// master (`master_addr`) is this machine's loopback, else this machine's hostname (what c10d's
/// default device resolves).
pub(crate) fn transport_host(master_addr: Option<&str>) -> String {
    if let Ok(host) = std::env::var("FASTAI_GLOO_HOST") {
        return host;
    }
    match master_addr {
        None | Some("127.0.0.1") | Some("localhost") | Some("::1") => "127.0.0.1".into(),
        Some(_) => hostname(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// Runs `collective` on each bucket of `tensors` (see [`buckets`]) flattened into one tensor,
/// and copies the result back into the tensors.
fn in_buckets(
    tensors: &[Tensor],
    bucket_bytes: usize,
    mut collective: impl FnMut(&mut Tensor) -> Result<()>,
) -> Result<()> {
    let _guard = tch::no_grad_guard();
    for bucket in buckets(tensors, bucket_bytes) {
        let group: Vec<&Tensor> = bucket.iter().map(|&i| &tensors[i]).collect();
        let mut flat = flatten(&group);
        collective(&mut flat)?;
        unflatten_into(&flat, &group);
    }
    Ok(())
}

/// Indices of `tensors` grouped into buckets of at most `max_bytes` (a larger tensor is a bucket
/// of its own), by dtype and device so that each bucket flattens into one tensor.
fn buckets(tensors: &[Tensor], max_bytes: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<(tch::Kind, tch::Device, usize, Vec<usize>)> = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        let (kind, device) = (t.kind(), t.device());
        let bytes = t.numel() * kind.elt_size_in_bytes();
        match out.iter_mut().rev().find(|b| b.0 == kind && b.1 == device) {
            Some(b) if b.2 + bytes <= max_bytes => {
                b.2 += bytes;
                b.3.push(i);
            }
            _ => out.push((kind, device, bytes, vec![i])),
        }
    }
    out.into_iter().map(|b| b.3).collect()
}

fn flatten(tensors: &[&Tensor]) -> Tensor {
    let flat: Vec<Tensor> = tensors.iter().map(|t| t.reshape([-1])).collect();
    Tensor::cat(&flat, 0)
}

fn unflatten_into(flat: &Tensor, tensors: &[&Tensor]) {
    let mut offset = 0;
    for t in tensors {
        let n = t.numel() as i64;
        let mut dst = t.shallow_clone();
        dst.copy_(&flat.narrow(0, offset, n).view_as(t));
        offset += n;
    }
}
