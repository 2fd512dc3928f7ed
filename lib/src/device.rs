//! Picking the device to train on, and making sure CUDA is really on when the machine has it.
//!
//! libtorch keeps its CUDA code in `libtorch_cuda.so`. Nothing in a Rust binary calls into that
//! library directly, so the linker (`--as-needed`) drops it and `tch::Cuda::is_available()` answers
//! `false` even on a GPU box. [`device`] loads it by hand first, once per process. On a CPU-only
//! install the load fails (its CUDA dependencies are absent) and we simply stay on the CPU.

use std::path::PathBuf;
use std::sync::OnceLock;

use tch::Device;

/// What [`device_info`] found: which device training will use, and why.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// The device `device()` returns.
    pub device: Device,
    /// Number of CUDA devices libtorch sees (0 on a CPU install).
    pub cuda_devices: usize,
    /// Whether cuDNN is usable.
    pub cudnn: bool,
    /// Threads libtorch uses for CPU work.
    pub cpu_threads: i32,
    /// The libtorch library folder this build was linked against.
    pub libtorch_lib: Option<PathBuf>,
    /// Why CUDA is off, when it is (the loader's message), for troubleshooting.
    pub cuda_note: Option<String>,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.device {
            Device::Cuda(i) => write!(
                f,
                "CUDA device {i} of {} (cuDNN {})",
                self.cuda_devices,
                if self.cudnn { "on" } else { "off" }
            )?,
            _ => write!(f, "CPU, {} threads", self.cpu_threads)?,
        }
        if let Some(note) = &self.cuda_note {
            write!(f, " - {note}")?;
        }
        Ok(())
    }
}

static CUDA_LOAD: OnceLock<Result<(), String>> = OnceLock::new();

/// Where libtorch's shared libraries are: the folder torch-sys linked against at build time,
/// unless `FASTAI_LIBTORCH_LIB` says otherwise at run time.
pub fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FASTAI_LIBTORCH_LIB") {
        return Some(PathBuf::from(dir));
    }
    option_env!("FASTAI_LIBTORCH_LIB").map(PathBuf::from)
}

/// Loads `libtorch_cuda.so` into the process (globally, so libtorch's CUDA hooks register).
/// Idempotent; returns why it failed, if it did.
pub fn load_cuda() -> Result<(), String> {
    CUDA_LOAD
        .get_or_init(|| {
            let candidates: Vec<PathBuf> = match libtorch_lib_dir() {
                Some(dir) => vec![dir.join("libtorch_cuda.so")],
                None => vec![PathBuf::from("libtorch_cuda.so")],
            };
            let mut errors = Vec::new();
            for path in candidates {
                if path.is_absolute() && !path.exists() {
                    errors.push(format!("{} does not exist", path.display()));
                    continue;
                }
                let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
                // SAFETY: loading libtorch's own CUDA library into a process that already links
                // libtorch from the same folder; its initialisers only register CUDA hooks.
                match unsafe { libloading::os::unix::Library::open(Some(&path), flags) } {
                    Ok(lib) => {
                        // Keep it loaded for the life of the process.
                        std::mem::forget(lib);
                        return Ok(());
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            Err(errors.join("; "))
        })
        .clone()
}

/// The device to train on: the first CUDA GPU when there is one, the CPU otherwise.
///
/// `FASTAI_DEVICE=cpu` forces the CPU; `FASTAI_DEVICE=cuda:N` picks GPU N.
///
/// ```no_run
/// let dev = fastai::device();
/// let x = tch::Tensor::ones([2, 3], (tch::Kind::Float, dev));
/// ```
pub fn device() -> Device {
    device_info().device
}

/// Like [`device`], with the details: how many GPUs, cuDNN, CPU threads, and why CUDA is off.
pub fn device_info() -> DeviceInfo {
    let forced = std::env::var("FASTAI_DEVICE").ok();
    let wants_cpu = forced.as_deref().map(|s| s.eq_ignore_ascii_case("cpu")) == Some(true);
    let (cuda_devices, cuda_note) = if wants_cpu {
        (0, Some("FASTAI_DEVICE=cpu".to_string()))
    } else {
        match load_cuda() {
            Ok(()) => {
                let n = tch::Cuda::device_count().max(0) as usize;
                let note = (n == 0).then(|| "libtorch_cuda loaded but no GPU visible".to_string());
                (n, note)
            }
            Err(e) if e.contains("cannot open shared object file") => {
                // The CPU-minimal install: libtorch_cuda.so is there, the CUDA libraries it needs
                // are not. Name the first missing one for troubleshooting.
                let missing = e.split(':').next().unwrap_or("").trim().to_string();
                (
                    0,
                    Some(format!(
                        "CPU-only libtorch install (CUDA libraries absent: {missing})"
                    )),
                )
            }
            Err(e) => (0, Some(format!("CUDA not loaded ({})", shorten(&e)))),
        }
    };
    let index = forced
        .as_deref()
        .and_then(|s| s.strip_prefix("cuda:"))
        .and_then(|i| i.parse::<usize>().ok())
        .unwrap_or(0);
    let device = if cuda_devices > index {
        Device::Cuda(index)
    } else {
        Device::Cpu
    };
    DeviceInfo {
        device,
        cuda_devices,
        cudnn: cuda_devices > 0 && tch::Cuda::cudnn_is_available(),
        cpu_threads: tch::get_num_threads(),
        libtorch_lib: libtorch_lib_dir(),
        cuda_note: if device == Device::Cpu {
            cuda_note
        } else {
            None
        },
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 160;
    if s.len() <= MAX {
        s.to_string()
    } else {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &s[..cut])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_is_usable_for_tensors() {
        let info = device_info();
        let x = tch::Tensor::ones([4, 4], (tch::Kind::Float, info.device));
        let s = (&x + 1).sum(tch::Kind::Float).to_device(Device::Cpu);
        assert_eq!(f64::try_from(s).unwrap(), 32.0);
        // The report names what it chose.
        let text = info.to_string();
        assert!(
            text.starts_with("CPU") || text.starts_with("CUDA"),
            "{text}"
        );
    }

    #[test]
    fn libtorch_folder_is_known_from_the_build() {
        let dir = libtorch_lib_dir().expect("build.rs should record libtorch's folder");
        assert!(dir.join("libtorch_cpu.so").exists(), "{}", dir.display());
    }

    #[test]
    fn load_cuda_is_idempotent() {
        assert_eq!(load_cuda(), load_cuda());
    }
}
