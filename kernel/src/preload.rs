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
//! The cells link the library as one shared library: a generated crate, `<cache>/fastai-dylib`
//! (crate type `dylib`, named `fastai` for the cells), re-exports `fastai` and holds it with all
//! its dependencies. Linked statically instead (evcxr's default for dependencies), every cell's
//! own shared library would carry a copy of whatever library code it calls, and of its statics
//! (rayon's thread pool, caches), and its link would read ~140 archives: library cells compiled
//! ~70 ms slower and grew to megabytes each.
//!
//! Paths (defaults set at build time, overridable by the kernelspec's environment):
//! - `FASTAI_LIB_DIR`: the `fastai` crate (`<repo>/lib`); preloading is off if it does not exist
//! - `FASTAI_KERNEL_CACHE`: the slots' parent folder (`<repo>/target/evcxr`)
//! - `FASTAI_KERNEL_LINK=static`: link the library into every cell (evcxr's default) instead

use std::fs::File;
use std::path::{Path, PathBuf};
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

/// The code every kernel runs first, in the order to try it: the library as a dependency, the
/// lesson's import, and the library's SIGINT handler (so the stop button ends training at the
/// next batch instead of killing the process; loops of the user's own can check
/// `interrupted()`). `:efmt {:?}` makes evcxr print errors returned with `?` through `Debug`,
/// which for fastai's errors carries the marker that lets the kernel report the cell as failed.
///
/// First through the shared-library crate ([`write_dylib_crate`]); should that fail (it cannot
/// be written, or the linker is not lld and rejects its second version script), the library
/// linked statically into every cell, as evcxr does by default.
pub fn preload_codes(lib: &Path) -> Vec<String> {
    let code = |dep: String| {
        format!(
            ":efmt {{:?}}\n:dep fastai = {dep}\nuse fastai::vision::*;\nfastai::learner::interrupt::install();"
        )
    };
    let static_code = code(format!("{{ path = {:?} }}", lib.display().to_string()));
    if std::env::var("FASTAI_KERNEL_LINK").is_ok_and(|v| v == "static") {
        return vec![static_code];
    }
    match write_dylib_crate(lib) {
        Ok(dir) => vec![
            code(format!(
                "{{ path = {:?}, package = {DYLIB_PACKAGE:?} }}",
                dir.display().to_string()
            )),
            static_code,
        ],
        Err(e) => {
            eprintln!("fastai-kernel: cannot write the library's shared-library crate: {e:#}");
            vec![static_code]
        }
    }
}

/// Runs the first of `codes` (alternatives from [`preload_codes`]) that succeeds, each followed
/// by `extra`; evcxr keeps nothing of a cell that failed, so each try starts clean. The last
/// error when none does.
pub fn run_first(
    ctx: &mut evcxr::CommandContext,
    codes: &[String],
    extra: Option<&str>,
) -> std::result::Result<(), String> {
    let mut last = String::from("no code to preload");
    for (i, code) in codes.iter().enumerate() {
        if i > 0 {
            // The library linked into every cell needs libtorch's real libraries on the link.
            without_link_stubs();
        }
        let code = match extra {
            Some(extra) => format!("{code}\n{extra}"),
            None => code.clone(),
        };
        match ctx.execute(&code) {
            Ok(_) => return Ok(()),
            Err(e) => {
                eprintln!("fastai-kernel: preloading fastai failed: {e}");
                last = e.to_string();
            }
        }
    }
    Err(last)
}

/// The package name of the shared-library crate (its library is called `fastai`).
const DYLIB_PACKAGE: &str = "fastai-dylib";

/// Writes `<cache>/fastai-dylib`: a crate of type `dylib` whose library, named `fastai`,
/// re-exports the `fastai` crate at `lib`. Files are only rewritten when their content differs
/// (a new modification time would make every slot relink it), through a rename, so kernels
/// starting at the same time never read half a file.
pub fn write_dylib_crate(lib: &Path) -> Result<PathBuf> {
    let dir = resolved_cache_dir()?.join(DYLIB_PACKAGE);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let manifest = format!(
        "# Written by fastai-kernel (kernel/src/preload.rs): the fastai library as one shared
# library for the notebook cells.
[package]
name = {DYLIB_PACKAGE:?}
version = \"0.0.0\"
edition = \"2021\"
publish = false

build = \"build.rs\"

[lib]
name = \"fastai\"
crate-type = [\"dylib\"]
path = \"lib.rs\"

[dependencies]
fastai-lib = {{ package = \"fastai\", path = {:?} }}
",
        lib.display().to_string()
    );
    let source = "//! The fastai library, as the shared library the notebook cells link (see fastai-kernel).\n\
                  pub use fastai_lib::*;\n";
    write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    write_if_changed(&dir.join("lib.rs"), source)?;
    write_if_changed(&dir.join("build.rs"), BUILD_SCRIPT)?;
    write_if_changed(&dir.join("exports.map"), EXPORTS)?;
    Ok(dir)
}

/// The shared library's build script: passes [`EXPORTS`] to the linker.
const BUILD_SCRIPT: &str =
    "// Written by fastai-kernel: exports libtorch's C glue from the shared library.
fn main() {
    let dir = std::env::var(\"CARGO_MANIFEST_DIR\").unwrap();
    println!(\"cargo:rustc-link-arg=-Wl,--version-script={dir}/exports.map\");
    println!(\"cargo:rerun-if-changed=exports.map\");
}
";

/// tch's generic and inlined methods, compiled into the cells, call torch-sys's C functions
/// (`at_*`, `atg_*`, ... from its static glue library) directly. rustc's own version script for a
/// `dylib` keeps those local (rust-lang/rust#65610), so a cell using `Tensor::from_slice` would
/// fail to load; this second version script (lld merges them) exports them.
const EXPORTS: &str = "{
  global:
    at_*; atg_*; ati_*; atm_*; ato_*; atc_*; ats_*; thp_*; get_and_reset_last_err;
};
";

fn write_if_changed(path: &Path, content: &str) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// [`cache_dir`], created, as a clean absolute path (no `..`: evcxr's rust-analyzer wants one).
fn resolved_cache_dir() -> Result<PathBuf> {
    let base = cache_dir();
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    base.canonicalize()
        .with_context(|| format!("cannot resolve {}", base.display()))
}

/// Makes each cell's compilation cheaper (evcxr options of third_party/evcxr/PATCHES.md), before
/// the engine starts:
/// - after the first cell, rustc runs directly with the command cargo used, instead of cargo
///   checking the library's ~150 dependencies for freshness before every cell
///   (`EVCXR_REUSE_CELL_RUSTC`; the library is fixed for the kernel's lifetime anyway: its shared
///   library is loaded in the cell process);
/// - the cells' link does not read libtorch's libraries, which torch-sys names on every link
///   line although the cells reach libtorch only through the library's shared library: empty
///   stand-ins (linker scripts without commands) are found first (`EVCXR_CELL_RUSTC_ARGS`,
///   the cells' crate only).
///
/// Either can be turned off by setting its variable (to `0`, or empty) in the kernelspec.
pub fn fast_cells() {
    if std::env::var_os("EVCXR_REUSE_CELL_RUSTC").is_none() {
        std::env::set_var("EVCXR_REUSE_CELL_RUSTC", "1");
    }
    let linked_statically = std::env::var("FASTAI_KERNEL_LINK").is_ok_and(|v| v == "static");
    if std::env::var_os("EVCXR_CELL_RUSTC_ARGS").is_none() && !linked_statically {
        match write_link_stubs() {
            Ok(dir) => std::env::set_var(
                "EVCXR_CELL_RUSTC_ARGS",
                format!("-L\u{1f}native={}", dir.display()),
            ),
            Err(e) => eprintln!("fastai-kernel: cells will link libtorch ({e:#})"),
        }
    }
}

/// Takes the stand-ins of [`fast_cells`] off the cells' link again: when the library has to be
/// linked into every cell after all, or a `:dep` may bring crates that call libtorch themselves.
/// evcxr reads the variable when it compiles a cell.
pub fn without_link_stubs() {
    let ours = std::env::var("EVCXR_CELL_RUSTC_ARGS").is_ok_and(|v| v.contains("link-stubs"));
    if ours {
        eprintln!("fastai-kernel: cells link libtorch (the library is linked into each cell)");
        std::env::remove_var("EVCXR_CELL_RUSTC_ARGS");
    }
}

/// libtorch's libraries as torch-sys links them.
const LIBTORCH_LIBRARIES: &[&str] = &["torch_cuda", "torch_cpu", "torch", "c10"];

/// `<cache>/link-stubs`: a `lib<name>.so` for each of [`LIBTORCH_LIBRARIES`] that is a linker
/// script with no commands (GNU ld and lld read a file that is not an object as a script).
fn write_link_stubs() -> Result<PathBuf> {
    let dir = resolved_cache_dir()?.join("link-stubs");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for name in LIBTORCH_LIBRARIES {
        write_if_changed(
            &dir.join(format!("lib{name}.so")),
            "/* fastai-kernel: notebook cells reach libtorch through the fastai shared library */\n",
        )?;
    }
    Ok(dir)
}

/// A locked build folder; the lock lasts as long as this value (or the process).
pub struct Slot {
    pub dir: PathBuf,
    _lock: File,
}

/// Locks the first free slot (creating it if needed).
pub fn acquire_slot() -> Result<Slot> {
    let base = resolved_cache_dir()?;
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
    crate::cell_env::prepare(None);
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
        // Nothing to show: evcxr then discards the cell process's output.
        drop(outputs);
        // As a kernel does: the shared library first, linked statically if that fails.
        run_first(&mut ctx, &preload_codes(&lib), None).map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_not_rewritten() {
        let dir = std::env::temp_dir().join(format!("fastai-kernel-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        write_if_changed(&path, "one").unwrap();
        let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_if_changed(&path, "one").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), stamp);
        write_if_changed(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        // no temporary file left behind
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
