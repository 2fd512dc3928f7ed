//! Showing things: rich outputs (PNG, HTML, text) from library code, in a notebook or a terminal.
//!
//! # The display protocol (library -> kernel)
//!
//! Code running in a cell writes one line to stdout per display operation:
//!
//! ```text
//! FASTAI_DISPLAY {"op":"display","id":"fastai-3","data":{"image/png":"<base64>","text/plain":"..."}}
//! FASTAI_DISPLAY {"op":"update","id":"fastai-3","data":{"text/html":"<table>...</table>"}}
//! FASTAI_DISPLAY {"op":"clear","wait":true}
//! ```
//!
//! `display` shows a new output where the cell's output currently ends (`id` optional: with one,
//! it can later be replaced in place by `update`); `clear` clears the cell's output (`wait`: when
//! the next output arrives). The fastai kernel turns these into Jupyter's `display_data` (with
//! `transient.display_id`), `update_display_data` and `clear_output` messages while the cell runs.
//! The kernel announces itself to the cell process with `FASTAI_DISPLAY=kernel`. The markers, keys
//! and names are defined once, for the library and the kernel alike, in the `fastai-wire` crate.
//!
//! Elsewhere the same calls degrade: under the stock evcxr kernel a display becomes evcxr's
//! `EVCXR_BEGIN_CONTENT` block (shown when the cell ends; updates are not possible there), and in
//! a plain program text is printed and images are saved as PNG files (the path is printed).

pub mod animation;
pub mod figure;
pub mod paint;
pub mod plot;
pub mod progress;
pub mod series;
pub mod value;

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use fastai_wire as wire;

/// Where displays go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// The fastai kernel: live displays, in-place updates, clearing.
    FastaiKernel,
    /// The stock evcxr kernel: rich output at the end of the cell only.
    Evcxr,
    /// A terminal or a plain program.
    Terminal,
}

/// Which frontend this process is displaying to.
pub fn frontend() -> Frontend {
    if std::env::var(wire::DISPLAY_ENV).as_deref() == Ok(wire::DISPLAY_ENV_KERNEL) {
        Frontend::FastaiKernel
    } else if std::env::var_os(wire::EVCXR_RUNTIME_ENV).is_some() {
        Frontend::Evcxr
    } else {
        Frontend::Terminal
    }
}

/// Whether a display can be updated in place (only in the fastai kernel).
pub fn supports_updates() -> bool {
    frontend() == Frontend::FastaiKernel
}

/// A rich output in one or more representations (MIME type -> data).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rich {
    parts: Vec<(String, String)>,
    /// Raw PNG bytes, kept for the terminal frontend (saved to a file there).
    png: Option<Vec<u8>>,
}

impl Rich {
    /// A PNG image (with a text alternative).
    pub fn png(bytes: Vec<u8>, alt: &str) -> Rich {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        Rich {
            parts: vec![("image/png".into(), b64), ("text/plain".into(), alt.into())],
            png: Some(bytes),
        }
    }
    /// HTML (with a plain-text alternative for terminals and text-only frontends).
    pub fn html(html: impl Into<String>, text: impl Into<String>) -> Rich {
        Rich {
            parts: vec![
                ("text/html".into(), html.into()),
                ("text/plain".into(), text.into()),
            ],
            png: None,
        }
    }
    /// Plain text.
    pub fn text(text: impl Into<String>) -> Rich {
        Rich {
            parts: vec![("text/plain".into(), text.into())],
            png: None,
        }
    }
    /// The data for `mime`, if present.
    pub fn get(&self, mime: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|(m, _)| m == mime)
            .map(|(_, d)| d.as_str())
    }
    fn data_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.parts
                .iter()
                .map(|(m, d)| (m.clone(), serde_json::Value::String(d.clone())))
                .collect(),
        )
    }
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn kernel_line(op: &str, id: Option<&str>, r: Option<&Rich>, wait: bool) {
    let mut msg = serde_json::Map::new();
    msg.insert(wire::KEY_OP.into(), op.into());
    if let Some(id) = id {
        msg.insert(wire::KEY_ID.into(), id.into());
    }
    if let Some(r) = r {
        msg.insert(wire::KEY_DATA.into(), r.data_json());
    }
    if op == wire::OP_CLEAR {
        msg.insert(wire::KEY_WAIT.into(), wait.into());
    }
    // One line; println! holds stdout's lock so the line is not interleaved with other output.
    println!("{}{}", wire::DISPLAY_PREFIX, serde_json::Value::Object(msg));
}

/// Shows `r` now (where the output currently ends).
pub fn display(r: &Rich) {
    show(r, None);
}

fn show(r: &Rich, id: Option<&str>) {
    match frontend() {
        Frontend::FastaiKernel => kernel_line(wire::OP_DISPLAY, id, Some(r), false),
        Frontend::Evcxr => {
            for (mime, data) in &r.parts {
                evcxr_block(mime, data);
            }
        }
        Frontend::Terminal => terminal(r),
    }
}

/// evcxr's output protocol: one block per MIME type, shown by evcxr when the cell ends. One
/// `println!`, so the block is written under one lock of stdout.
pub(crate) fn evcxr_block(mime: &str, data: &str) {
    println!("{} {mime}\n{data}\n{}", wire::EVCXR_BEGIN, wire::EVCXR_END);
}

/// Where a plain program saves figures: `FASTAI_PLOTS_DIR`, or `fastai-plots/`.
pub(crate) fn plots_dir() -> std::path::PathBuf {
    std::env::var_os("FASTAI_PLOTS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "fastai-plots".into())
}

fn terminal(r: &Rich) {
    if let Some(png) = &r.png {
        let dir = plots_dir();
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("figure-{}-{n}.png", std::process::id()));
        match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, png)) {
            Ok(()) => println!(
                "[{}] saved to {}",
                r.get("text/plain").unwrap_or("figure"),
                path.display()
            ),
            Err(e) => eprintln!("could not save the figure to {}: {e}", path.display()),
        }
    } else if let Some(t) = r.get("text/plain") {
        println!("{t}");
    }
}

/// Clears the cell's output (`wait`: only when the next output arrives, avoiding flicker).
/// Does nothing outside the fastai kernel.
pub fn clear_output(wait: bool) {
    if frontend() == Frontend::FastaiKernel {
        kernel_line(wire::OP_CLEAR, None, None, wait);
    }
}

/// A display that can be replaced in place later (a progress bar, a growing table, a live chart).
#[derive(Debug)]
pub struct DisplayHandle {
    id: String,
}

impl DisplayHandle {
    /// Shows `r` and returns a handle to update it.
    pub fn new(r: &Rich) -> DisplayHandle {
        // Random, not a counter: every notebook cell has its own copy of this crate's statics
        // (evcxr compiles cells separately), so a counter would repeat ids across cells.
        let id = format!("fastai-{:016x}", rand::random::<u64>());
        show(r, Some(&id));
        DisplayHandle { id }
    }

    /// Replaces the shown output with `r`. In the fastai kernel this happens in place while
    /// the cell runs; elsewhere updates are dropped (callers print their own fallback).
    pub fn update(&self, r: &Rich) {
        if frontend() == Frontend::FastaiKernel {
            kernel_line(wire::OP_UPDATE, Some(&self.id), Some(r), false);
        }
    }

    /// The display id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_bundles_carry_base64_png_and_text() {
        let r = Rich::png(vec![0x89, b'P', b'N', b'G'], "a figure");
        assert_eq!(r.get("image/png"), Some("iVBORw=="));
        assert_eq!(r.get("text/plain"), Some("a figure"));
        let j = r.data_json();
        assert_eq!(j["image/png"], "iVBORw==");
    }
}
