//! Data-parallel training from a notebook cell (fastai v2's `notebook_launcher`).
//!
//! A notebook's process cannot fork once libtorch has started its threads, and the ranks need a
//! program of their own. So the cell hands over the *source* of its training function: the
//! [`notebook_launcher!`](crate::notebook_launcher) macro takes the items of a block (a
//! `fn train(ctx: &DistContext) -> fastai::Result<()>` and whatever it needs), the library writes
//! them into a small crate next to its own build (`target/fastai-workers/<hash>/`), compiles it
//! with cargo - reusing the library's compiled release build, so after the first time it takes
//! the time of linking - and starts N ranks of it with [`launch`]. Rank 0's output is passed
//! through unchanged, so its progress table updates live in the cell; the other ranks' lines come
//! prefixed on stderr. The stop button stops every rank's fit at the same batch.
//!
//! ```no_run
//! # fn main() -> fastai::Result<()> {
//! fastai::notebook_launcher!(2, {
//!     fn train(ctx: &DistContext) -> fastai::Result<()> {
//!         let data = ImageDataBunch::from_folder(fashion_mnist_dir(), DataOptions::default())?;
//!         let mut learn = cnn_learner(data, models::mobilenet_v2, &[error_rate])?;
//!         learn.to_distributed(ctx)?;
//!         learn.fit_one_cycle(1, None)
//!     }
//! })?;
//! # Ok(()) }
//! ```
//!
//! The block sees `fastai::vision::*` and `fastai::distributed::*`; it does not see the
//! notebook's other cells or variables (each rank is a fresh process): everything `train` uses
//! goes inside the block.

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::launch::{launch, LaunchOptions, RankOutput};
use crate::error::{Error, Result};

/// Starts `nproc` ranks running the items of a block, whose `fn train(ctx: &DistContext) ->
/// fastai::Result<()>` each rank calls. See [the module](crate::distributed::notebook).
#[macro_export]
macro_rules! notebook_launcher {
    ($nproc:expr, { $($items:tt)* }) => {
        $crate::distributed::notebook_launch($nproc, stringify!($($items)*))
    };
}

/// What [`notebook_launcher!`](crate::notebook_launcher) calls: builds a worker program from
/// `source` (items defining `fn train(ctx: &DistContext) -> fastai::Result<()>`) and runs it as
/// `nproc` ranks on this machine.
pub fn notebook_launch(nproc: usize, source: &str) -> Result<()> {
    crate::learner::interrupt::install();
    let exe = build_worker(source)?;
    if crate::learner::interrupt::interrupted() {
        return Err(Error::Msg(
            "notebook_launcher: interrupted while compiling the worker program; nothing ran".into(),
        ));
    }
    let opts = LaunchOptions {
        nproc,
        output: RankOutput::Rank0Raw,
        forward_interrupt: true,
        ..LaunchOptions::default()
    };
    launch(&opts, &OsString::from(exe.as_os_str()), &[])
}

/// The library's own source folder (where the kernel's `FASTAI_LIB_DIR` points, else where it
/// was compiled from).
fn lib_dir() -> PathBuf {
    std::env::var_os("FASTAI_LIB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The folder of the library's workspace build (its `target/`), whose release build the worker
/// reuses.
fn target_dir(lib: &Path) -> PathBuf {
    std::env::var_os("FASTAI_WORKER_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| lib.parent().unwrap_or(lib).join("target"))
}

fn worker_main(source: &str) -> String {
    format!(
        "// Written by fastai::distributed::notebook_launch from a notebook cell.\n\
         #![allow(unused_imports, dead_code)]\n\
         use fastai::distributed::*;\n\
         use fastai::vision::*;\n\n\
         {source}\n\n\
         fn main() {{\n\
         \x20   let ctx = match DistContext::from_env() {{\n\
         \x20       Ok(ctx) => ctx,\n\
         \x20       Err(e) => {{ eprintln!(\"joining the run: {{e}}\"); std::process::exit(1) }}\n\
         \x20   }};\n\
         \x20   if let Err(e) = train(&ctx) {{\n\
         \x20       eprintln!(\"train failed: {{e}}\");\n\
         \x20       std::process::exit(1);\n\
         \x20   }}\n\
         }}\n"
    )
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(Error::io("writing the worker crate", path))
}

/// Writes the worker crate for `source` and compiles it; returns its executable.
fn build_worker(source: &str) -> Result<PathBuf> {
    let lib = lib_dir();
    if !lib.join("Cargo.toml").is_file() {
        return Err(Error::Msg(format!(
            "notebook_launcher: the fastai library's sources are not at {} (the worker program \
             is compiled against them): set FASTAI_LIB_DIR to the repository's lib/ folder",
            lib.display()
        )));
    }
    let target = target_dir(&lib);
    let mut h = DefaultHasher::new();
    source.hash(&mut h);
    let name = format!("w{:016x}", h.finish());
    let dir = target.join("fastai-workers").join(&name);
    std::fs::create_dir_all(dir.join("src"))
        .map_err(Error::io("creating the worker crate", &dir))?;
    // the same profile settings as the library's workspace, so its compiled crates are reused
    let manifest = format!(
        "[package]\nname = \"fastai-worker-{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\nfastai = {{ path = {:?} }}\n\n[workspace]\n\n\
         [profile.release.package.torch-sys]\nopt-level = 0\n[profile.dev.package.torch-sys]\n\
         opt-level = 0\n[profile.dev]\nopt-level = 1\n",
        lib.display().to_string()
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    write_if_changed(&dir.join("src/main.rs"), &worker_main(source))?;
    // the workspace's lock file: the same versions of every crate as the library's build
    let lock = lib.parent().unwrap_or(&lib).join("Cargo.lock");
    if lock.is_file() && !dir.join("Cargo.lock").is_file() {
        std::fs::copy(&lock, dir.join("Cargo.lock"))
            .map_err(Error::io("copying Cargo.lock", &lock))?;
    }
    let exe = target.join("release").join(format!("fastai-worker-{name}"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("notebook_launcher: compiling the worker program (the first time: about a minute)");
    let mut cmd = Command::new(&cargo);
    // what a cargo that started this process set for it (CARGO_MANIFEST_DIR, CARGO_PKG_*,
    // OUT_DIR, ...) would make build scripts that watch them rebuild the library's dependencies
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k == "OUT_DIR" {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .args([
            "build",
            "--release",
            "--offline",
            "--quiet",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&dir)
        .output()
        .map_err(|e| {
            Error::Msg(format!(
                "notebook_launcher: cannot run cargo ({}): {e}",
                Path::new(&cargo).display()
            ))
        })?;
    if !out.status.success() {
        let errors = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Msg(format!(
            "notebook_launcher: the worker program did not compile (its source: {}):\n{errors}",
            dir.join("src/main.rs").display()
        )));
    }
    if !exe.is_file() {
        return Err(Error::Msg(format!(
            "notebook_launcher: cargo succeeded but {} is missing",
            exe.display()
        )));
    }
    Ok(exe)
}
