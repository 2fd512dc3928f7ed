//! The Jupyter side: sockets, signed messages, and the request loops.
//!
//! Shell requests are served one at a time, in order (a cell runs to its end before the next
//! request is read), while the control socket (interrupt, shutdown) and the heartbeat are served
//! concurrently. Everything sent on iopub goes through one task that owns the socket.
//!
//! Messages whose HMAC signature does not verify are dropped and logged; they never reach the
//! engine (the socket crate verifies each message against the connection file's key).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use jupyter_protocol::{
    ClearOutput, CodeMirrorMode, CommInfoReply, CompleteReply, ConnectionInfo, DisplayData,
    ErrorOutput, ExecuteInput, ExecuteReply, ExecuteRequest, ExecuteResult, ExecutionCount,
    HistoryReply, InspectReply, InterruptReply, IsCompleteReply, IsCompleteReplyStatus,
    JupyterMessage, JupyterMessageContent, KernelInfoReply, LanguageInfo, Media, ReplyError,
    ReplyStatus, ShutdownReply, Status, StreamContent, Transient, UpdateDisplayData,
};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection,
    create_kernel_iopub_connection, create_kernel_shell_connection, create_kernel_stdin_connection,
    KernelControlConnection, KernelShellConnection,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::{Engine, Outcome, OutputSink, Stream};

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
    prepare_cell_environment();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(info))
}

/// Cells that use tch load libtorch's shared libraries: put them on the loader path of the cell
/// process (which inherits our environment). Done before any thread starts.
fn prepare_cell_environment() {
    // Tells the library it may use the display protocol (see fastai::display).
    std::env::set_var("FASTAI_DISPLAY", "kernel");
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

/// What the output sink needs to know about the cell that is running.
#[derive(Default)]
struct CellState {
    parent: Option<JupyterMessage>,
    stderr: Vec<String>,
}

struct Kernel {
    iopub: UnboundedSender<JupyterMessage>,
    engine: Engine,
    cell: Arc<Mutex<CellState>>,
    panicked: Arc<AtomicBool>,
    execution_count: usize,
}

async fn serve(info: ConnectionInfo) -> Result<()> {
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
    // Bound so clients can connect; this kernel does not ask for input yet.
    let _stdin = create_kernel_stdin_connection(&info, &session)
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
    let panicked = Arc::new(AtomicBool::new(false));
    let sink = output_sink(iopub_tx.clone(), cell.clone(), panicked.clone());
    let engine = Engine::start(sink);

    tokio::spawn(control_loop(control, engine.clone(), iopub_tx.clone()));
    let mut kernel = Kernel {
        iopub: iopub_tx,
        engine,
        cell,
        panicked,
        execution_count: 0,
    };
    kernel.shell_loop(shell).await
}

fn output_sink(
    iopub: UnboundedSender<JupyterMessage>,
    cell: Arc<Mutex<CellState>>,
    panicked: Arc<AtomicBool>,
) -> OutputSink {
    Arc::new(move |stream, line| {
        let mut state = cell.lock().unwrap();
        if stream == Stream::Stderr {
            if line.contains("panicked at") {
                panicked.store(true, Ordering::SeqCst);
            } else if panicked.load(Ordering::SeqCst) && is_backtrace_line(&line) {
                // evcxr forces RUST_BACKTRACE=1 in the cell process; the frames are evcxr's
                // own plumbing, so only the panic message is shown.
                return;
            }
            state.stderr.push(line.clone());
        }
        let Some(parent) = &state.parent else {
            // Output between cells (start-up, late lines) goes to the server's log.
            eprintln!("[cell process] {line}");
            return;
        };
        let msg = match (stream, line.strip_prefix(DISPLAY_PREFIX)) {
            (Stream::Stdout, Some(json)) => match display_message(json) {
                Some(content) => JupyterMessage::new(content, Some(parent)),
                None => StreamContent::stdout(&(line.clone() + "\n")).as_child_of(parent),
            },
            (Stream::Stdout, None) => StreamContent::stdout(&(line + "\n")).as_child_of(parent),
            (Stream::Stderr, _) => StreamContent::stderr(&(line + "\n")).as_child_of(parent),
        };
        let _ = iopub.send(msg);
    })
}

/// The prefix of a display-protocol line (see the library's `fastai::display` module).
const DISPLAY_PREFIX: &str = "FASTAI_DISPLAY ";

/// Turns one display-protocol line into the Jupyter message it asks for:
/// `{"op":"display","id":?,"data":{mime:data}}`, `{"op":"update","id","data"}`,
/// `{"op":"clear","wait":bool}`. `None` for anything malformed (then shown as plain text).
fn display_message(json: &str) -> Option<JupyterMessageContent> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let media = || -> Option<Media> { serde_json::from_value(v.get("data")?.clone()).ok() };
    let id = v.get("id").and_then(|i| i.as_str());
    match v.get("op")?.as_str()? {
        "display" => Some(JupyterMessageContent::DisplayData(DisplayData {
            data: media()?,
            metadata: Default::default(),
            transient: id.map(|id| Transient {
                display_id: Some(id.to_string()),
            }),
        })),
        "update" => Some(JupyterMessageContent::UpdateDisplayData(
            UpdateDisplayData::new(media()?, id?),
        )),
        "clear" => Some(JupyterMessageContent::ClearOutput(ClearOutput {
            wait: v.get("wait").and_then(|w| w.as_bool()).unwrap_or(false),
        })),
        _ => None,
    }
}

fn is_backtrace_line(line: &str) -> bool {
    let t = line.trim_start();
    line == "stack backtrace:"
        || t.starts_with("note: Some details are omitted")
        || (line.starts_with(' ')
            && (t.starts_with("at ")
                || t.split(':')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())))
}

async fn control_loop(
    mut control: KernelControlConnection,
    engine: Engine,
    iopub: UnboundedSender<JupyterMessage>,
) {
    loop {
        let msg = match control.read().await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("fastai-kernel: dropped a control message: {e}");
                continue;
            }
        };
        let _ = iopub.send(Status::busy().as_child_of(&msg));
        match &msg.content {
            JupyterMessageContent::InterruptRequest(_) => {
                engine.kill_cell_process();
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

async fn shutdown(engine: &Engine) -> ! {
    engine.kill_cell_process();
    // Let the replies leave the sockets.
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::process::exit(0)
}

fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.3".into(),
        implementation: "fastai-kernel".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rust".into(),
            version: String::new(),
            mimetype: Some("text/rust".into()),
            file_extension: Some(".rs".into()),
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: Some("rust".into()),
        },
        banner: "fastai-kernel: Rust notebooks for fastai-rs, on evcxr".into(),
        help_links: vec![],
        debugger: false,
        error: None,
    }
}

impl Kernel {
    async fn shell_loop(&mut self, mut shell: KernelShellConnection) -> Result<()> {
        loop {
            let msg = match shell.read().await {
                Ok(m) => m,
                Err(e) => {
                    // A bad signature, a malformed frame: never executed, only logged.
                    eprintln!("fastai-kernel: dropped a shell message: {e}");
                    continue;
                }
            };
            let _ = self.iopub.send(Status::busy().as_child_of(&msg));
            let reply: Option<JupyterMessage> = match &msg.content {
                JupyterMessageContent::KernelInfoRequest(_) => {
                    Some(kernel_info().as_child_of(&msg))
                }
                JupyterMessageContent::ExecuteRequest(req) => Some(self.execute(&msg, req).await),
                JupyterMessageContent::IsCompleteRequest(req) => {
                    Some(is_complete(&req.code).as_child_of(&msg))
                }
                JupyterMessageContent::CompleteRequest(req) => Some(
                    self.complete(&req.code, req.cursor_pos)
                        .await
                        .as_child_of(&msg),
                ),
                JupyterMessageContent::InspectRequest(_) => {
                    Some(InspectReply::default().as_child_of(&msg))
                }
                JupyterMessageContent::HistoryRequest(_) => {
                    Some(HistoryReply::default().as_child_of(&msg))
                }
                JupyterMessageContent::CommInfoRequest(_) => {
                    Some(CommInfoReply::default().as_child_of(&msg))
                }
                JupyterMessageContent::ShutdownRequest(req) => {
                    let reply = ShutdownReply {
                        restart: req.restart,
                        ..Default::default()
                    };
                    let _ = shell.send(reply.as_child_of(&msg)).await;
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
                if let Err(e) = shell.send(r).await {
                    eprintln!("fastai-kernel: shell send failed: {e}");
                }
            }
            let _ = self.iopub.send(Status::idle().as_child_of(&msg));
        }
    }

    async fn execute(&mut self, msg: &JupyterMessage, req: &ExecuteRequest) -> JupyterMessage {
        if !req.silent && req.store_history {
            self.execution_count += 1;
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
            cell.stderr.clear();
        }
        self.panicked.store(false, Ordering::SeqCst);

        let outcome = self.engine.execute(req.code.clone()).await;

        let stderr = {
            let mut cell = self.cell.lock().unwrap();
            cell.parent = None;
            std::mem::take(&mut cell.stderr)
        };
        let error = match outcome {
            Outcome::Ok(_) if self.panicked.load(Ordering::SeqCst) => {
                Some(("panic".to_string(), panic_message(&stderr), vec![]))
            }
            Outcome::Ok(outputs) => {
                if !outputs.is_empty() && !req.silent {
                    let result = ExecuteResult::new(count, to_media(outputs));
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
                    user_expressions: None,
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

/// The panic's own message: the line after "thread '...' panicked at <location>:".
fn panic_message(stderr: &[String]) -> String {
    let at = stderr.iter().position(|l| l.contains("panicked at"));
    match at {
        Some(i) => {
            let location = stderr[i]
                .split("panicked at")
                .nth(1)
                .unwrap_or("")
                .trim()
                .trim_end_matches(':');
            let message = stderr.get(i + 1).map(String::as_str).unwrap_or("");
            if location.is_empty() {
                message.to_string()
            } else {
                format!("{message} (at {location})")
            }
        }
        None => "the cell panicked".to_string(),
    }
}

fn to_media(outputs: HashMap<String, String>) -> Media {
    let mut map = serde_json::Map::new();
    for (mime, data) in outputs {
        let value = if mime.ends_with("json") {
            serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data))
        } else {
            serde_json::Value::String(data)
        };
        map.insert(mime, value);
    }
    serde_json::from_value(serde_json::Value::Object(map)).unwrap_or_default()
}

/// Whether a cell's brackets are balanced (strings and comments skipped): enough for consoles to
/// know whether Enter should run the code or open a new line.
fn is_complete(code: &str) -> IsCompleteReply {
    let mut depth: i64 = 0;
    let mut chars = code.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    if in_str || depth > 0 {
        IsCompleteReply::new(IsCompleteReplyStatus::Incomplete, "    ".into())
    } else if depth < 0 {
        IsCompleteReply::new(IsCompleteReplyStatus::Invalid, String::new())
    } else {
        IsCompleteReply::new(IsCompleteReplyStatus::Complete, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_decide_completeness() {
        assert!(matches!(
            is_complete("let x = 1;").status,
            IsCompleteReplyStatus::Complete
        ));
        assert!(matches!(
            is_complete("fn f() {").status,
            IsCompleteReplyStatus::Incomplete
        ));
        assert!(matches!(
            is_complete("let s = \"{\";").status,
            IsCompleteReplyStatus::Complete
        ));
        assert!(matches!(
            is_complete("// {\nlet a = 1;").status,
            IsCompleteReplyStatus::Complete
        ));
        assert!(matches!(
            is_complete("}").status,
            IsCompleteReplyStatus::Invalid
        ));
    }

    #[test]
    fn panic_message_names_message_and_place() {
        let err = vec![
            "thread 'main' panicked at src/lib.rs:3:5:".to_string(),
            "boom".to_string(),
            "note: run with `RUST_BACKTRACE=1`".to_string(),
        ];
        assert_eq!(panic_message(&err), "boom (at src/lib.rs:3:5)");
    }

    #[test]
    fn display_lines_become_display_messages() {
        let m =
            display_message(r#"{"op":"display","id":"x1","data":{"text/plain":"hi"}}"#).unwrap();
        let JupyterMessageContent::DisplayData(d) = m else {
            panic!("not display_data")
        };
        assert_eq!(d.transient.unwrap().display_id.as_deref(), Some("x1"));
        let m = display_message(r#"{"op":"update","id":"x1","data":{"text/html":"<b>2</b>"}}"#)
            .unwrap();
        assert_eq!(m.message_type(), "update_display_data");
        let m = display_message(r#"{"op":"clear","wait":true}"#).unwrap();
        assert_eq!(m.message_type(), "clear_output");
        assert!(display_message("not json").is_none());
        assert!(display_message(r#"{"op":"update","data":{"text/plain":"no id"}}"#).is_none());
    }

    #[test]
    fn backtrace_frames_are_recognised() {
        assert!(is_backtrace_line("stack backtrace:"));
        assert!(is_backtrace_line(
            "   3: core::ops::function::FnOnce::call_once"
        ));
        assert!(is_backtrace_line(
            "             at /rustc/abc/library/std/src/panicking.rs:689:5"
        ));
        assert!(!is_backtrace_line("boom"));
        assert!(!is_backtrace_line(
            "thread '<unnamed>' panicked at src/lib.rs:1:1:"
        ));
    }

    #[test]
    fn json_outputs_become_json() {
        let mut m = HashMap::new();
        m.insert("text/plain".to_string(), "42".to_string());
        let v = serde_json::to_value(to_media(m)).unwrap();
        assert_eq!(v["text/plain"], "42");
    }
}
