//! The Jupyter side: sockets, signed messages, and the request loops.
//!
//! The shell socket is read all the time: requests that need the engine (execute, complete,
//! inspect, history, shutdown) are queued and served one at a time, in order (a cell runs to its
//! end before the next one starts), while comm messages (a widget's click or new value, which
//! must reach a cell that is training), `comm_info_request`, `kernel_info_request` and
//! `is_complete_request` are answered at once. The control socket (interrupt, shutdown) and the
//! heartbeat are served concurrently too. Everything sent on iopub goes through one task that
//! owns the socket; the same for the shell's replies. The back channel to the cell process
//! (widgets, `input()`) is in `comms.rs`.
//!
//! Messages whose HMAC signature does not verify are dropped and logged; they never reach the
//! engine (the socket crate verifies each message against the connection file's key).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use fastai_wire as wire;
use jupyter_protocol::{
    CommInfoReply, CompleteReply, ConnectionInfo, ErrorOutput, ExecuteInput, ExecuteReply,
    ExecuteRequest, ExecutionCount, Header, InputRequest, InspectReply, InterruptReply,
    JupyterMessage, JupyterMessageContent, ReplyError, ReplyStatus, ShutdownReply, Status,
    StreamContent, UnknownMessage,
};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection,
    create_kernel_iopub_connection, create_kernel_shell_connection, create_kernel_stdin_connection,
    Connection, KernelControlConnection, KernelStdinConnection, RawMessage, RouterRecvConnection,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::comms::{Comms, InputAsk, SocketDir};
use crate::engine::{Engine, Outcome, OutputSink, Stream};
use crate::history::History;
use crate::replies::{
    display_message, execute_result, is_complete, kernel_info, to_media, PanicText,
};

pub fn run(connection_file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(connection_file).with_context(|| {
        format!(
            "cannot read the connection file {}",
            connection_file.display()
        )
    })?;
    let info: ConnectionInfo = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a Jupyter connection file",
            connection_file.display()
        )
    })?;
    // The back channel's folder: made before any thread starts (the path goes into the
    // environment the cell process inherits), removed when the kernel ends.
    let socket_dir = match SocketDir::create() {
        Ok(d) => Some(SOCKET_DIR.get_or_init(|| d)),
        Err(e) => {
            eprintln!(
                "fastai-kernel: no back channel (widgets, input()) - cannot create its folder: {e}"
            );
            None
        }
    };
    crate::cell_env::prepare(socket_dir.map(|d| d.socket.as_path()));
    // evcxr reports dependency builds on our stderr only: read it, to show them in the cell.
    let (build_tx, build_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    if let Err(e) = crate::build_log::capture_stderr(move |line| {
        let _ = build_tx.send(line);
    }) {
        eprintln!("fastai-kernel: build progress will only be in this log ({e})");
    }
    // A build folder of our own, where the library is (usually) compiled already.
    let slot = crate::preload::acquire_slot()?;
    std::env::set_var("EVCXR_TMPDIR", &slot.dir);
    eprintln!("fastai-kernel: build folder {}", slot.dir.display());
    // rust-analyzer (evcxr's type analysis) on a thread of its own, so that the first cells do not
    // wait seconds for it to index the library's dependencies (third_party/evcxr/PATCHES.md);
    // EVCXR_BACKGROUND_ANALYSIS=0 in the kernelspec's environment turns it off.
    if std::env::var_os("EVCXR_BACKGROUND_ANALYSIS").is_none() {
        std::env::set_var("EVCXR_BACKGROUND_ANALYSIS", "1");
    }
    // every line a cell writes on stderr reaches the client before the cell is reported done
    // (evcxr reads stderr on a thread of its own; patch 4 marks the end of each cell's stderr);
    // EVCXR_STDERR_MARKER=0 turns it off, leaving the short wait for quiet in the engine.
    if std::env::var_os("EVCXR_STDERR_MARKER").is_none() {
        std::env::set_var("EVCXR_STDERR_MARKER", "1");
    }
    crate::preload::fast_cells();
    let preload = crate::preload::lib_dir()
        .map(|lib| crate::preload::preload_codes(&lib))
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(serve(info, preload, build_rx, socket_dir));
    drop(slot);
    if let Some(d) = socket_dir {
        d.remove();
    }
    result
}

/// The back channel's folder, for [`shutdown`] to remove.
static SOCKET_DIR: OnceLock<SocketDir> = OnceLock::new();

/// What the output sink needs to know about the cell that is running.
#[derive(Default)]
struct CellState {
    parent: Option<JupyterMessage>,
    /// What the panic hook printed, held back from stderr for the cell's error message.
    panic: PanicText,
    /// An error the library reported for this cell (an `Err` returned with `?`).
    error: Option<String>,
    /// Whether this cell was told that it waits for the library to be compiled.
    told_about_preload: bool,
    /// The latest build lines of the library's preload that arrived before any cell ran.
    preload_lines: Vec<String>,
    /// Whether the running cell's frontend accepts `input_request`s.
    allow_stdin: bool,
}

/// How many early preload build lines are kept for the first cell.
const KEPT_PRELOAD_LINES: usize = 10;

/// Said in a cell that waits while the library is compiled at start-up.
const PRELOAD_NOTE: &str = "fastai-kernel: compiling the fastai library into this kernel's build \
     folder first (its sources changed, or the folder is new; a few minutes, once), then the cell runs";

struct Kernel {
    iopub: UnboundedSender<JupyterMessage>,
    shell: UnboundedSender<JupyterMessage>,
    comms: Option<Comms>,
    /// Set while a queued request is being served (the kernel is busy already).
    busy: Arc<AtomicBool>,
    engine: Engine,
    cell: Arc<Mutex<CellState>>,
    execution_count: usize,
    history: History,
}

async fn serve(
    info: ConnectionInfo,
    preload: Vec<String>,
    build_lines: UnboundedReceiver<String>,
    socket_dir: Option<&SocketDir>,
) -> Result<()> {
    let session = uuid::Uuid::new_v4().to_string();
    let shell = create_kernel_shell_connection(&info, &session)
        .await
        .context("binding shell")?;
    let control = create_kernel_control_connection(&info, &session)
        .await
        .context("binding control")?;
    let mut iopub = create_kernel_iopub_connection(&info, &session)
        .await
        .context("binding iopub")?;
    // `input()` in a cell asks the frontend through this socket (see `stdin_loop`).
    let stdin = create_kernel_stdin_connection(&info, &session)
        .await
        .context("binding stdin")?;
    let mut heartbeat = create_kernel_heartbeat_connection(&info)
        .await
        .context("binding heartbeat")?;

    let (iopub_tx, mut iopub_rx) = tokio::sync::mpsc::unbounded_channel::<JupyterMessage>();
    tokio::spawn(async move {
        while let Some(m) = iopub_rx.recv().await {
            if let Err(e) = iopub.send(m).await {
                eprintln!("fastai-kernel: iopub send failed: {e}");
            }
        }
    });
    tokio::spawn(async move {
        loop {
            if let Err(e) = heartbeat.single_heartbeat().await {
                eprintln!("fastai-kernel: heartbeat: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });

    let cell = Arc::new(Mutex::new(CellState::default()));
    let sink = output_sink(iopub_tx.clone(), cell.clone());
    let engine = Engine::start(sink, preload);

    tokio::spawn(forward_build_lines(
        build_lines,
        iopub_tx.clone(),
        cell.clone(),
        engine.clone(),
    ));
    tokio::spawn(control_loop(control, engine.clone(), iopub_tx.clone()));

    let (input_tx, input_rx) = tokio::sync::mpsc::unbounded_channel::<InputAsk>();
    tokio::spawn(stdin_loop(stdin, input_rx, cell.clone()));
    let comms = socket_dir.and_then(|d| {
        let cell = cell.clone();
        let parent = Arc::new(move || cell.lock().unwrap().parent.clone());
        Comms::start(&d.socket, iopub_tx.clone(), parent, input_tx)
            .map_err(|e| eprintln!("fastai-kernel: no back channel (widgets, input()): {e}"))
            .ok()
    });

    let (shell_send, shell_recv) = shell.split();
    let (shell_tx, mut shell_rx) = tokio::sync::mpsc::unbounded_channel::<JupyterMessage>();
    tokio::spawn(async move {
        let mut shell_send = shell_send;
        while let Some(m) = shell_rx.recv().await {
            if let Err(e) = shell_send.send(m).await {
                eprintln!("fastai-kernel: shell send failed: {e}");
            }
        }
    });
    let busy = Arc::new(AtomicBool::new(false));
    let (queue_tx, queue_rx) = tokio::sync::mpsc::unbounded_channel::<JupyterMessage>();
    tokio::spawn(shell_reader(
        shell_recv,
        queue_tx,
        shell_tx.clone(),
        iopub_tx.clone(),
        comms.clone(),
        busy.clone(),
    ));
    let mut kernel = Kernel {
        iopub: iopub_tx,
        shell: shell_tx,
        comms,
        busy,
        engine,
        cell,
        execution_count: 0,
        history: History::default(),
    };
    kernel.serve_queue(queue_rx).await
}

/// Reads the shell socket all the time: answers what needs no engine at once (comm messages
/// reach the cell process even while a cell runs) and queues the rest for [`Kernel::serve_queue`].
async fn shell_reader(
    mut shell: RouterRecvConnection,
    queue: UnboundedSender<JupyterMessage>,
    replies: UnboundedSender<JupyterMessage>,
    iopub: UnboundedSender<JupyterMessage>,
    comms: Option<Comms>,
    busy: Arc<AtomicBool>,
) {
    loop {
        let msg = match read_request(&mut shell).await {
            Ok(m) => m,
            Err(e) => {
                // A bad signature, a malformed frame: never executed, only logged.
                eprintln!("fastai-kernel: dropped a shell message: {e}");
                continue;
            }
        };
        let reply = match &msg.content {
            JupyterMessageContent::KernelInfoRequest(_) => Some(kernel_info().as_child_of(&msg)),
            JupyterMessageContent::IsCompleteRequest(req) => {
                Some(is_complete(&req.code).as_child_of(&msg))
            }
            JupyterMessageContent::CommInfoRequest(req) => Some(
                match &comms {
                    Some(c) => c.info(req.target_name.as_deref()),
                    None => CommInfoReply::default(),
                }
                .as_child_of(&msg),
            ),
            JupyterMessageContent::CommMsg(_) | JupyterMessageContent::CommClose(_) => {
                if !comms.as_ref().is_some_and(|c| c.forward_to_library(&msg)) {
                    eprintln!(
                        "fastai-kernel: a {} for a comm that is not open",
                        msg.content.message_type()
                    );
                }
                None
            }
            JupyterMessageContent::CommOpen(_) => {
                if let Some(c) = &comms {
                    c.refuse_open(&msg);
                }
                None
            }
            _ => {
                let _ = queue.send(msg);
                continue;
            }
        };
        // While a cell runs the kernel is busy already: no idle in the middle of it.
        let quiet = busy.load(Ordering::SeqCst);
        if !quiet {
            let _ = iopub.send(Status::busy().as_child_of(&msg));
        }
        if let Some(r) = reply {
            let _ = replies.send(r);
        }
        if !quiet {
            let _ = iopub.send(Status::idle().as_child_of(&msg));
        }
    }
}

/// Answers the library's `input()`: an `input_request` to the frontend of the running cell,
/// when its execute request allowed it; the frontend's `input_reply` goes back to the cell.
async fn stdin_loop(
    mut stdin: KernelStdinConnection,
    mut asks: UnboundedReceiver<InputAsk>,
    cell: Arc<Mutex<CellState>>,
) {
    while let Some(ask) = asks.recv().await {
        let (parent, allowed) = {
            let c = cell.lock().unwrap();
            (c.parent.clone(), c.allow_stdin)
        };
        let Some(parent) = parent else {
            let _ = ask.answer.send(Err(
                "input() can only ask while a cell runs (not from a widget's callback)".into(),
            ));
            continue;
        };
        if !allowed {
            let _ = ask.answer.send(Err(
                "this frontend does not accept input (its execute request has allow_stdin                  false; nbconvert and papermill runs do not): give the value in the code instead"
                    .into(),
            ));
            continue;
        }
        let request = InputRequest {
            prompt: ask.prompt,
            password: ask.password,
        }
        .as_child_of(&parent);
        let request_id = request.header.msg_id.clone();
        if let Err(e) = stdin.send(request).await {
            let _ = ask
                .answer
                .send(Err(format!("could not ask the frontend for input: {e}")));
            continue;
        }
        let asked_by = parent.header.msg_id.clone();
        let cell_ended = {
            let cell = cell.clone();
            move || {
                let c = cell.lock().unwrap();
                c.parent.as_ref().map(|p| &p.header.msg_id) != Some(&asked_by)
            }
        };
        let answer = loop {
            let read = tokio::select! {
                r = read_request(&mut stdin) => r,
                _ = async {
                    // (an interrupted cell stops waiting; so does this)
                    while !cell_ended() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                } => break Err("the cell ended before the answer".to_string()),
            };
            match read {
                Ok(m) => {
                    let for_us = m
                        .parent_header
                        .as_ref()
                        .is_none_or(|p| p.msg_id == request_id);
                    match m.content {
                        JupyterMessageContent::InputReply(r) if for_us => break Ok(r.value),
                        other => eprintln!(
                            "fastai-kernel: unexpected {} on stdin",
                            other.message_type()
                        ),
                    }
                }
                Err(e) => break Err(format!("the frontend's input reply was unreadable: {e}")),
            }
        };
        let _ = ask.answer.send(answer);
    }
}

fn output_sink(iopub: UnboundedSender<JupyterMessage>, cell: Arc<Mutex<CellState>>) -> OutputSink {
    Arc::new(move |stream, line| {
        let mut state = cell.lock().unwrap();
        let CellState {
            parent,
            panic,
            error,
            ..
        } = &mut *state;
        let Some(parent) = parent.as_ref() else {
            // Output between cells (start-up, late lines) goes to the server's log.
            eprintln!("[cell process] {line}");
            return;
        };
        let stderr = |text: &str| StreamContent::stderr(&format!("{text}\n")).as_child_of(parent);
        match stream {
            Stream::Stderr => {
                // A panic's report becomes the cell's error message, not stderr output as well.
                for line in panic.take(&line) {
                    if let Some(msg) = line.strip_prefix(wire::ERROR_MARKER) {
                        // `?` returned a fastai error: evcxr printed it and reports success;
                        // we do not.
                        error.get_or_insert_with(|| msg.to_string());
                    } else {
                        let _ = iopub.send(stderr(&line));
                    }
                }
            }
            Stream::Stdout => {
                if let Some(held) = panic.release() {
                    let _ = iopub.send(stderr(&held));
                }
                let msg = match line
                    .strip_prefix(wire::DISPLAY_PREFIX)
                    .and_then(display_message)
                {
                    Some(content) => JupyterMessage::new(content, Some(parent)),
                    None => StreamContent::stdout(&(line + "\n")).as_child_of(parent),
                };
                let _ = iopub.send(msg);
            }
        }
    })
}

/// Shows build lines (`Compiling foo v1.0`) in the running cell, as stderr: a `:dep`, or the
/// library being recompiled at start-up. Between cells they are only in the server's log
/// (except the preload's latest lines, kept for the first cell).
async fn forward_build_lines(
    mut lines: UnboundedReceiver<String>,
    iopub: UnboundedSender<JupyterMessage>,
    cell: Arc<Mutex<CellState>>,
    engine: Engine,
) {
    while let Some(line) = lines.recv().await {
        let mut state = cell.lock().unwrap();
        let Some(parent) = state.parent.clone() else {
            if engine.is_preloading() {
                state.preload_lines.push(line);
                let extra = state.preload_lines.len().saturating_sub(KEPT_PRELOAD_LINES);
                state.preload_lines.drain(..extra);
            }
            continue;
        };
        if engine.is_preloading() && !state.told_about_preload {
            state.told_about_preload = true;
            let note = format!("{PRELOAD_NOTE}\n");
            let _ = iopub.send(StreamContent::stderr(&note).as_child_of(&parent));
        }
        let _ = iopub.send(StreamContent::stderr(&(line + "\n")).as_child_of(&parent));
    }
}

async fn control_loop(
    mut control: KernelControlConnection,
    engine: Engine,
    iopub: UnboundedSender<JupyterMessage>,
) {
    loop {
        let msg = match read_request(&mut control).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("fastai-kernel: dropped a control message: {e}");
                continue;
            }
        };
        let _ = iopub.send(Status::busy().as_child_of(&msg));
        match &msg.content {
            JupyterMessageContent::InterruptRequest(_) => {
                engine.interrupt(interrupt_grace());
                let _ = control.send(InterruptReply::new().as_child_of(&msg)).await;
            }
            JupyterMessageContent::ShutdownRequest(req) => {
                let reply = ShutdownReply {
                    restart: req.restart,
                    ..Default::default()
                };
                let _ = control.send(reply.as_child_of(&msg)).await;
                let _ = iopub.send(Status::idle().as_child_of(&msg));
                shutdown(&engine).await;
            }
            JupyterMessageContent::KernelInfoRequest(_) => {
                let _ = control.send(kernel_info().as_child_of(&msg)).await;
            }
            other => eprintln!(
                "fastai-kernel: unhandled control message {}",
                other.message_type()
            ),
        }
        let _ = iopub.send(Status::idle().as_child_of(&msg));
    }
}

/// How long a cell may take to stop after SIGINT before its process is killed
/// (`FASTAI_INTERRUPT_GRACE` seconds, default 10: longer than one training batch on a CPU).
fn interrupt_grace() -> Duration {
    let secs = std::env::var("FASTAI_INTERRUPT_GRACE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Reads the next request on a kernel socket (shell or control). Its signature is checked as
/// `Connection::read` does, but the content is parsed leniently: a request that the typed
/// messages cannot represent (a `history_request` without `n` or `unique`, which clients leave
/// out) still arrives, as an `UnknownMessage` with its JSON content, rather than being dropped
/// with no reply. `history_request`s always come that way (see [`History::answer`]).
async fn read_request<S: zeromq::SocketRecv>(conn: &mut Connection<S>) -> Result<JupyterMessage> {
    let multipart = conn.socket.recv().await?;
    let raw = RawMessage::from_multipart(multipart, &conn.mac)?;
    parse_request(raw)
}

fn parse_request(raw: RawMessage) -> Result<JupyterMessage> {
    let parts = &raw.jparts;
    anyhow::ensure!(parts.len() >= 4, "a message of {} parts", parts.len());
    let header: Header = serde_json::from_slice(&parts[0]).context("the message's header")?;
    let content: serde_json::Value =
        serde_json::from_slice(&parts[3]).context("the message's content")?;
    let unknown = |content| {
        JupyterMessageContent::UnknownMessage(UnknownMessage {
            msg_type: header.msg_type.clone(),
            content,
        })
    };
    let content = if header.msg_type == "history_request" {
        unknown(content)
    } else {
        match JupyterMessageContent::from_type_and_content(&header.msg_type, content.clone()) {
            Ok(typed) => typed,
            Err(e) => {
                eprintln!(
                    "fastai-kernel: a {} that does not parse: {e}",
                    header.msg_type
                );
                unknown(content)
            }
        }
    };
    Ok(JupyterMessage {
        zmq_identities: raw.zmq_identities,
        // (no parent: `{}`, which is not a header)
        parent_header: serde_json::from_slice(&parts[1]).ok(),
        metadata: serde_json::from_slice(&parts[2]).unwrap_or_else(|_| serde_json::json!({})),
        buffers: parts[4..].to_vec(),
        header,
        content,
        channel: None,
    })
}

/// The reply to a `history_request` (its content as sent: see [`History::answer`]). Written as
/// JSON: the typed reply cannot carry IPython's `null` output of a cell without a result.
fn history_reply(
    history: &History,
    msg: &JupyterMessage,
    request: &serde_json::Value,
) -> JupyterMessage {
    let content = serde_json::json!({ "status": "ok", "history": history.answer(request) });
    JupyterMessage::new(
        JupyterMessageContent::UnknownMessage(UnknownMessage {
            msg_type: "history_reply".to_string(),
            content,
        }),
        Some(msg),
    )
}

async fn shutdown(engine: &Engine) -> ! {
    engine.kill_cell_process();
    if let Some(d) = SOCKET_DIR.get() {
        d.remove();
    }
    // Let the replies leave the sockets.
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::process::exit(0)
}

impl Kernel {
    /// Serves the queued shell requests, one at a time, in order.
    async fn serve_queue(&mut self, mut queue: UnboundedReceiver<JupyterMessage>) -> Result<()> {
        while let Some(msg) = queue.recv().await {
            self.busy.store(true, Ordering::SeqCst);
            let _ = self.iopub.send(Status::busy().as_child_of(&msg));
            let reply: Option<JupyterMessage> = match &msg.content {
                JupyterMessageContent::ExecuteRequest(req) => Some(self.execute(&msg, req).await),
                JupyterMessageContent::CompleteRequest(req) => Some(
                    self.complete(&req.code, req.cursor_pos)
                        .await
                        .as_child_of(&msg),
                ),
                JupyterMessageContent::InspectRequest(req) => Some(
                    self.inspect(&req.code, req.cursor_pos)
                        .await
                        .as_child_of(&msg),
                ),
                JupyterMessageContent::UnknownMessage(m) if m.msg_type == "history_request" => {
                    Some(history_reply(&self.history, &msg, &m.content))
                }
                JupyterMessageContent::ShutdownRequest(req) => {
                    let reply = ShutdownReply {
                        restart: req.restart,
                        ..Default::default()
                    };
                    let _ = self.shell.send(reply.as_child_of(&msg));
                    let _ = self.iopub.send(Status::idle().as_child_of(&msg));
                    shutdown(&self.engine).await;
                }
                other => {
                    eprintln!(
                        "fastai-kernel: unhandled shell message {}",
                        other.message_type()
                    );
                    None
                }
            };
            if let Some(r) = reply {
                let _ = self.shell.send(r);
            }
            self.busy.store(false, Ordering::SeqCst);
            let _ = self.iopub.send(Status::idle().as_child_of(&msg));
        }
        Ok(())
    }

    async fn execute(&mut self, msg: &JupyterMessage, req: &ExecuteRequest) -> JupyterMessage {
        // As IPython: a silent cell is never history, and only history counts.
        let stored = !req.silent && req.store_history;
        if stored {
            self.execution_count += 1;
            self.history.record_input(self.execution_count, &req.code);
        }
        let count = ExecutionCount::new(self.execution_count);
        let _ = self.iopub.send(
            ExecuteInput {
                code: req.code.clone(),
                execution_count: count,
            }
            .as_child_of(msg),
        );
        {
            let mut cell = self.cell.lock().unwrap();
            cell.parent = Some(msg.clone());
            cell.panic = PanicText::default();
            cell.error = None;
            cell.told_about_preload = false;
            cell.allow_stdin = req.allow_stdin;
            let early = std::mem::take(&mut cell.preload_lines);
            if self.engine.is_preloading() && !early.is_empty() {
                // The library is being compiled: say so, with the build lines so far.
                cell.told_about_preload = true;
                let text = format!("{PRELOAD_NOTE}\n{}\n", early.join("\n"));
                let _ = self
                    .iopub
                    .send(StreamContent::stderr(&text).as_child_of(msg));
            }
        }

        let outcome = self.engine.execute(req.code.clone()).await;
        if let Some(comms) = &self.comms {
            // what the cell sent on the back channel (a widget's comm and display) is its output
            comms.sync(Duration::from_millis(500)).await;
        }

        let (panic, library_error) = {
            let mut cell = self.cell.lock().unwrap();
            cell.parent = None;
            if let Some(held) = cell.panic.release() {
                let _ = self
                    .iopub
                    .send(StreamContent::stderr(&format!("{held}\n")).as_child_of(msg));
            }
            (std::mem::take(&mut cell.panic), cell.error.take())
        };
        let error = match outcome {
            Outcome::Ok(_) if !panic.is_empty() => {
                let (evalue, mut traceback) = panic.error();
                // evcxr's crate for this cell is still in the build folder: its line of the
                // panic, found in the cell, is shown as compile errors show theirs
                let generated = std::env::var_os("EVCXR_TMPDIR")
                    .and_then(|d| std::fs::read_to_string(Path::new(&d).join("src/lib.rs")).ok());
                if let Some((n, text)) = generated.and_then(|g| panic.cell_line(&g, &req.code)) {
                    traceback.push(crate::errors::cell_line(n, &text));
                }
                Some(("panic".to_string(), evalue, traceback))
            }
            Outcome::Ok(_) if library_error.is_some() => {
                Some(("Error".to_string(), library_error.unwrap_or_default(), vec![]))
            }
            Outcome::Ok(outputs) => {
                if !outputs.is_empty() && !req.silent {
                    if stored {
                        if let Some(text) = outputs.get("text/plain") {
                            // (as shown: without the library's error marker)
                            let text = text.replace(wire::ERROR_MARKER, "");
                            self.history.record_output(self.execution_count, &text);
                        }
                    }
                    let result = execute_result(count, outputs);
                    let _ = self.iopub.send(result.as_child_of(msg));
                }
                None
            }
            Outcome::CompileErrors { evalue, traceback } => {
                Some(("CompilationError".to_string(), evalue, traceback))
            }
            Outcome::ProcessDied(m) => Some((
                "CellProcessDied".to_string(),
                format!(
                    "the process running the cells stopped ({m}); all variables were lost and a \
                     fresh process was started: re-run the cells above this one"
                ),
                vec![],
            )),
            Outcome::Failed(m) => Some(("Error".to_string(), m, vec![])),
            Outcome::Interrupted { killed: false } => Some((
                "Interrupted".to_string(),
                "the cell stopped at the interrupt; variables are kept (a model being trained keeps \
                 the weights it had)"
                    .to_string(),
                vec![],
            )),
            Outcome::Interrupted { killed: true } => Some((
                "Interrupted".to_string(),
                "the cell did not stop at the interrupt, so its process was ended; all variables \
                 were lost and a fresh process was started: re-run the cells above this one"
                    .to_string(),
                vec![],
            )),
        };
        match error {
            None => ExecuteReply {
                status: ReplyStatus::Ok,
                execution_count: count,
                payload: vec![],
                user_expressions: Some(HashMap::new()),
                error: None,
            }
            .as_child_of(msg),
            Some((ename, evalue, mut traceback)) => {
                if traceback.is_empty() {
                    traceback.push(format!("\x1b[31m{ename}\x1b[0m: {evalue}"));
                }
                if ename != "panic" && !panic.is_empty() {
                    // the cell panicked and then failed otherwise (a panic while panicking
                    // aborts the process): the panic's report is part of the story
                    traceback.extend(panic.error().1);
                }
                let out = ErrorOutput {
                    ename: ename.clone(),
                    evalue: evalue.clone(),
                    traceback: traceback.clone(),
                };
                let _ = self.iopub.send(out.as_child_of(msg));
                ExecuteReply {
                    status: ReplyStatus::Error,
                    execution_count: count,
                    payload: vec![],
                    user_expressions: Some(HashMap::new()),
                    error: Some(Box::new(ReplyError {
                        ename,
                        evalue,
                        traceback,
                    })),
                }
                .as_child_of(msg)
            }
        }
    }

    /// Inspection (Shift-Tab): the recorded type of a variable of an earlier cell, and
    /// rust-analyzer's hover text (signature, docs) for any name; `found: false` otherwise.
    async fn inspect(&self, code: &str, cursor_pos: usize) -> InspectReply {
        let byte_pos = code
            .char_indices()
            .nth(cursor_pos)
            .map(|(b, _)| b)
            .unwrap_or(code.len());
        match self.engine.inspect(code.to_string(), byte_pos).await {
            Some(found) => {
                let mut data = HashMap::new();
                data.insert("text/plain".to_string(), found.plain);
                data.insert("text/html".to_string(), found.html);
                InspectReply {
                    found: true,
                    data: to_media(data),
                    ..Default::default()
                }
            }
            None => InspectReply {
                found: false,
                ..Default::default()
            },
        }
    }

    async fn complete(&self, code: &str, cursor_pos: usize) -> CompleteReply {
        // Jupyter counts the cursor in Unicode code points; evcxr in bytes.
        let byte_pos = code
            .char_indices()
            .nth(cursor_pos)
            .map(|(b, _)| b)
            .unwrap_or(code.len());
        let (matches, start, end) = match self.engine.complete(code.to_string(), byte_pos).await {
            Some(c) => (c.matches, c.start, c.end),
            None => (vec![], byte_pos, byte_pos),
        };
        let chars = |b: usize| {
            code.get(..b)
                .map(|s| s.chars().count())
                .unwrap_or(cursor_pos)
        };
        CompleteReply {
            matches,
            cursor_start: chars(start),
            cursor_end: chars(end),
            metadata: Default::default(),
            status: ReplyStatus::Ok,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(msg_type: &str, content: serde_json::Value) -> RawMessage {
        let header = serde_json::json!({
            "msg_id": "m1", "username": "u", "session": "s",
            "date": "2024-01-01T00:00:00Z", "msg_type": msg_type, "version": "5.3",
        });
        let parts = [
            header.to_string(),
            "{}".into(),
            "{}".into(),
            content.to_string(),
        ];
        RawMessage {
            zmq_identities: vec![b"client".to_vec().into()],
            jparts: parts.into_iter().map(|p| p.into_bytes().into()).collect(),
        }
    }

    #[test]
    fn a_history_request_without_n_still_arrives() {
        // jupyter_client sends only what it was given: no `n`, no `unique` here
        let content = serde_json::json!({
            "hist_access_type": "search", "pattern": "1*", "output": false, "raw": true,
        });
        let msg = parse_request(raw("history_request", content.clone())).unwrap();
        let JupyterMessageContent::UnknownMessage(m) = &msg.content else {
            panic!("not kept as JSON: {:?}", msg.content)
        };
        assert_eq!(m.msg_type, "history_request");
        assert_eq!(m.content, content);
        assert_eq!(msg.header.msg_id, "m1");
        assert!(msg.parent_header.is_none());
        // replies go back to the same client
        assert_eq!(msg.zmq_identities.len(), 1);
    }

    #[test]
    fn other_requests_stay_typed_and_bad_ones_are_kept() {
        let msg = parse_request(raw(
            "is_complete_request",
            serde_json::json!({"code": "fn f() {"}),
        ))
        .unwrap();
        assert!(matches!(
            msg.content,
            JupyterMessageContent::IsCompleteRequest(_)
        ));
        // a request whose content the typed message cannot hold is not lost
        let msg = parse_request(raw("complete_request", serde_json::json!({"code": 1}))).unwrap();
        assert_eq!(msg.content.message_type(), "complete_request");
        // too few parts: an error, not a panic
        let mut short = raw("kernel_info_request", serde_json::json!({}));
        short.jparts.truncate(2);
        assert!(parse_request(short).is_err());
    }

    #[test]
    fn the_history_reply_is_a_history_reply() {
        let parent = parse_request(raw(
            "history_request",
            serde_json::json!({"hist_access_type": "tail", "n": 1, "output": false, "raw": true}),
        ))
        .unwrap();
        let JupyterMessageContent::UnknownMessage(req) = &parent.content else {
            panic!()
        };
        let mut history = History::default();
        history.record_input(1, "1 + 2");
        let reply = history_reply(&history, &parent, &req.content);
        assert_eq!(reply.header.msg_type, "history_reply");
        assert_eq!(reply.parent_header.unwrap().msg_id, "m1");
        let v = serde_json::to_value(&reply.content).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "ok", "history": [[1, 1, "1 + 2"]]})
        );
    }
}
