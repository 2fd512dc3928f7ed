//! Build progress in the cell: the `Compiling foo v1.2.3` lines of a `:dep` or of a rebuild of the
//! library.
//!
//! evcxr has no callback for them: while cargo builds a cell's dependencies, evcxr copies cargo's
//! `Compiling ...` lines to its own process's stderr (file descriptor 2), which Jupyter sends to
//! the server's log. So the kernel puts a pipe in place of its stderr at start-up: one thread
//! reads it, copies every line on to the real stderr (the log keeps everything), and hands the
//! build lines to whoever is interested (the running cell).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};

use anyhow::{bail, Result};

/// Whether a line of the kernel's stderr reports build progress (cargo's status lines, as evcxr
/// passes them on).
pub fn is_build_line(line: &str) -> bool {
    let t = line.trim_start();
    ["Compiling ", "Building ", "Downloading ", "Downloaded "]
        .iter()
        .any(|p| t.starts_with(p))
}

/// Replaces this process's stderr by a pipe and starts the thread that reads it. Every line goes
/// on to the original stderr; build lines are also given to `on_build_line`, which must not block
/// for long (it runs on the reading thread, and a writer to stderr waits when the pipe is full).
/// Call it before other threads start writing to stderr.
pub fn capture_stderr(on_build_line: impl Fn(String) + Send + 'static) -> Result<()> {
    let mut fds: [RawFd; 2] = [-1, -1];
    // SAFETY: plain system calls on descriptors this function creates; fd 2 stays open
    // throughout (dup2 replaces it atomically).
    let original = unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            bail!("pipe2: {}", std::io::Error::last_os_error());
        }
        // The original stderr, kept out of child processes (they get fd 2, the pipe).
        let original = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if original < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fds[0]);
            libc::close(fds[1]);
            bail!("dup of stderr: {e}");
        }
        if libc::dup2(fds[1], 2) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fds[0]);
            libc::close(fds[1]);
            libc::close(original);
            bail!("dup2 onto stderr: {e}");
        }
        libc::close(fds[1]);
        original
    };
    // SAFETY: both descriptors were opened above and are owned by the reading thread from now on.
    let (reader, mut log) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(original)) };
    std::thread::Builder::new()
        .name("stderr-reader".into())
        .spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let _ = log.write_all(&buf);
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                if is_build_line(line) {
                    on_build_line(line.to_string());
                }
            }
        })?;
    // A panic that ends the process would leave its message in the pipe, unread: give the
    // reading thread a moment to copy it to the log first.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_status_lines_are_build_lines() {
        assert!(is_build_line("   Compiling tinydep v0.1.0 (/tmp/x)"));
        assert!(is_build_line("Compiling fastai v0.1.0"));
        assert!(is_build_line("  Downloaded rand v0.9.0"));
        assert!(!is_build_line("fastai-kernel: build folder /x"));
        assert!(!is_build_line("[cell process] Compiling is fun"));
        assert!(!is_build_line("error: Compiling failed"));
    }
}
