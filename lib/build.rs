//! Tells the library where libtorch's shared libraries are, so that `fastai::device()` can load
//! `libtorch_cuda.so` explicitly (rustc's `--as-needed` linking drops it otherwise), and gives this
//! crate's own tests and examples an rpath so they run without LD_LIBRARY_PATH.
fn main() {
    // torch-sys declares `links = "tch"` and prints `cargo:libtorch_lib=...`.
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-env=FASTAI_LIBTORCH_LIB={dir}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
