//! Tells the library where libtorch's shared libraries are, so that `fastai::device()` can load
//! `libtorch_cuda.so` explicitly (rustc's `--as-needed` linking drops it otherwise), gives this
//! crate's own tests and examples an rpath so they run without LD_LIBRARY_PATH, and compiles the
//! C++ shim to PyTorch's distributed engine (csrc/c10d.cpp) against the same libtorch's headers.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo::rustc-check-cfg=cfg(fastai_c10d)");
    // torch-sys declares `links = "tch"` and prints `cargo:libtorch_lib=...`.
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not say where libtorch is: no distributed support");
        return;
    };
    println!("cargo:rustc-env=FASTAI_LIBTORCH_LIB={dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    build_c10d_shim(Path::new(&dir));
}

/// The shim needs c10d's headers (in every PyPI torch wheel since 1.x and in libtorch's zip) and
/// a libtorch built with distributed support; without them the library builds without
/// `fastai::distributed`'s engine, which then says so at run time.
fn build_c10d_shim(lib_dir: &Path) {
    let root = lib_dir.parent().unwrap_or(lib_dir);
    let include = root.join("include");
    let header = include.join("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp");
    if !header.exists() || std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        println!(
            "cargo:warning=no c10d headers at {} (or not Linux): building without distributed \
             training",
            header.display()
        );
        return;
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    cc::Build::new()
        .cpp(true)
        // the standard the wheel's headers are written for (they use C++20 features)
        .std("c++20")
        // c10d's headers declare nothing without these (torch's CMake sets them for its users)
        .define("USE_DISTRIBUTED", None)
        .define("USE_C10D_GLOO", None)
        // the string ABI torch-sys compiles its glue with (PyPI wheels: the C++11 one)
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(manifest.join("csrc/gloo_decls"))
        .warnings(false)
        .file(manifest.join("csrc/c10d.cpp"))
        .compile("fastai_c10d");
    println!("cargo:rustc-cfg=fastai_c10d");
    build_nccl_shim(lib_dir, &include, &abi, &manifest);
}

/// With the CUDA libtorch and the CUDA/NCCL headers, compiles csrc/c10d_nccl.cpp into a shared
/// library of its own (`FASTAI_C10D_NCCL_SO`), which Rust loads only when a run asks for NCCL:
/// linked into the library it would make every program need libtorch_cuda, libcudart and
/// libnccl at start-up. Otherwise `FASTAI_NCCL_UNAVAILABLE` says why there is no NCCL.
///
/// The headers: torch's CUDA wheel brings nvidia-nccl-cu13 (nccl.h) and the CUDA toolkit's
/// runtime, cuBLAS, cuSPARSE and cuSOLVER packages (all included by ATen's CUDA headers) under
/// site-packages/nvidia, but not `nvidia-cuda-crt` (crt/host_config.h) and `nvidia-cuda-cccl`
/// (nv/target), which cuda_runtime.h also needs: install.sh --cuda adds those two (3 MB). A CUDA
/// toolkit in CUDA_HOME or /usr/local/cuda, or FASTAI_CUDA_INCLUDE (folders separated by ':'),
/// serves too.
fn build_nccl_shim(lib_dir: &Path, include: &Path, abi: &str, manifest: &Path) {
    println!("cargo:rerun-if-env-changed=FASTAI_CUDA_INCLUDE");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let unavailable = |why: &str| println!("cargo:rustc-env=FASTAI_NCCL_UNAVAILABLE={why}");
    if !lib_dir.join("libtorch_cuda.so").exists() {
        return unavailable("the libtorch this library was built against is the CPU build");
    }
    let mut dirs: Vec<PathBuf> = std::env::var("FASTAI_CUDA_INCLUDE")
        .map(|s| {
            s.split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    // site-packages/torch/lib -> site-packages/nvidia/<package>/include
    if let Some(site) = lib_dir.parent().and_then(Path::parent) {
        if let Ok(entries) = std::fs::read_dir(site.join("nvidia")) {
            for e in entries.flatten() {
                dirs.push(e.path().join("include"));
                dirs.push(e.path().join("include/cccl"));
            }
        }
    }
    if let Ok(home) = std::env::var("CUDA_HOME") {
        dirs.push(Path::new(&home).join("include"));
    }
    dirs.push(PathBuf::from("/usr/local/cuda/include"));
    dirs.retain(|d| d.is_dir());
    dirs.sort();
    dirs.dedup();
    let needed = [
        "nccl.h",
        "cuda_runtime_api.h",
        "crt/host_config.h",
        "nv/target",
        "cusparse.h",
        "cublas_v2.h",
        "cusolverDn.h",
    ];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|h| !dirs.iter().any(|d| d.join(h).exists()))
        .collect();
    if !missing.is_empty() {
        return unavailable(&format!(
            "the CUDA headers NCCL's process group needs were not found when the library was \
             built (missing: {}); ./install.sh --cuda installs them",
            missing.join(", ")
        ));
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .pic(true)
        .define("USE_DISTRIBUTED", None)
        .define("USE_C10D_NCCL", None)
        .define("USE_CUDA", None)
        .define("_GLIBCXX_USE_CXX11_ABI", abi)
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .includes(&dirs)
        .warnings(false)
        .file(manifest.join("csrc/c10d_nccl.cpp"));
    let objects = build.compile_intermediates();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("libfastai_c10d_nccl.so");
    let status = build
        .get_compiler()
        .to_command()
        .arg("-shared")
        .arg("-o")
        .arg(&out)
        .args(&objects)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args([
            "-Wl,--no-as-needed",
            "-ltorch_cuda",
            "-ltorch_cpu",
            "-lc10_cuda",
            "-lc10",
        ])
        .status();
    match status {
        Ok(s) if s.success() => {
            println!("cargo:rustc-env=FASTAI_C10D_NCCL_SO={}", out.display());
        }
        other => {
            println!("cargo:warning=linking the NCCL shim failed ({other:?}): no NCCL");
            unavailable("linking the NCCL part of the library failed when it was built");
        }
    }
}
