//! fastai-kernel: a Jupyter kernel for Rust notebooks.
//!
//! Cells are compiled and run by the `evcxr` crate in a child process (the same engine as the stock
//! `evcxr_jupyter` kernel); this binary carries Jupyter messages between the notebook and that
//! engine. It knows nothing about deep learning and does not link libtorch.
//!
//! ```text
//! fastai-kernel install [--user | --sys-prefix [PREFIX] | --prefix PREFIX]   register the kernelspec
//! fastai-kernel prepare [--slots N]          compile the library into the kernels' build folders
//! fastai-kernel --connection-file FILE                                     run (Jupyter does this)
//! ```

mod build_log;
mod cell_env;
mod comms;
mod engine;
mod errors;
mod history;
mod inspect;
mod kernelspec;
mod preload;
mod replies;
mod server;
mod shortcut;

use std::path::PathBuf;

const USAGE: &str = "usage:
  fastai-kernel install [--user | --sys-prefix [PREFIX] | --prefix PREFIX] [--libtorch DIR]
      write the \"Rust (fastai)\" kernelspec (default: --user)
  fastai-kernel prepare [--slots N]
      compile the fastai library into N kernel build folders (install.sh does this)
  fastai-kernel --connection-file FILE
      run the kernel (Jupyter starts it this way)";

fn main() {
    // Must come first: the same binary is re-executed as evcxr's child process that runs cells.
    evcxr::runtime_hook();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("install") => kernelspec::install(&args[1..]),
        Some("prepare") => preload::prepare(&args[1..]),
        Some("--connection-file") | Some("-f") => match args.get(1) {
            Some(file) => server::run(&PathBuf::from(file)),
            None => Err(anyhow::anyhow!("--connection-file needs a path\n{USAGE}")),
        },
        Some("--version") => {
            println!("fastai-kernel {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(anyhow::anyhow!("{USAGE}")),
    };
    if let Err(e) = result {
        eprintln!("fastai-kernel: {e:#}");
        std::process::exit(1);
    }
}
