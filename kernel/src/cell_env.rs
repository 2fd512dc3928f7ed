//! The environment of the cell process: set once in the kernel's own process, before any thread
//! starts, and inherited by the process evcxr starts to run cells (by a kernel, and by
//! `fastai-kernel prepare`, which compiles the library as a kernel would).

use std::path::PathBuf;

/// Tells the library it runs under this kernel (so it may use the display protocol, see the
/// `fastai-wire` crate), tells it where the back channel is (`back_channel`: the socket the kernel
/// listens on for widgets and `input()`; `None` for `fastai-kernel prepare`), and puts libtorch's shared libraries on the loader path: cells that use tch
/// load them.
pub fn prepare(back_channel: Option<&std::path::Path>) {
    std::env::set_var(fastai_wire::DISPLAY_ENV, fastai_wire::DISPLAY_ENV_KERNEL);
    match back_channel {
        Some(path) => std::env::set_var(fastai_wire::COMM_SOCKET_ENV, path),
        None => std::env::remove_var(fastai_wire::COMM_SOCKET_ENV),
    }
    if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        let lib = PathBuf::from(libtorch).join("lib");
        let mut paths = vec![lib.clone()];
        if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
            paths.extend(std::env::split_paths(&old).filter(|p| *p != lib));
        }
        if let Ok(joined) = std::env::join_paths(paths) {
            std::env::set_var("LD_LIBRARY_PATH", joined);
        }
    }
}
