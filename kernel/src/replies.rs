//! Building replies and iopub messages: kernel info, completeness, panics, rich results, and the
//! display protocol lines the library prints (see the `fastai-wire` crate).

use std::collections::HashMap;

use fastai_wire as wire;

use jupyter_protocol::{
    ClearOutput, CodeMirrorMode, DisplayData, IsCompleteReply, IsCompleteReplyStatus,
    JupyterMessageContent, KernelInfoReply, LanguageInfo, Media, ReplyStatus, Transient,
    UpdateDisplayData,
};

/// Turns one display-protocol line (after [`wire::DISPLAY_PREFIX`]) into the Jupyter message it
/// asks for: `{"op":"display","id":?,"data":{mime:data}}`, `{"op":"update","id","data"}`,
/// `{"op":"clear","wait":bool}`. `None` for anything malformed (then shown as plain text).
pub fn display_message(json: &str) -> Option<JupyterMessageContent> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let media = || -> Option<Media> { serde_json::from_value(v.get(wire::KEY_DATA)?.clone()).ok() };
    let id = v.get(wire::KEY_ID).and_then(|i| i.as_str());
    match v.get(wire::KEY_OP)?.as_str()? {
        wire::OP_DISPLAY => Some(JupyterMessageContent::DisplayData(DisplayData {
            data: media()?,
            metadata: Default::default(),
            transient: id.map(|id| Transient {
                display_id: Some(id.to_string()),
            }),
        })),
        wire::OP_UPDATE => Some(JupyterMessageContent::UpdateDisplayData(
            UpdateDisplayData::new(media()?, id?),
        )),
        wire::OP_CLEAR => Some(JupyterMessageContent::ClearOutput(ClearOutput {
            wait: v
                .get(wire::KEY_WAIT)
                .and_then(|w| w.as_bool())
                .unwrap_or(false),
        })),
        _ => None,
    }
}

pub fn is_backtrace_line(line: &str) -> bool {
    let t = line.trim_start();
    line == "stack backtrace:"
        || t.starts_with("note: Some details are omitted")
        || (line.starts_with(' ')
            && (t.starts_with("at ")
                || t.split(':')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())))
}

pub fn kernel_info() -> KernelInfoReply {
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

/// The panic's own message: the line after "thread '...' panicked at <location>:".
pub fn panic_message(stderr: &[String]) -> String {
    let at = stderr.iter().position(|l| l.contains("panicked at"));
    match at {
        Some(i) => {
            let location = stderr[i]
                .split("panicked at")
                .nth(1)
                .unwrap_or("")
                .trim()
                .trim_end_matches(':');
            // (a fastai error unwrapped in the cell carries the kernel's error marker: drop it)
            let message = stderr
                .get(i + 1)
                .map(|m| m.replace(wire::ERROR_MARKER, ""))
                .unwrap_or_default();
            if location.is_empty() {
                message.to_string()
            } else {
                format!("{message} (at {location})")
            }
        }
        None => "the cell panicked".to_string(),
    }
}

pub fn to_media(outputs: HashMap<String, String>) -> Media {
    let mut map = serde_json::Map::new();
    for (mime, mut data) in outputs {
        if mime.starts_with("text/") {
            // A library error shown as a value (`Err(e)` as the cell's last expression) carries
            // the marker that tells the kernel about errors returned with `?`: not for the reader.
            data = data.replace(wire::ERROR_MARKER, "");
        }
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
pub fn is_complete(code: &str) -> IsCompleteReply {
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

    #[test]
    fn error_marker_is_not_shown_in_values() {
        let mut m = HashMap::new();
        m.insert(
            "text/plain".to_string(),
            "Err(FASTAI_ERROR no such file: x.png)".to_string(),
        );
        let v = serde_json::to_value(to_media(m)).unwrap();
        assert_eq!(v["text/plain"], "Err(no such file: x.png)");
    }
}
