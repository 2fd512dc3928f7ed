//! The line protocol between the fastai library, running in a notebook cell, and fastai-kernel:
//! every marker and name the two sides agree on, defined once. The library writes these (in
//! `fastai::display` and `fastai::error`); the kernel reads them (in its `server` and `replies`
//! modules) and sets the environment the library reads (its `cell_env` module).
//!
//! The cell runs in a process of its own, started by evcxr; its stdout and stderr reach the
//! kernel line by line, while the cell runs. So the protocol is made of whole lines:
//!
//! ```text
//! kernel -> cell process (environment)    FASTAI_DISPLAY=kernel
//! library -> kernel (stdout, one line)     FASTAI_DISPLAY {"op":"display","id":"fastai-3","data":{"text/plain":"0%"}}
//!                                          FASTAI_DISPLAY {"op":"update","id":"fastai-3","data":{"text/html":"<table>..."}}
//!                                          FASTAI_DISPLAY {"op":"clear","wait":true}
//! library -> kernel (stderr, one line)     FASTAI_ERROR no such file: images/x.png
//! ```
//!
//! Under the stock evcxr kernel (no `FASTAI_DISPLAY=kernel`) the library speaks evcxr's own
//! protocol instead, whose names are at the end of this file.
//!
//! A line the kernel cannot read as a display (no JSON after the prefix, an unknown `op`) is shown
//! as the plain text it is. Nothing here changes without both sides: the kernel's build folders
//! compile the library from this workspace, so they move together.

// ---------------------------------------------------------------- who is listening

/// The environment variable the kernel sets for the cell process, to [`DISPLAY_ENV_KERNEL`]:
/// "you run under fastai-kernel; displays may be live and updated in place". Without it the
/// library falls back to evcxr's protocol (under evcxr) or to printing and PNG files.
pub const DISPLAY_ENV: &str = "FASTAI_DISPLAY";

/// The value of [`DISPLAY_ENV`] that announces fastai-kernel.
pub const DISPLAY_ENV_KERNEL: &str = "kernel";

// ---------------------------------------------------------------- displays (stdout)

/// Starts a display line on the cell's stdout; a JSON object follows on the same line:
/// `{"op": OP, "id": ID?, "data": {MIME: DATA, ...}?, "wait": BOOL?}` (the keys below). The
/// kernel turns it into a Jupyter `display_data`, `update_display_data` or `clear_output`
/// message while the cell runs.
pub const DISPLAY_PREFIX: &str = "FASTAI_DISPLAY ";

/// Key of the operation: [`OP_DISPLAY`], [`OP_UPDATE`] or [`OP_CLEAR`].
pub const KEY_OP: &str = "op";
/// Key of the display id (a string): with [`OP_DISPLAY`] optional (a display with an id can be
/// updated later), with [`OP_UPDATE`] required. Jupyter's `transient.display_id`.
pub const KEY_ID: &str = "id";
/// Key of the representations: an object from MIME type (`image/png` in base64, `text/html`,
/// `text/plain`) to data, as in Jupyter's `data` field.
pub const KEY_DATA: &str = "data";
/// Key of [`OP_CLEAR`]'s flag: clear only when the next output arrives (no flicker).
pub const KEY_WAIT: &str = "wait";

/// Show `data` where the cell's output currently ends (with `id`, if any).
pub const OP_DISPLAY: &str = "display";
/// Replace the display `id` with `data`, in place.
pub const OP_UPDATE: &str = "update";
/// Clear the cell's output (`wait`: when the next output arrives).
pub const OP_CLEAR: &str = "clear";

// ---------------------------------------------------------------- errors (stderr)

/// Starts the message of a library error on the cell's stderr: "this cell failed with this
/// error". evcxr prints an `Err` returned with `?` from a cell through `{:?}` (the kernel's
/// preload sets `:efmt {:?}`) and still reports success; the library's `Debug` for its errors
/// writes this marker first (only under fastai-kernel), and the kernel makes the cell fail with
/// the rest of the line as its message, so "Run all" stops there. The kernel also removes the
/// marker wherever else it shows up (an `Err` shown as a cell's value, a panic message), so the
/// reader never sees it.
pub const ERROR_MARKER: &str = "FASTAI_ERROR ";

// ---------------------------------------------------------------- the back channel (widgets, input)

/// The environment variable the kernel sets for the cell process to the path of a Unix socket it
/// listens on: the *back channel*, for what stdout cannot carry - Jupyter comms (widgets) both
/// ways, and `input()`. Newline-delimited JSON objects both ways, each with [`KEY_OP`]; binary
/// buffers travel as base64 strings in [`KEY_BUFFERS`]. The library connects on first use (one
/// connection per cell process; a new connection replaces the old, and the comms opened through
/// a connection that ends are closed).
///
/// ```text
/// library -> kernel   {"op":"comm_open","comm_id":"..","target_name":"jupyter.widget","data":{..},"metadata":{..},"buffers":["<b64>"]}
///                     {"op":"comm_msg","comm_id":"..","data":{..},"buffers":[]}
///                     {"op":"comm_close","comm_id":"..","data":{}}
///                     {"op":"display","data":{"application/vnd.jupyter.widget-view+json":{..},"text/plain":".."}}
///                     {"op":"input_request","prompt":"Name: ","password":false}
///                     {"op":"sync","token":"7"}
/// kernel -> library   {"op":"comm_msg","comm_id":"..","data":{..},"buffers":[]}      (from the frontend)
///                     {"op":"comm_close","comm_id":".."}                            (from the frontend)
///                     {"op":"input_reply","value":"Ada"}  or  {"op":"input_reply","error":".."}
///                     {"op":"sync","token":"7"}                                     (answered with the same)
/// ```
///
/// Messages on the back channel keep their order; a `display` sent after a `comm_open` reaches
/// the notebook after it. `sync` (kernel -> library, echoed back) lets the kernel wait, when a
/// cell ends, until everything the cell sent has been handled.
pub const COMM_SOCKET_ENV: &str = "FASTAI_COMM_SOCKET";

/// Back-channel operations (the Jupyter message types they become or come from).
pub const OP_COMM_OPEN: &str = "comm_open";
/// See [`OP_COMM_OPEN`].
pub const OP_COMM_MSG: &str = "comm_msg";
/// See [`OP_COMM_OPEN`].
pub const OP_COMM_CLOSE: &str = "comm_close";
/// Ask the user for a line of text (the kernel's `input_request` on the stdin channel).
pub const OP_INPUT_REQUEST: &str = "input_request";
/// The answer to [`OP_INPUT_REQUEST`]: [`KEY_VALUE`], or [`KEY_ERROR`] when input is not possible.
pub const OP_INPUT_REPLY: &str = "input_reply";
/// A round trip that orders the back channel: answered with the same [`KEY_TOKEN`].
pub const OP_SYNC: &str = "sync";

/// Keys of back-channel messages (besides [`KEY_OP`] and [`KEY_DATA`]).
pub const KEY_COMM_ID: &str = "comm_id";
/// See [`KEY_COMM_ID`].
pub const KEY_TARGET: &str = "target_name";
/// See [`KEY_COMM_ID`].
pub const KEY_METADATA: &str = "metadata";
/// Binary buffers, base64 strings, in the order of the data's `buffer_paths`.
pub const KEY_BUFFERS: &str = "buffers";
/// See [`KEY_COMM_ID`].
pub const KEY_PROMPT: &str = "prompt";
/// See [`KEY_COMM_ID`].
pub const KEY_PASSWORD: &str = "password";
/// See [`KEY_COMM_ID`].
pub const KEY_VALUE: &str = "value";
/// See [`KEY_COMM_ID`].
pub const KEY_ERROR: &str = "error";
/// See [`KEY_COMM_ID`].
pub const KEY_TOKEN: &str = "token";

// ---------------------------------------------------------------- evcxr's protocol

/// Set by evcxr in the cell process, under any evcxr-based kernel (evcxr's name, not ours).
pub const EVCXR_RUNTIME_ENV: &str = "EVCXR_IS_RUNTIME";

/// evcxr's rich output block, shown when the cell ends (no live updates): a line
/// `EVCXR_BEGIN_CONTENT <mime>`, the data, then a line `EVCXR_END_CONTENT` ([`EVCXR_END`]), all
/// written under one lock of stdout (evcxr's names, not ours).
/// The library writes it under the stock evcxr kernel and for the values that end a cell; the
/// kernel writes it for plain values (its `shortcut` module).
pub const EVCXR_BEGIN: &str = "EVCXR_BEGIN_CONTENT";
/// Ends an [`EVCXR_BEGIN`] block.
pub const EVCXR_END: &str = "EVCXR_END_CONTENT";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_in_the_space_that_separates_them_from_the_payload() {
        for prefix in [DISPLAY_PREFIX, ERROR_MARKER] {
            assert!(
                prefix.ends_with(' ') && !prefix.trim().contains(' '),
                "{prefix:?}"
            );
        }
    }
}
