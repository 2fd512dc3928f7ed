//! Comms (Jupyter's custom messages, which widgets are made of) and `input()`: the back channel
//! between this kernel and the cell process.
//!
//! stdout carries displays one way only, and evcxr owns the cell process's stdin; so the kernel
//! listens on a Unix socket of its own (its path is in the cell process's environment, see the
//! `fastai-wire` crate for the messages) and the library connects to it when a cell first uses a
//! widget or `input()`. Here:
//!
//! - what the library sends becomes iopub `comm_open` / `comm_msg` / `comm_close` and
//!   `display_data`, as children of the running cell's request (between cells: of the frontend's
//!   comm message that caused them);
//! - the frontend's `comm_msg` / `comm_close` are forwarded to the library at once, while a cell
//!   runs too (the shell socket is read concurrently with execution, see `server.rs`);
//! - `comm_info_request` lists the comms open now; comms the frontend opens are closed (the
//!   kernel registers no targets of its own; ipywidgets' frontend then falls back to asking
//!   each widget for its state);
//! - `input_request`s go to the stdin task (`server.rs`), which asks the frontend.
//!
//! One connection at a time: a restarted cell process connects anew and replaces the old
//! connection, and the comms of a connection that ends are closed in the frontend.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use fastai_wire as wire;
use jupyter_protocol::{
    CommClose, CommId, CommInfo, CommInfoReply, CommMsg, CommOpen, JupyterMessage,
    JupyterMessageContent,
};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// Who the iopub messages of the back channel are children of, when they are sent.
pub type ParentFn = Arc<dyn Fn() -> Option<JupyterMessage> + Send + Sync>;

/// An `input_request` of the library: the prompt, whether it is a password, and where the
/// answer goes (`Ok(value)`, or why there is none).
pub struct InputAsk {
    pub prompt: String,
    pub password: bool,
    pub answer: oneshot::Sender<Result<String, String>>,
}

#[derive(Clone)]
pub struct Comms {
    inner: Arc<Mutex<Inner>>,
    iopub: UnboundedSender<JupyterMessage>,
    parent: ParentFn,
    input: UnboundedSender<InputAsk>,
    next_conn: Arc<AtomicU64>,
}

#[derive(Default)]
struct Inner {
    /// The current connection: its number and the sender of its lines.
    writer: Option<(u64, UnboundedSender<String>)>,
    /// Open comms: id -> (target, connection that opened it).
    open: HashMap<String, (String, u64)>,
    /// The frontend's latest comm message: the parent of what it causes between cells.
    idle_parent: Option<JupyterMessage>,
    /// `sync` round trips waiting for their echo.
    syncs: HashMap<String, oneshot::Sender<()>>,
}

impl Comms {
    /// Listens on `path` (whose folder this kernel owns). `parent` tells which request the
    /// back channel's iopub messages belong to; `input` receives the library's input requests.
    pub fn start(
        path: &Path,
        iopub: UnboundedSender<JupyterMessage>,
        parent: ParentFn,
        input: UnboundedSender<InputAsk>,
    ) -> std::io::Result<Comms> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let comms = Comms {
            inner: Arc::new(Mutex::new(Inner::default())),
            iopub,
            parent,
            input,
            next_conn: Arc::new(AtomicU64::new(1)),
        };
        let c = comms.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => c.connected(stream),
                    Err(e) => {
                        eprintln!("fastai-kernel: back channel accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(comms)
    }

    fn connected(&self, stream: UnixStream) {
        let n = self.next_conn.fetch_add(1, Ordering::SeqCst);
        let (read, mut write) = stream.into_split();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if write.write_all(line.as_bytes()).await.is_err()
                    || write.write_all(b"\n").await.is_err()
                {
                    break;
                }
            }
        });
        let replaced = self.inner.lock().unwrap().writer.replace((n, tx));
        if let Some((old, _)) = replaced {
            // a new cell process: what the old one opened is gone with it
            self.close_all_of(old);
        }
        let c = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(read).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => c.handle_library_line(n, &line),
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("fastai-kernel: back channel read failed: {e}");
                        break;
                    }
                }
            }
            c.close_all_of(n);
            let mut inner = c.inner.lock().unwrap();
            if inner.writer.as_ref().is_some_and(|(w, _)| *w == n) {
                inner.writer = None;
            }
        });
    }

    /// Closes, in the frontend, every comm opened through connection `n`.
    fn close_all_of(&self, n: u64) {
        let ids: Vec<String> = {
            let mut inner = self.inner.lock().unwrap();
            let ids: Vec<String> = inner
                .open
                .iter()
                .filter(|(_, (_, c))| *c == n)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                inner.open.remove(id);
            }
            ids
        };
        for id in ids {
            self.send_iopub(
                CommClose {
                    comm_id: CommId(id),
                    data: Map::new(),
                }
                .into(),
                Vec::new(),
                None,
            );
        }
    }

    fn current_parent(&self) -> Option<JupyterMessage> {
        (self.parent)().or_else(|| self.inner.lock().unwrap().idle_parent.clone())
    }

    fn send_iopub(
        &self,
        content: JupyterMessageContent,
        buffers: Vec<Vec<u8>>,
        metadata: Option<Value>,
    ) {
        let parent = self.current_parent();
        let mut msg = JupyterMessage::new(content, parent.as_ref());
        // iopub is a broadcast: no routing identities
        msg.zmq_identities = Vec::new();
        if let Some(m) = metadata {
            msg.metadata = m;
        }
        msg.buffers = buffers.into_iter().map(Into::into).collect();
        let _ = self.iopub.send(msg);
    }

    /// A line from the library, on connection `n`.
    fn handle_library_line(&self, n: u64, line: &str) {
        let Ok(Value::Object(v)) = serde_json::from_str::<Value>(line) else {
            eprintln!("fastai-kernel: back channel: not a JSON object: {line:.200}");
            return;
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let data = || match v.get(wire::KEY_DATA) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let buffers = || -> Vec<Vec<u8>> {
            let Some(Value::Array(list)) = v.get(wire::KEY_BUFFERS) else {
                return Vec::new();
            };
            list.iter()
                .filter_map(Value::as_str)
                .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .collect()
        };
        match v.get(wire::KEY_OP).and_then(Value::as_str).unwrap_or("") {
            wire::OP_COMM_OPEN => {
                let (id, target) = (s(wire::KEY_COMM_ID), s(wire::KEY_TARGET));
                self.inner
                    .lock()
                    .unwrap()
                    .open
                    .insert(id.clone(), (target.clone(), n));
                let content = CommOpen {
                    comm_id: CommId(id),
                    target_name: target,
                    data: data(),
                    target_module: None,
                };
                let metadata = v.get(wire::KEY_METADATA).cloned();
                self.send_iopub(content.into(), buffers(), metadata);
            }
            wire::OP_COMM_MSG => {
                let content = CommMsg {
                    comm_id: CommId(s(wire::KEY_COMM_ID)),
                    data: data(),
                };
                self.send_iopub(content.into(), buffers(), None);
            }
            wire::OP_COMM_CLOSE => {
                let id = s(wire::KEY_COMM_ID);
                self.inner.lock().unwrap().open.remove(&id);
                let content = CommClose {
                    comm_id: CommId(id),
                    data: data(),
                };
                self.send_iopub(content.into(), Vec::new(), None);
            }
            wire::OP_DISPLAY => {
                let line = json!({ wire::KEY_OP: wire::OP_DISPLAY, wire::KEY_DATA: data() });
                match crate::replies::display_message(&line.to_string()) {
                    Some(content) => self.send_iopub(content, Vec::new(), None),
                    None => eprintln!("fastai-kernel: back channel: a display without data"),
                }
            }
            wire::OP_INPUT_REQUEST => {
                let (answer, rx) = oneshot::channel();
                let ask = InputAsk {
                    prompt: s(wire::KEY_PROMPT),
                    password: v
                        .get(wire::KEY_PASSWORD)
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    answer,
                };
                let writer = self.writer_of(n);
                if self.input.send(ask).is_err() {
                    return;
                }
                tokio::spawn(async move {
                    let reply = match rx.await {
                        Ok(Ok(value)) => {
                            json!({wire::KEY_OP: wire::OP_INPUT_REPLY, wire::KEY_VALUE: value})
                        }
                        Ok(Err(e)) => {
                            json!({wire::KEY_OP: wire::OP_INPUT_REPLY, wire::KEY_ERROR: e})
                        }
                        Err(_) => {
                            json!({wire::KEY_OP: wire::OP_INPUT_REPLY, wire::KEY_ERROR: "the kernel dropped the input request"})
                        }
                    };
                    if let Some(w) = writer {
                        let _ = w.send(reply.to_string());
                    }
                });
            }
            wire::OP_SYNC => {
                if let Some(done) = self.inner.lock().unwrap().syncs.remove(&s(wire::KEY_TOKEN)) {
                    let _ = done.send(());
                }
            }
            other => eprintln!("fastai-kernel: back channel: unknown op {other:?}"),
        }
    }

    fn writer_of(&self, n: u64) -> Option<UnboundedSender<String>> {
        match &self.inner.lock().unwrap().writer {
            Some((w, tx)) if *w == n => Some(tx.clone()),
            _ => None,
        }
    }

    /// Waits (at most `limit`) until everything the library sent before now has been handled:
    /// called when a cell ends, so its comm messages and widget displays go out as its children.
    pub async fn sync(&self, limit: Duration) {
        let token = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.inner.lock().unwrap();
            let Some((_, w)) = &inner.writer else {
                return;
            };
            let line = json!({wire::KEY_OP: wire::OP_SYNC, wire::KEY_TOKEN: token.clone()});
            if w.send(line.to_string()).is_err() {
                return;
            }
            inner.syncs.insert(token.clone(), tx);
        }
        let _ = tokio::time::timeout(limit, rx).await;
        self.inner.lock().unwrap().syncs.remove(&token);
    }

    /// A `comm_msg` or `comm_close` from the frontend (on the shell channel), for the library.
    /// Returns false for a comm this kernel does not know.
    pub fn forward_to_library(&self, msg: &JupyterMessage) -> bool {
        let (op, id, data) = match &msg.content {
            JupyterMessageContent::CommMsg(m) => (wire::OP_COMM_MSG, &m.comm_id.0, &m.data),
            JupyterMessageContent::CommClose(m) => (wire::OP_COMM_CLOSE, &m.comm_id.0, &m.data),
            _ => return false,
        };
        let mut inner = self.inner.lock().unwrap();
        let Some((_, conn)) = inner.open.get(id).cloned() else {
            return false;
        };
        if op == wire::OP_COMM_CLOSE {
            inner.open.remove(id);
        }
        inner.idle_parent = Some(msg.clone());
        let buffers: Vec<String> = msg
            .buffers
            .iter()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
            .collect();
        let line = json!({
            wire::KEY_OP: op, wire::KEY_COMM_ID: id, wire::KEY_DATA: data,
            wire::KEY_BUFFERS: buffers,
        });
        match &inner.writer {
            Some((n, w)) if *n == conn => w.send(line.to_string()).is_ok(),
            _ => false,
        }
    }

    /// The frontend opened a comm: no target is registered on this side, so it is closed
    /// again (as ipykernel does for an unknown target).
    pub fn refuse_open(&self, msg: &JupyterMessage) {
        if let JupyterMessageContent::CommOpen(open) = &msg.content {
            let mut reply = JupyterMessage::new(
                CommClose {
                    comm_id: open.comm_id.clone(),
                    data: Map::new(),
                },
                Some(msg),
            );
            reply.zmq_identities = Vec::new();
            let _ = self.iopub.send(reply);
        }
    }

    /// The reply to `comm_info_request`: the open comms (of `target`, if given).
    pub fn info(&self, target: Option<&str>) -> CommInfoReply {
        let inner = self.inner.lock().unwrap();
        let comms = inner
            .open
            .iter()
            .filter(|(_, (t, _))| target.is_none_or(|want| want == t))
            .map(|(id, (t, _))| {
                (
                    CommId(id.clone()),
                    CommInfo {
                        target_name: t.clone(),
                    },
                )
            })
            .collect();
        CommInfoReply {
            comms,
            ..Default::default()
        }
    }
}

/// A folder for this kernel's socket, owned (and removed at exit) by it.
pub struct SocketDir {
    pub dir: PathBuf,
    pub socket: PathBuf,
}

impl SocketDir {
    pub fn create() -> std::io::Result<SocketDir> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "fastai-kernel-{}-{:08x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let socket = dir.join("comm.sock");
        Ok(SocketDir { dir, socket })
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn rand_suffix() -> u32 {
    let id = uuid::Uuid::new_v4();
    u32::from_le_bytes(id.as_bytes()[..4].try_into().unwrap_or([0; 4]))
}
