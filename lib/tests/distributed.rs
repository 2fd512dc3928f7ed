//! Data-parallel training on c10d's Gloo over 127.0.0.1: the collectives across 2 and 3 ranks
//! (threads sharing an in-memory store, and processes meeting at a TCP store), two ranks training
//! on half batches ending where one process on the full batches ends, a rank that dies failing
//! the others quickly, and bad rendezvous settings as clear errors.
//!
//! The process tests start this test binary again as the ranks: `rank_process` below is their
//! entry point, and does nothing in a normal run.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastai::distributed::{
    launch, DistContext, LaunchOptions, ProcessGroup, RankOutput, ReduceOp, Store,
};
use fastai::vision::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `body(rank, group)` on `world` threads joined in one Gloo group; returns their results.
fn on_threads<T: Send + 'static>(
    world: usize,
    body: impl Fn(usize, ProcessGroup) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let store = Arc::new(Store::hash().unwrap());
    let body = Arc::new(body);
    let handles: Vec<_> = (0..world)
        .map(|rank| {
            let (store, body) = (store.clone(), body.clone());
            std::thread::spawn(move || {
                let group = ProcessGroup::gloo_on(&store, rank, world, TIMEOUT, "127.0.0.1")
                    .expect("joining the group");
                body(rank, group)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn collectives(rank: usize, group: &ProcessGroup) -> Vec<f32> {
    let world = group.size();
    // all-reduce: ranks hold rank+1 in 3 floats and a large tensor; the sum is world(world+1)/2
    let mut small = Tensor::full([3], rank as f64 + 1.0, (Kind::Float, Device::Cpu));
    let mut big = Tensor::ones([1 << 16], (Kind::Float, Device::Cpu)) * (rank as f64 + 1.0);
    group
        .all_reduce(&mut [&mut small, &mut big], ReduceOp::Sum)
        .unwrap();
    let want = (world * (world + 1) / 2) as f64;
    assert_eq!(Vec::<f32>::try_from(&small).unwrap(), vec![want as f32; 3]);
    assert_eq!(big.min().double_value(&[]), want);
    assert_eq!(big.max().double_value(&[]), want);
    let mut m = Tensor::from_slice(&[rank as i64 * 10]);
    group.all_reduce(&mut [&mut m], ReduceOp::Max).unwrap();
    assert_eq!(m.int64_value(&[0]), (world as i64 - 1) * 10);
    // broadcast from the last rank
    let mut b = Tensor::from_slice(&[rank as f32, -(rank as f32)]);
    group.broadcast(&mut [&mut b], world - 1).unwrap();
    assert_eq!(
        Vec::<f32>::try_from(&b).unwrap(),
        vec![(world - 1) as f32, -((world - 1) as f32)]
    );
    group.barrier().unwrap();
    // the mean, and many tensors in small buckets (three buckets of at most 16 bytes, one of
    // them a larger tensor alone)
    let mut a = Tensor::from_slice(&[rank as f64 * 2.0]);
    group.all_reduce(&mut [&mut a], ReduceOp::Avg).unwrap();
    assert_eq!(a.double_value(&[0]), (world - 1) as f64);
    let many: Vec<Tensor> = [2i64, 2, 9, 1]
        .iter()
        .map(|&n| Tensor::ones([n], (Kind::Float, Device::Cpu)) * (rank as f64 + 1.0))
        .collect();
    group.all_reduce_bucketed(&many, ReduceOp::Sum, 16).unwrap();
    for t in &many {
        assert_eq!(t.min().double_value(&[]), want);
        assert_eq!(t.max().double_value(&[]), want);
    }
    let mut ints = Tensor::from_slice(&[1i64]);
    assert!(group.all_reduce(&mut [&mut ints], ReduceOp::Avg).is_err());
    // all-gather: each rank's [rank, rank*rank]
    let parts = group
        .all_gather(&Tensor::from_slice(&[rank as f32, (rank * rank) as f32]))
        .unwrap();
    parts
        .iter()
        .flat_map(|t| Vec::<f32>::try_from(t).unwrap())
        .collect()
}

#[test]
fn collectives_across_two_and_three_threads() {
    for world in [2usize, 3] {
        let gathered = on_threads(world, |rank, group| collectives(rank, &group));
        let want: Vec<f32> = (0..world)
            .flat_map(|r| [r as f32, (r * r) as f32])
            .collect();
        for g in gathered {
            assert_eq!(g, want, "world {world}");
        }
    }
}

#[test]
fn a_barrier_waits_for_the_slowest_rank() {
    let times = on_threads(2, |rank, group| {
        if rank == 1 {
            std::thread::sleep(Duration::from_millis(600));
        }
        let start = Instant::now();
        group.barrier().unwrap();
        start.elapsed()
    });
    assert!(
        times[0] >= Duration::from_millis(400),
        "rank 0 waited {:?}",
        times[0]
    );
}

#[test]
fn bad_shapes_and_ranks_are_errors() {
    let store = Store::hash().unwrap();
    let e = ProcessGroup::gloo_on(&store, 2, 2, TIMEOUT, "127.0.0.1").unwrap_err();
    assert!(
        e.to_string().contains("rank 2 is not in a group of 2"),
        "{e}"
    );
    let results = on_threads(2, |_, group| {
        let t = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        let mut strided = t.transpose(0, 1);
        group
            .all_reduce(&mut [&mut strided], ReduceOp::Sum)
            .map_err(|e| e.to_string())
    });
    for r in results {
        assert!(r.unwrap_err().contains("contiguous"));
    }
}

// ---- a model and data for the training tests -----------------------------------------------

#[derive(Debug)]
struct Mlp {
    a: nn::Linear,
    b: nn::Linear,
}

impl nn::Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.a).relu().apply(&self.b)
    }
}

/// The same weights for the same `seed`, whatever other threads draw meanwhile: the weights come
/// from a formula, not from libtorch's global random generator (which the test harness's threads
/// and a test's ranks share - seeding it here raced with the other rank seeding it too).
fn mlp(seed: i64) -> Net<Mlp> {
    let net = Net::new(Device::Cpu, |p| Mlp {
        a: nn::linear(p / "a", 8, 16, Default::default()),
        b: nn::linear(p / "b", 16, 3, Default::default()),
    });
    let mut vars = net.var_store().variables().into_iter().collect::<Vec<_>>();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (k, (_, mut t)) in vars.into_iter().enumerate() {
            let n = t.numel() as i64;
            let phase = seed as f64 * 1.3 + k as f64;
            let v = ((Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.713 + phase).sin() * 0.3)
                .reshape(t.size());
            t.copy_(&v);
        }
    });
    net
}

/// 96 training and 30 validation items, 8 features, 3 classes (the same on every call).
fn data(bs: usize) -> DataBunch {
    let gen = |n: i64, seed: i64| {
        let g = Tensor::from_slice(&[seed as f32]);
        let x =
            (Tensor::arange(n * 8, (Kind::Float, Device::Cpu)).reshape([n, 8]) * 0.37 + g).sin();
        let y = (x.sum_dim_intlist(1, false, Kind::Float) * 3.0)
            .abs()
            .floor()
            .remainder(3)
            .to_kind(Kind::Int64);
        (x, y)
    };
    DataBunch::from_tensors(gen(96, 1), gen(30, 2), bs).unwrap()
}

fn weights(learn: &Learner<DataBunch>) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = learn
        .model
        .var_store()
        .variables()
        .into_iter()
        .map(|(k, t)| (k, t.detach().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn assert_close(a: &[(String, Tensor)], b: &[(String, Tensor)], rel: f64) {
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        let diff = (ta - tb).abs().max().double_value(&[]);
        let scale = tb.abs().max().double_value(&[]).max(1e-12);
        assert!(
            diff / scale <= rel,
            "{na}: max difference {diff} of {scale}"
        );
    }
}

/// Trains `epochs` epochs at a constant rate; returns the weights, validation loss and accuracy.
fn train(learn: &mut Learner<DataBunch>, epochs: usize) -> (f64, f64) {
    learn.fit(epochs, 1e-2).unwrap();
    let (loss, metrics) = learn.validate().unwrap();
    (loss, metrics[0].1)
}

#[test]
fn two_ranks_on_half_batches_end_where_one_process_on_full_batches_ends() {
    // one process, batches of 16
    let mut single = Learner::new(data(16), mlp(0), cross_entropy_flat(), &[accuracy]).unwrap();
    single.remove_cb::<ProgressCallback>();
    let (loss1, acc1) = train(&mut single, 3);
    let want = weights(&single);
    // the recorder saw 6 batches per epoch
    assert_eq!(single.recorder.losses.len(), 18);

    // two ranks, batches of 8 each; rank 1 starts from other weights (rank 0's are broadcast)
    let results = on_threads(2, |rank, group| {
        let ctx = DistContext::from_group(group, None, rank);
        let mut learn = Learner::new(
            data(8),
            mlp(rank as i64 * 7),
            cross_entropy_flat(),
            &[accuracy],
        )
        .unwrap();
        learn.remove_cb::<ProgressCallback>();
        learn.to_distributed(&ctx).unwrap();
        learn.fit(3, 1e-2).unwrap();
        let steps = learn.recorder.losses.len();
        let valid = (
            learn.recorder.valid_losses.last().copied().unwrap(),
            learn.recorder.metrics.last().unwrap()[0].1,
        );
        (weights(&learn), steps, valid)
    });
    for (w, steps, _) in &results {
        assert_eq!(*steps, 18, "each rank takes the same 6 steps per epoch");
        assert_close(w, &want, 1e-5);
    }
    // the metrics of the last epoch are the whole validation set's, on both ranks
    for (_, _, (loss, acc)) in &results {
        assert!(
            (loss - loss1).abs() < 1e-5 * loss1.abs().max(1.0),
            "{loss} vs {loss1}"
        );
        assert!((acc - acc1).abs() < 1e-9, "{acc} vs {acc1}");
    }
    // outside a fit the data is whole again: validate() on one rank alone needs no peer
}

// ---- processes: the TCP store, the launcher, a rank that dies, bad settings -----------------

/// Starts this test binary as the ranks, running `rank_process` in role `role`.
fn child_command(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "rank_process", "--nocapture", "--test-threads=1"])
        .env("FASTAI_TEST_ROLE", role)
        .env("FASTAI_DIST_TIMEOUT", "60");
    cmd
}

/// Entry point of the ranks the process tests start (does nothing in a normal test run).
#[test]
fn rank_process() {
    let Ok(role) = std::env::var("FASTAI_TEST_ROLE") else {
        return;
    };
    let ctx = DistContext::from_env().expect("joining the run");
    match role.as_str() {
        "collectives" => {
            let gathered = collectives(ctx.rank, ctx.group().unwrap());
            println!("gathered {gathered:?}");
        }
        "die" => {
            // rank 1 trains two batches, then dies; rank 0 must fail, not hang
            let mut learn =
                Learner::new(data(8), mlp(0), cross_entropy_flat(), &[accuracy]).unwrap();
            learn.to_distributed(&ctx).unwrap();
            if ctx.rank == 1 {
                learn.add_cb(DieAfter(2));
            }
            let start = Instant::now();
            let r = learn.fit(50, 1e-2);
            println!(
                "fit ended after {:.1} s: {}",
                start.elapsed().as_secs_f64(),
                match &r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error: {e}"),
                }
            );
            if r.is_ok() {
                std::process::exit(1);
            }
        }
        "launch-fail" => {
            if ctx.rank == 1 {
                println!("rank 1 failing");
                std::process::exit(7);
            }
            println!("rank 0 waiting");
            std::thread::sleep(Duration::from_secs(120));
        }
        other => panic!("unknown role {other}"),
    }
}

struct DieAfter(usize);

impl Callback for DieAfter {
    fn after_batch(&mut self, learn: &mut AnyLearner) {
        if learn.state.training && learn.state.iter >= self.0 {
            std::process::exit(3);
        }
    }
}

#[test]
fn three_processes_run_the_collectives_through_the_launcher() {
    let exe = std::env::current_exe().unwrap();
    let opts = LaunchOptions {
        nproc: 3,
        threads_per_rank: Some(1),
        output: RankOutput::Prefixed,
        env: vec![
            ("FASTAI_TEST_ROLE".into(), "collectives".into()),
            ("FASTAI_DIST_TIMEOUT".into(), "60".into()),
        ],
        ..LaunchOptions::default()
    };
    let args: Vec<std::ffi::OsString> = ["--exact", "rank_process", "--nocapture"]
        .iter()
        .map(Into::into)
        .collect();
    launch(&opts, &exe.into_os_string(), &args).unwrap();
}

#[test]
fn a_rank_that_dies_fails_the_others_within_seconds() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start = move |rank: usize| {
        child_command("die")
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", "2")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("OMP_NUM_THREADS", "1")
            .output()
    };
    let t0 = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|r| std::thread::spawn(move || start(r).unwrap()))
        .collect();
    let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let elapsed = t0.elapsed();
    assert_eq!(outs[1].status.code(), Some(3), "rank 1 died as planned");
    let text = String::from_utf8_lossy(&outs[0].stdout);
    assert!(
        outs[0].status.success(),
        "rank 0: {text}\n{}",
        String::from_utf8_lossy(&outs[0].stderr)
    );
    assert!(
        text.contains("fit ended after") && text.contains("error"),
        "{text}"
    );
    assert!(
        text.contains("rank 0 of 2"),
        "the error names the rank: {text}"
    );
    assert!(
        elapsed < Duration::from_secs(50),
        "took {elapsed:?} (timeout 60 s)"
    );
}

#[test]
fn a_port_in_use_and_a_bad_address_are_clear_errors() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = Store::tcp("127.0.0.1", port, 2, true, Duration::from_secs(5)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&port.to_string()) && text.contains("MASTER_PORT"),
        "{text}"
    );

    let start = Instant::now();
    let e = DistContext::from_vars(|k| match k {
        "RANK" => Some("1".into()),
        "WORLD_SIZE" => Some("2".into()),
        "MASTER_ADDR" => Some("no-such-host.invalid".into()),
        "MASTER_PORT" => Some("29511".into()),
        _ => None,
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("MASTER_ADDR") || e.contains("no-such-host"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "{:?}",
        start.elapsed()
    );

    for (vars, want) in [
        (vec![("RANK", "0")], "WORLD_SIZE is not"),
        (
            vec![("RANK", "2"), ("WORLD_SIZE", "2")],
            "below the world size",
        ),
        (vec![("RANK", "x"), ("WORLD_SIZE", "2")], "not a number"),
        (
            vec![("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "99999")],
            "not a port",
        ),
    ] {
        let e = DistContext::from_vars(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains(want), "{vars:?}: {e}");
    }
    let single = DistContext::from_vars(|_| None).unwrap();
    assert!(!single.is_distributed() && single.is_main());
}

#[test]
fn fastai_launch_prefixes_each_rank_and_ends_the_others_when_one_fails() {
    let launcher = env!("CARGO_BIN_EXE_fastai-launch");
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let out = Command::new(launcher)
        .args(["--nproc", "2", "--threads", "1", "--grace", "2"])
        .arg(&exe)
        .args(["--exact", "rank_process", "--nocapture"])
        .env("FASTAI_TEST_ROLE", "launch-fail")
        .env("FASTAI_DIST_TIMEOUT", "60")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("[rank 1] rank 1 failing"), "{stdout}");
    assert!(stderr.contains("rank 1 failed (exit code 7)"), "{stderr}");
    assert!(stderr.contains("rank 0: killed by signal 15"), "{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );

    let out = Command::new(launcher).arg("true").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nproc N is required"));
    let out = Command::new(launcher)
        .args(["--nproc", "1", "--master", "somewhere", "true"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected ADDR:PORT"));
}

#[test]
fn a_notebook_cell_launches_two_ranks_of_its_training_function() {
    // what a cell does; the worker is compiled against this library's release build
    let r = fastai::notebook_launcher!(2, {
        fn train(ctx: &DistContext) -> fastai::Result<()> {
            tch::manual_seed(1); // the same data on every rank
            let x = Tensor::randn([64, 4], (Kind::Float, Device::Cpu));
            let y = x
                .sum_dim_intlist(1, false, Kind::Float)
                .gt(0.0)
                .to_kind(Kind::Int64);
            let data = DataBunch::from_tensors(
                (x.narrow(0, 0, 48), y.narrow(0, 0, 48)),
                (x.narrow(0, 48, 16), y.narrow(0, 48, 16)),
                8,
            )?;
            tch::manual_seed(0);
            let model = Net::new(Device::Cpu, |p| {
                nn::linear(p / "lin", 4, 2, Default::default())
            });
            let mut learn = Learner::new(data, model, cross_entropy_flat(), &[accuracy])?;
            learn.to_distributed(ctx)?;
            learn.fit(2, 0.1)?;
            println!("rank {} of {} done", ctx.rank, ctx.world_size);
            Ok(())
        }
    });
    r.unwrap();
}

#[test]
fn nccl_is_made_on_a_gpu_or_refused_with_a_reason() {
    let store = Store::hash().unwrap();
    match ProcessGroup::nccl(&store, 0, 1, 0, TIMEOUT) {
        // a machine with a GPU and the CUDA libraries
        Ok(group) => assert_eq!(group.backend(), "nccl"),
        Err(e) => {
            let e = e.to_string();
            eprintln!("NCCL refused: {e}");
            if fastai::distributed::nccl_built() {
                // built against the CUDA libtorch, but this machine cannot load or use it
                assert!(
                    e.contains("NCCL") || e.contains("CUDA") || e.contains("cuda"),
                    "{e}"
                );
            } else {
                assert!(e.contains("NCCL is not available in this build"), "{e}");
                assert!(e.contains("FASTAI_DIST_BACKEND=gloo"), "{e}");
            }
        }
    }
}
