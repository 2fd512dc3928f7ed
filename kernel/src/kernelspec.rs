//! `fastai-kernel install`: writes the "Rust (fastai)" kernelspec that Jupyter uses to start us.
//!
//! The spec lives in its own folder (`kernels/fastai-rust`), so the stock `rust` kernelspec of
//! evcxr_jupyter is never touched. Its `env` carries what cells need at run time: where libtorch is
//! (cells that use tch compile torch-sys, and load libtorch's .so files).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub const KERNEL_NAME: &str = "fastai-rust";
pub const DISPLAY_NAME: &str = "Rust (fastai)";

pub fn install(args: &[String]) -> Result<()> {
    let mut prefix: Option<PathBuf> = None;
    let mut libtorch = std::env::var_os("LIBTORCH").map(PathBuf::from);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--user" => prefix = None,
            "--sys-prefix" => match args.get(i + 1).filter(|a| !a.starts_with("--")) {
                Some(p) => {
                    prefix = Some(PathBuf::from(p));
                    i += 1;
                }
                None => {
                    let venv = std::env::var_os("VIRTUAL_ENV").context(
                        "--sys-prefix without a path needs an activated venv (VIRTUAL_ENV); \
                         or give the prefix: --sys-prefix /path/to/venv",
                    )?;
                    prefix = Some(PathBuf::from(venv));
                }
            },
            "--prefix" => {
                let p = args.get(i + 1).context("--prefix needs a path")?;
                prefix = Some(PathBuf::from(p));
                i += 1;
            }
            "--libtorch" => {
                let p = args.get(i + 1).context("--libtorch needs a path")?;
                libtorch = Some(PathBuf::from(p));
                i += 1;
            }
            other => bail!("install: unknown option {other}"),
        }
        i += 1;
    }
    let data_dir = match prefix {
        Some(p) => p.join("share").join("jupyter"),
        None => user_data_dir()?,
    };
    let dir = data_dir.join("kernels").join(KERNEL_NAME);
    write_spec(&dir, libtorch.as_deref())?;
    println!(
        "installed kernelspec {KERNEL_NAME} (\"{DISPLAY_NAME}\") in {}",
        dir.display()
    );
    Ok(())
}

fn user_data_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(x));
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("jupyter"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; use --prefix")?;
    Ok(PathBuf::from(home).join(".local/share/jupyter"))
}

fn write_spec(dir: &Path, libtorch: Option<&Path>) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    let mut env = serde_json::Map::new();
    if let Some(lt) = libtorch {
        if !lt.join("lib").is_dir() {
            bail!(
                "--libtorch {}: no lib/ folder there (expected a libtorch install)",
                lt.display()
            );
        }
        env.insert("LIBTORCH".into(), lt.display().to_string().into());
    }
    let spec = serde_json::json!({
        "argv": [exe.display().to_string(), "--connection-file", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "rust",
        "interrupt_mode": "message",
        "env": env,
        "metadata": { "debugger": false },
    });
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join("kernel.json");
    let tmp = dir.join("kernel.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&spec)? + "\n")
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}
