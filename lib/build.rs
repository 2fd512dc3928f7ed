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
}
