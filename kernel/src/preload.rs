//! Preloading the fastai library, so the first cell that trains does not compile libtorch's
//! bindings for minutes.
//!
//! evcxr compiles every dependency of the cells into its build folder (`EVCXR_TMPDIR`). A kernel
//! that reuses a folder where `fastai` was already compiled starts in seconds; a fresh folder
//! costs minutes. But only one evcxr process may use a folder at a time. So the kernel keeps a
//! pool of build folders, *slots* (`<cache>/slot-N`), each with a lock file: a starting kernel
//! takes the first slot it can lock (`std::fs::File::try_lock`, released when the process exits,
//! even by a crash), and `fastai-kernel prepare` compiles the library into the first slots at
//! install time.
//!
//! Paths (defaults set at build time, overridable by the kernelspec's environment):
//! - `FASTAI_LIB_DIR`: the `fastai` crate (`<repo>/lib`); preloading is off if it does not exist
//! - `FASTAI_KERNEL_CACHE`: the slots' parent folder (`<repo>/target/evcxr`)

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

/// The library crate to preload.
pub fn lib_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FASTAI_LIB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("lib")
        });
    let dir = dir.canonicalize().ok()?;
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// Where the slots live.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FASTAI_KERNEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("evcxr")
        })
}

/// The code every kernel runs first: the library as a dependency, the lesson's import, and the
/// library's SIGINT handler (so the stop button ends training at the next batch instead of
/// killing the process; loops of the user's own can check `interrupted()`). `:efmt {:?}` makes
/// evcxr print errors returned with `?` through `Debug`, which for fastai's errors carries the
/// marker that lets the kernel report the cell as failed.
pub fn preload_code(lib: &std::path::Path) -> String {
    format!(
        ":efmt {{:?}}\n:dep fastai = {{ path = {:?} }}\nuse fastai::vision::*;\nfastai::learner::interrupt::install();",
        lib.display().to_string()
    )
}

/// A locked build folder; the lock lasts as long as this value (or the process).
pub struct Slot {
    pub dir: PathBuf,
    _lock: File,
}

/// Locks the first free slot (creating it if needed).
pub fn acquire_slot() -> Result<Slot> {
    let base = cache_dir();
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    // evcxr's rust-analyzer wants a clean absolute path (no `..`).
    let base = base
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", base.display()))?;
    for index in 0..64 {
        let lock_path = base.join(format!("slot-{index}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        if file.try_lock().is_ok() {
            let dir = base.join(format!("slot-{index}"));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            return Ok(Slot { dir, _lock: file });
        }
    }
    anyhow::bail!(
        "all 64 kernel build folders in {} are in use",
        base.display()
    )
}

/// `fastai-kernel prepare [--slots N]`: compiles the library into the first N slots, so that N
/// kernels can start at once without compiling. Run by install.sh.
pub fn prepare(args: &[String]) -> Result<()> {
    let mut slots = 2usize;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--slots" => {
                slots = args
                    .get(i + 1)
                    .context("--slots needs a number")?
                    .parse()
                    .context("--slots needs a number")?;
                i += 1;
            }
            other => anyhow::bail!("prepare: unknown option {other}"),
        }
        i += 1;
    }
    let lib = lib_dir().context("the fastai library folder was not found (set FASTAI_LIB_DIR)")?;
    crate::server::prepare_cell_environment();
    // Lock the slots one after the other, keeping each lock while it is compiled.
    let mut held = Vec::new();
    for n in 0..slots {
        let slot = acquire_slot()?;
        let t0 = Instant::now();
        // A copy of the first slot's build saves compiling the dependencies again (cargo's
        // fingerprints do not depend on the build folder's location).
        if n > 0 && !slot.dir.join("target").exists() {
            if let Some(first) = held.first() {
                let first: &Slot = first;
                let status = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(first.dir.join("target"))
                    .arg(slot.dir.join("target"))
                    .status();
                if !status.is_ok_and(|s| s.success()) {
                    eprintln!(
                        "(could not copy {}; compiling instead)",
                        first.dir.display()
                    );
                    let _ = std::fs::remove_dir_all(slot.dir.join("target"));
                }
            }
        }
        // SAFETY of set_var: single-threaded here (no engine or runtime started yet).
        std::env::set_var("EVCXR_TMPDIR", &slot.dir);
        let (mut ctx, outputs) =
            evcxr::CommandContext::new().map_err(|e| anyhow::anyhow!("starting evcxr: {e}"))?;
        drop(outputs); // nothing to show; evcxr then discards the cell process's output
        ctx.execute(&preload_code(&lib)).map_err(|e| {
            anyhow::anyhow!(
                "compiling the fastai library in {}: {e}",
                slot.dir.display()
            )
        })?;
        println!(
            "kernel build folder {} ready ({:.0} s)",
            slot.dir.display(),
            t0.elapsed().as_secs_f64()
        );
        drop(ctx);
        held.push(slot);
    }
    Ok(())
}
