//! `fastai-launch`: starts the ranks of a data-parallel run (torchrun's contract, without
//! restarts). See `fastai-launch --help`.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use fastai::distributed::{launch, LaunchOptions, RankOutput};

const HELP: &str = "\
fastai-launch: run N copies of a training program as the ranks of one data-parallel run

usage: fastai-launch --nproc N [--nnodes M --node-rank R --master ADDR:PORT]
                     [--threads T] [--grace SECONDS] [--rank0-raw] program [args...]

  --nproc N          processes on this machine (one per GPU; on a CPU box, a few)
  --nnodes M         machines taking part (default 1); run fastai-launch on each
  --node-rank R      this machine's index, 0..M (default 0)
  --master ADDR:PORT where rank 0 (node 0) serves the rendezvous; required with M > 1,
                     default 127.0.0.1 and a free port
  --threads T        libtorch threads per rank (OMP_NUM_THREADS; default cores / N)
  --grace SECONDS    when one rank fails, how long the others get to end before being
                     killed (default 5)
  --rank0-raw        pass rank 0's stdout through unprefixed (notebook displays)

Each rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
in the program, fastai::distributed::DistContext::from_env() reads them. Output lines
are prefixed with the rank. If one rank fails, the others are stopped and
fastai-launch exits with status 1.";

fn parse() -> Result<(LaunchOptions, OsString, Vec<OsString>), String> {
    let mut opts = LaunchOptions::default();
    let mut nproc = None;
    let mut args = std::env::args_os().skip(1);
    let value = |args: &mut dyn Iterator<Item = OsString>, flag: &str| -> Result<String, String> {
        args.next()
            .and_then(|v| v.into_string().ok())
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    let number = |s: String, flag: &str| -> Result<usize, String> {
        s.parse::<usize>()
            .map_err(|_| format!("{flag} {s:?}: not a number"))
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h") | Some("--help") => {
                println!("{HELP}");
                std::process::exit(0);
            }
            Some("--nproc") | Some("--nproc-per-node") | Some("--nproc_per_node") => {
                nproc = Some(number(value(&mut args, "--nproc")?, "--nproc")?)
            }
            Some("--nnodes") => opts.nnodes = number(value(&mut args, "--nnodes")?, "--nnodes")?,
            Some("--node-rank") | Some("--node_rank") => {
                opts.node_rank = number(value(&mut args, "--node-rank")?, "--node-rank")?
            }
            Some("--threads") => {
                opts.threads_per_rank = Some(number(value(&mut args, "--threads")?, "--threads")?)
            }
            Some("--grace") => {
                let s = value(&mut args, "--grace")?;
                let secs: f64 = s
                    .parse()
                    .map_err(|_| format!("--grace {s:?}: not a number of seconds"))?;
                opts.grace = Duration::from_secs_f64(secs.max(0.0));
            }
            Some("--master") => {
                let s = value(&mut args, "--master")?;
                let (addr, port) = s
                    .rsplit_once(':')
                    .ok_or_else(|| format!("--master {s:?}: expected ADDR:PORT"))?;
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("--master {s:?}: {port:?} is not a port number"))?;
                opts.master = Some((addr.trim_matches(['[', ']']).to_string(), port));
            }
            Some("--rank0-raw") => opts.output = RankOutput::Rank0Raw,
            Some(flag) if flag.starts_with("--") => {
                return Err(format!("unknown option {flag} (see --help)"))
            }
            _ => {
                let rest: Vec<OsString> = args.collect();
                opts.nproc = nproc.ok_or("--nproc N is required")?;
                return Ok((opts, arg, rest));
            }
        }
    }
    Err("no program to run (see --help)".into())
}

fn main() -> ExitCode {
    let (opts, program, args) = match parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fastai-launch: {e}");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C: this launcher stays to report; every rank gets SIGINT and stops its fit
    let opts = LaunchOptions {
        forward_interrupt: true,
        ..opts
    };
    match launch(&opts, &program, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fastai-launch: {e}");
            ExitCode::FAILURE
        }
    }
}
