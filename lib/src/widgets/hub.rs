//! The process's one link to the kernel's back channel, and the state of every widget.
//!
//! The kernel listens on a Unix socket whose path is in `FASTAI_COMM_SOCKET` (see the
//! `fastai-wire` crate for the messages). The first widget or `input()` connects; a thread then
//! reads what the kernel forwards from the frontend (a widget's new value, a click) and applies
//! it at once: a value set in the browser is what the next cell reads. Callbacks run on that
//! thread too, except while a `fit` runs: then they wait in a queue that the training loop
//! drains between batches, so a callback never touches a model in the middle of a step
//! ([`EventsDuringFit`]). A few internal handlers (the Stop button) run at once regardless.
//!
//! Like the interrupt flag, the hub is created once per process and its address published in
//! the environment: every notebook cell has its own copy of this crate's statics.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use fastai_wire as wire;
use serde_json::{json, Map, Value};

use crate::display::{frontend, Frontend};

/// Where the hub's address is published: `<pid>:<address>`.
const ENV: &str = "FASTAI_WIDGET_HUB";

/// The version of the widget protocol spoken (2.1: with `echo_update`, as ipywidgets 8).
pub const PROTOCOL_VERSION: &str = "2.1.0";

pub(crate) type Callback = Arc<Mutex<Box<dyn FnMut(&Value) + Send>>>;

/// What a handler waits for.
#[derive(Clone, PartialEq)]
pub(crate) enum On {
    /// A `custom` message `{"event": "click"}` (a Button).
    Click,
    /// A new value of this state key, from the frontend or from code.
    Change(String),
}

struct Handler {
    on: On,
    /// Runs at once on the receiving thread, even during a fit (the Stop button).
    immediate: bool,
    f: Callback,
}

#[derive(Default)]
struct Model {
    state: Map<String, Value>,
    /// Top-level state keys whose value is binary (an image's bytes).
    buffers: HashMap<String, Vec<u8>>,
    handlers: Vec<Handler>,
    /// Its comm is open in the frontend (it is, or is in, a widget that was displayed).
    opened: bool,
    closed: bool,
}

#[derive(Default)]
pub(crate) struct Hub {
    /// The connection's writing end; `None` until connected, or when there is no kernel.
    link: Mutex<Option<UnixStream>>,
    /// 0: not tried, 1: connected, 2: no back channel (static fallback).
    status: Mutex<u8>,
    models: Mutex<HashMap<String, Model>>,
    pending: Mutex<Vec<(Callback, Value)>>,
    /// How many fits are running (callbacks wait for [`run_pending`] meanwhile).
    fitting: AtomicUsize,
    input_wait: Mutex<Option<std::sync::mpsc::Sender<Result<String, String>>>>,
}

/// The process's hub (one for all notebook cells: see [`crate::process_global`]).
pub(crate) fn hub() -> &'static Hub {
    static LOCAL: OnceLock<&'static Hub> = OnceLock::new();
    LOCAL.get_or_init(|| crate::process_global::shared(ENV, || Box::leak(Box::default())))
}

impl Hub {
    /// Whether widgets are live (the fastai kernel's back channel is connected); connects on
    /// first use.
    pub(crate) fn live(&'static self) -> bool {
        let mut status = self.status.lock().unwrap();
        if *status == 0 {
            *status = match self.connect() {
                Some(()) => 1,
                None => 2,
            };
        }
        *status == 1
    }

    fn connect(&'static self) -> Option<()> {
        if frontend() != Frontend::FastaiKernel {
            return None;
        }
        let path = std::env::var_os(wire::COMM_SOCKET_ENV)?;
        let stream = match UnixStream::connect(&path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "widgets: cannot reach the kernel's back channel at {}: {e}; widgets are shown \
                     as static outputs",
                    std::path::Path::new(&path).display()
                );
                return None;
            }
        };
        let reader = stream.try_clone().ok()?;
        *self.link.lock().unwrap() = Some(stream);
        std::thread::Builder::new()
            .name("fastai-widgets".into())
            .spawn(move || self.receive(reader))
            .ok()?;
        Some(())
    }

    /// Sends one message to the kernel; false when there is no link.
    pub(crate) fn send(&self, msg: &Value) -> bool {
        let mut link = self.link.lock().unwrap();
        let Some(stream) = link.as_mut() else {
            return false;
        };
        let mut line = msg.to_string();
        line.push('\n');
        if stream.write_all(line.as_bytes()).is_err() {
            *link = None;
            return false;
        }
        true
    }

    /// Registers a model; returns its id. Its comm opens when it is first shown
    /// ([`Hub::ensure_open`]), with the state it has then: what builders set before goes out in
    /// the `comm_open` itself.
    pub(crate) fn open(
        &'static self,
        state: Map<String, Value>,
        buffers: Vec<(String, Vec<u8>)>,
    ) -> String {
        let id = format!("{:032x}", rand::random::<u128>());
        let mut model = Model {
            state,
            ..Model::default()
        };
        for (k, b) in buffers {
            model.buffers.insert(k, b);
        }
        self.models.lock().unwrap().insert(id.clone(), model);
        id
    }

    /// Opens the comm of `id` (when live and not yet open), after those of the models its state
    /// refers to (`IPY_MODEL_<id>`: its layout, style, children), which the frontend must know
    /// first.
    pub(crate) fn ensure_open(&'static self, id: &str) {
        if !self.live() {
            return;
        }
        let (refs, data, bufs) = {
            let mut models = self.models.lock().unwrap();
            let Some(m) = models.get_mut(id) else { return };
            if m.opened || m.closed {
                return;
            }
            m.opened = true;
            let mut refs = Vec::new();
            for v in m.state.values() {
                let items = match v {
                    Value::Array(a) => a.iter().collect(),
                    v => vec![v],
                };
                for item in items {
                    if let Some(r) = item.as_str().and_then(|s| s.strip_prefix("IPY_MODEL_")) {
                        refs.push(r.to_string());
                    }
                }
            }
            let (data, bufs) = full_state(m);
            (refs, data, bufs)
        };
        for r in refs {
            self.ensure_open(&r);
        }
        self.send(&json!({
            wire::KEY_OP: wire::OP_COMM_OPEN,
            wire::KEY_COMM_ID: id,
            wire::KEY_TARGET: "jupyter.widget",
            wire::KEY_DATA: data,
            wire::KEY_METADATA: {"version": PROTOCOL_VERSION},
            wire::KEY_BUFFERS: bufs,
        }));
    }

    fn is_open(&self, id: &str) -> bool {
        let models = self.models.lock().unwrap();
        models.get(id).is_some_and(|m| m.opened && !m.closed)
    }

    /// A state value.
    pub(crate) fn get(&self, id: &str, key: &str) -> Value {
        let models = self.models.lock().unwrap();
        models
            .get(id)
            .and_then(|m| m.state.get(key).cloned())
            .unwrap_or(Value::Null)
    }

    /// A binary state value (an image's bytes).
    pub(crate) fn get_bytes(&self, id: &str, key: &str) -> Vec<u8> {
        let models = self.models.lock().unwrap();
        models
            .get(id)
            .and_then(|m| m.buffers.get(key).cloned())
            .unwrap_or_default()
    }

    /// Sets state values from code: the frontend is told (`update`), and change handlers run.
    pub(crate) fn set(&'static self, id: &str, values: Vec<(&str, Value)>) {
        let mut changed = Vec::new();
        {
            let mut models = self.models.lock().unwrap();
            let Some(m) = models.get_mut(id) else { return };
            for (k, v) in &values {
                if m.state.get(*k) != Some(v) {
                    m.state.insert(k.to_string(), v.clone());
                    changed.push((k.to_string(), v.clone()));
                }
            }
        }
        if changed.is_empty() {
            return;
        }
        let state: Map<String, Value> = changed.iter().cloned().collect();
        if self.is_open(id) {
            // a new child of a box that is shown: the frontend must know it first
            for (_, v) in &changed {
                let items = match v {
                    Value::Array(a) => a.iter().collect(),
                    v => vec![v],
                };
                for item in items {
                    if let Some(r) = item.as_str().and_then(|s| s.strip_prefix("IPY_MODEL_")) {
                        self.ensure_open(r);
                    }
                }
            }
            self.send(&json!({
                wire::KEY_OP: wire::OP_COMM_MSG, wire::KEY_COMM_ID: id,
                wire::KEY_DATA: {"method": "update", "state": state, "buffer_paths": []},
                wire::KEY_BUFFERS: [],
            }));
        }
        for (k, v) in changed {
            self.fire(id, &On::Change(k), &v, true);
        }
    }

    /// Sets a binary state value from code (an image's bytes).
    pub(crate) fn set_bytes(&'static self, id: &str, key: &str, bytes: Vec<u8>) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        {
            let mut models = self.models.lock().unwrap();
            let Some(m) = models.get_mut(id) else { return };
            m.buffers.insert(key.to_string(), bytes);
        }
        if self.is_open(id) {
            self.send(&json!({
                wire::KEY_OP: wire::OP_COMM_MSG, wire::KEY_COMM_ID: id,
                wire::KEY_DATA: {"method": "update", "state": {}, "buffer_paths": [[key]]},
                wire::KEY_BUFFERS: [b64],
            }));
        }
    }

    /// Adds a handler to a model.
    pub(crate) fn on(&self, id: &str, on: On, immediate: bool, f: Callback) {
        if let Some(m) = self.models.lock().unwrap().get_mut(id) {
            m.handlers.push(Handler { on, immediate, f });
        }
    }

    /// Runs (or, during a fit, queues) the handlers of `id` waiting for `on`. `direct`: the
    /// caller is code in a cell (a value set there), so they run now on its thread.
    fn fire(&self, id: &str, on: &On, arg: &Value, direct: bool) {
        let handlers: Vec<(bool, Callback)> = {
            let models = self.models.lock().unwrap();
            let Some(m) = models.get(id) else { return };
            m.handlers
                .iter()
                .filter(|h| &h.on == on)
                .map(|h| (h.immediate, h.f.clone()))
                .collect()
        };
        for (immediate, f) in handlers {
            if direct || immediate || self.fitting.load(Ordering::SeqCst) == 0 {
                call(&f, arg);
            } else {
                self.pending.lock().unwrap().push((f, arg.clone()));
            }
        }
    }

    /// Closes a model's comm (its views disappear in the frontend).
    pub(crate) fn close(&'static self, id: &str) {
        let was_open = {
            let mut models = self.models.lock().unwrap();
            models
                .get_mut(id)
                .is_some_and(|m| m.opened && !std::mem::replace(&mut m.closed, true))
        };
        if was_open {
            self.send(&json!({
                wire::KEY_OP: wire::OP_COMM_CLOSE, wire::KEY_COMM_ID: id, wire::KEY_DATA: {},
            }));
        }
    }

    /// The receiving thread: applies what the kernel forwards, until the connection ends.
    fn receive(&'static self, stream: UnixStream) {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let op = msg.get(wire::KEY_OP).and_then(Value::as_str).unwrap_or("");
            match op {
                wire::OP_SYNC => {
                    self.send(&Value::Object(msg.clone()));
                }
                wire::OP_INPUT_REPLY => {
                    let answer = match (msg.get(wire::KEY_VALUE), msg.get(wire::KEY_ERROR)) {
                        (_, Some(e)) => Err(e.as_str().unwrap_or("no input").to_string()),
                        (Some(v), _) => Ok(v.as_str().unwrap_or("").to_string()),
                        _ => Err("an input reply without a value".to_string()),
                    };
                    if let Some(tx) = self.input_wait.lock().unwrap().take() {
                        let _ = tx.send(answer);
                    }
                }
                wire::OP_COMM_MSG => self.apply_from_frontend(&msg),
                wire::OP_COMM_CLOSE => {
                    let id = msg
                        .get(wire::KEY_COMM_ID)
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if let Some(m) = self.models.lock().unwrap().get_mut(id) {
                        m.closed = true;
                    }
                }
                _ => {}
            }
        }
        // the kernel went away: widgets stay readable, nothing more is sent
        *self.link.lock().unwrap() = None;
    }

    fn apply_from_frontend(&'static self, msg: &Map<String, Value>) {
        let id = msg
            .get(wire::KEY_COMM_ID)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let data = msg.get(wire::KEY_DATA).cloned().unwrap_or(Value::Null);
        match data.get("method").and_then(Value::as_str).unwrap_or("") {
            "update" => {
                let Some(Value::Object(state)) = data.get("state") else {
                    return;
                };
                let bufs: Vec<Vec<u8>> = match msg.get(wire::KEY_BUFFERS) {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .collect(),
                    _ => Vec::new(),
                };
                let paths: Vec<String> = match data.get("buffer_paths") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|p| p.get(0).and_then(Value::as_str).map(String::from))
                        .collect(),
                    _ => Vec::new(),
                };
                let mut changed = Vec::new();
                {
                    let mut models = self.models.lock().unwrap();
                    let Some(m) = models.get_mut(&id) else { return };
                    for (k, v) in state {
                        if m.state.get(k) != Some(v) {
                            changed.push((k.clone(), v.clone()));
                        }
                        m.state.insert(k.clone(), v.clone());
                    }
                    for (k, b) in paths.into_iter().zip(bufs) {
                        m.buffers.insert(k, b);
                    }
                }
                // ipywidgets 8: echo the frontend's update to every frontend (protocol 2.1)
                self.send(&json!({
                    wire::KEY_OP: wire::OP_COMM_MSG, wire::KEY_COMM_ID: id,
                    wire::KEY_DATA: {"method": "echo_update", "state": state, "buffer_paths": []},
                    wire::KEY_BUFFERS: [],
                }));
                for (k, v) in changed {
                    self.fire(&id, &On::Change(k), &v, false);
                }
            }
            "custom" => {
                let content = data.get("content").cloned().unwrap_or(Value::Null);
                if content.get("event").and_then(Value::as_str) == Some("click") {
                    self.fire(&id, &On::Click, &content, false);
                }
            }
            "request_state" => {
                let full = {
                    let models = self.models.lock().unwrap();
                    models.get(&id).map(full_state)
                };
                if let Some((mut data, bufs)) = full {
                    data.insert("method".into(), "update".into());
                    self.send(&json!({
                        wire::KEY_OP: wire::OP_COMM_MSG, wire::KEY_COMM_ID: id,
                        wire::KEY_DATA: data, wire::KEY_BUFFERS: bufs,
                    }));
                }
            }
            _ => {}
        }
    }

    /// Asks the frontend for a line of text (the kernel's `input_request`).
    pub(crate) fn input(&'static self, prompt: &str, password: bool) -> Result<String, String> {
        if !self.live() {
            return Err("no back channel to the kernel".into());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        *self.input_wait.lock().unwrap() = Some(tx);
        if !self.send(&json!({
            wire::KEY_OP: wire::OP_INPUT_REQUEST, wire::KEY_PROMPT: prompt,
            wire::KEY_PASSWORD: password,
        })) {
            return Err("the kernel's back channel is closed".into());
        }
        // the notebook's stop button (SIGINT) ends the wait, as it ends training
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(answer) => return answer,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if crate::learner::interrupt::interrupted() {
                        self.input_wait.lock().unwrap().take();
                        return Err("interrupted while waiting for the answer".into());
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the kernel's back channel closed before the answer".into())
                }
            }
        }
    }
}

/// A model's `data` for `comm_open` or a full `update` (state and buffer paths), and its buffers
/// in base64.
fn full_state(m: &Model) -> (Map<String, Value>, Vec<String>) {
    let mut data = Map::new();
    let mut state = m.state.clone();
    let mut paths = Vec::new();
    let mut bufs = Vec::new();
    for (k, b) in &m.buffers {
        state.remove(k);
        paths.push(json!([k]));
        bufs.push(base64::engine::general_purpose::STANDARD.encode(b));
    }
    data.insert("state".into(), Value::Object(state));
    data.insert("buffer_paths".into(), Value::Array(paths));
    (data, bufs)
}

fn call(f: &Callback, arg: &Value) {
    let mut guard = match f.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        // the callback is running and set its own widget's value: no second, nested call
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (*guard)(arg)));
    if let Err(p) = run {
        eprintln!(
            "a widget's callback panicked: {}",
            crate::error::panic_text(p)
        );
    }
}

/// Runs the callbacks that waited while a fit ran (the training loop calls it between batches).
pub fn run_pending() {
    let h = hub();
    let queued = std::mem::take(&mut *h.pending.lock().unwrap());
    for (f, arg) in queued {
        call(&f, &arg);
    }
}

/// While one is held (a fit runs), widget callbacks wait for [`run_pending`] instead of running
/// on the receiving thread in the middle of a batch. Dropping it runs what is left.
pub struct EventsDuringFit(());

impl EventsDuringFit {
    pub fn start() -> EventsDuringFit {
        hub().fitting.fetch_add(1, Ordering::SeqCst);
        EventsDuringFit(())
    }
}

impl Drop for EventsDuringFit {
    fn drop(&mut self) {
        hub().fitting.fetch_sub(1, Ordering::SeqCst);
        run_pending();
    }
}
