//! Building replies and iopub messages: kernel info, completeness, panics, rich results, and the
//! display protocol lines the library prints (see the `fastai-wire` crate).

use std::collections::HashMap;

use fastai_wire as wire;

use jupyter_protocol::{
    ClearOutput, CodeMirrorMode, DisplayData, ExecuteResult, ExecutionCount, IsCompleteReply,
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

/// A line of the backtrace the panic hook prints (evcxr forces `RUST_BACKTRACE=1` in the cell
/// process; the frames are evcxr's own plumbing, so they are not shown).
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

/// The first line the panic hook prints: `thread 'main' panicked at src/lib.rs:3:5:` (newer
/// Rust: `thread 'main' (1234) panicked at ...`).
pub fn is_panic_header(line: &str) -> bool {
    line.starts_with("thread '") && line.contains(" panicked at ")
}

/// What the panic hook printed to the cell's stderr, held back to become the cell's one `error`
/// message instead of stderr output: the header with the location, then the message; the
/// backtrace and the hook's advice about `RUST_BACKTRACE` are dropped.
#[derive(Default, Debug)]
pub struct PanicText {
    lines: Vec<String>,
    /// Still reading the hook's output (until its closing note).
    open: bool,
    /// A blank line not shown yet: the hook starts its output with one (to begin on a line of
    /// its own), so a blank line is only stderr once the next line is not a panic's header.
    held_blank: bool,
}

impl PanicText {
    /// Takes a stderr line of the cell; returns the lines to show as stderr now: none while a
    /// panic report is read (it is held for the error message), else the line, after a blank
    /// line that was held for it.
    pub fn take(&mut self, line: &str) -> Vec<String> {
        if is_panic_header(line) {
            self.held_blank = false;
            self.open = true;
            self.lines.push(line.to_string());
            return vec![];
        }
        if self.open {
            if line.starts_with("note: ") && line.contains("RUST_BACKTRACE") {
                // the last line of the hook's output
                self.open = false;
            } else if !is_backtrace_line(line) {
                self.lines.push(line.to_string());
            }
            return vec![];
        }
        let mut show: Vec<String> = self.release().into_iter().collect();
        if line.is_empty() {
            self.held_blank = true;
        } else {
            show.push(line.to_string());
        }
        show
    }

    /// The blank line held back, if any: to be shown now (other output came, or the cell ended).
    pub fn release(&mut self) -> Option<String> {
        std::mem::take(&mut self.held_blank).then(String::new)
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The `evalue` (the first panic's message) and the `traceback` (everything the hook
    /// printed but the backtrace; the header in red) of the error message.
    pub fn error(&self) -> (String, Vec<String>) {
        let clean = |l: &String| l.replace(wire::ERROR_MARKER, "");
        let message: Vec<String> = self
            .lines
            .iter()
            .skip(1)
            .take_while(|l| !is_panic_header(l))
            .map(clean)
            .collect();
        let mut evalue = message.join("\n").trim_end().to_string();
        if evalue.is_empty() {
            evalue = "the cell panicked".to_string();
        }
        let traceback = self
            .lines
            .iter()
            .map(|l| {
                if is_panic_header(l) {
                    format!("\x1b[31m{}\x1b[0m", clean(l))
                } else {
                    clean(l)
                }
            })
            .collect();
        (evalue, traceback)
    }
}

impl PanicText {
    /// The line of the cell where the (first) panic happened, with its text, when its location
    /// is in the crate evcxr generated for the cell (`src/lib.rs`, whose text is `generated`)
    /// and that line of it is found in exactly one line of the cell's `code`. (A panic inside
    /// the library or std has its own location, which the header already names.)
    pub fn cell_line(&self, generated: &str, code: &str) -> Option<(usize, String)> {
        let header = self.lines.first()?;
        let at = header.split(" panicked at ").nth(1)?.trim_end_matches(':');
        let mut parts = at.rsplitn(3, ':');
        let (_column, line, file) = (parts.next()?, parts.next()?, parts.next()?);
        if file != "src/lib.rs" {
            return None;
        }
        let line: usize = line.parse().ok()?;
        let text = generated.lines().nth(line.checked_sub(1)?)?.trim();
        if !text.chars().any(char::is_alphanumeric) {
            return None;
        }
        let mut hits = code.lines().enumerate().filter(|(_, l)| l.contains(text));
        match (hits.next(), hits.next()) {
            (Some((i, l)), None) => Some((i + 1, l.to_string())),
            _ => None,
        }
    }
}

/// The `execute_result` of a cell's value: `transient` an (empty) object, as the schema wants
/// when the key is there (`null` is not allowed).
pub fn execute_result(count: ExecutionCount, outputs: HashMap<String, String>) -> ExecuteResult {
    ExecuteResult {
        execution_count: count,
        data: to_media(outputs),
        metadata: Default::default(),
        transient: Some(Transient::default()),
    }
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

/// Whether a cell is complete, for consoles deciding whether Enter runs the code or opens a new
/// line: `incomplete` while a bracket, string or block comment is open (with the indent of the
/// open brackets), `invalid` at a closing bracket that does not match (rustc will say more),
/// `complete` otherwise. Strings (raw ones too), character literals and comments are skipped;
/// `'a` lifetimes are not mistaken for characters.
pub fn is_complete(code: &str) -> IsCompleteReply {
    let c: Vec<char> = code.chars().collect();
    let mut open: Vec<char> = Vec::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 1;
                i += 2;
                while depth > 0 {
                    match (c.get(i), c.get(i + 1)) {
                        (None, _) => return IsCompleteReply::incomplete(String::new()),
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            i += 2;
                        }
                        _ => i += 1,
                    }
                }
                continue;
            }
            '"' => match skip_string(&c, i + 1) {
                Some(end) => i = end,
                None => return IsCompleteReply::incomplete(String::new()),
            },
            'r' | 'b' if starts_raw_string(&c, i) => {
                let mut j = i + 1;
                if c[i] == 'b' {
                    j += 1; // br"..."
                }
                let hashes = c[j..].iter().take_while(|&&h| h == '#').count();
                j += hashes + 1; // past the opening quote
                let close: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                match (j..c.len()).find(|&k| c[k..].starts_with(&close)) {
                    Some(k) => i = k + close.len() - 1,
                    None => return IsCompleteReply::incomplete(String::new()),
                }
            }
            '\'' => {
                // a character literal ('x', '\n', '\u{..}'), or a lifetime / label ('a)
                if c.get(i + 1) == Some(&'\\') {
                    let mut j = i + 3; // past the escaped character, which may be a quote
                    while j < c.len() && c[j] != '\'' && c[j] != '\n' {
                        j += 1;
                    }
                    i = j;
                } else if c.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            }
            ch @ ('(' | '[' | '{') => open.push(ch),
            ch @ (')' | ']' | '}') => {
                let opener = match ch {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.pop() != Some(opener) {
                    return IsCompleteReply::invalid();
                }
            }
            _ => {}
        }
        i += 1;
    }
    if open.is_empty() {
        IsCompleteReply::complete()
    } else {
        IsCompleteReply::incomplete("    ".repeat(open.len().min(8)))
    }
}

/// The index of the closing quote of a string whose text starts at `from`; `None`: unclosed.
fn skip_string(c: &[char], from: usize) -> Option<usize> {
    let mut i = from;
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether a raw string (`r"`, `r#"`, `br"`...) starts at `i` (not an identifier ending in r).
fn starts_raw_string(c: &[char], i: usize) -> bool {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    if c[i] == 'b' {
        if c.get(j) != Some(&'r') {
            return false;
        }
        j += 1;
    }
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    c.get(j) == Some(&'"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::IsCompleteReplyStatus;

    fn status(code: &str) -> IsCompleteReplyStatus {
        is_complete(code).status
    }

    #[test]
    fn brackets_decide_completeness() {
        use IsCompleteReplyStatus::*;
        for code in [
            "let x = 1;",
            "let s = \"{\";",
            "// {\nlet a = 1;",
            "let c = '{';",
            "let q = '\\'';",
            "fn f<'a>(x: &'a str) -> &'a str { x }",
            "let r = r#\"a \" ( b\"#;",
            "let b = br\"[\";",
            "/* { /* nested */ */ let a = [1];",
            "let v = vec![(1, 2)];",
            "let e = '\\u{7b}';",
            "",
        ] {
            assert_eq!(status(code), Complete, "{code}");
        }
        for code in [
            "fn f() {",
            "let v = vec![1,",
            "let s = \"open",
            "/* unclosed",
            "let r = r#\"raw\"",
            "call(",
        ] {
            assert_eq!(status(code), Incomplete, "{code}");
        }
        for code in ["}", "let x = (1 + 2));", "let y = [1, 2);", "f(]"] {
            assert_eq!(status(code), Invalid, "{code}");
        }
        // the indent follows the open brackets
        assert_eq!(is_complete("fn f() {\n    if x {").indent, "        ");
    }

    #[test]
    fn a_panic_becomes_its_message_and_location() {
        let mut p = PanicText::default();
        assert_eq!(p.take("printed before"), vec!["printed before"]);
        for line in [
            "",
            "thread '<unnamed>' (4242) panicked at src/lib.rs:3:5:",
            "boom",
            "stack backtrace:",
            "   0: std::panicking::begin_panic",
            "             at /rustc/abc/library/std/src/panicking.rs:689:5",
            "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
        ] {
            assert!(p.take(line).is_empty(), "{line}");
        }
        // after the hook's last line, stderr is stderr again
        assert_eq!(p.take("after the panic"), vec!["after the panic"]);
        assert_eq!(p.release(), None);
        let (evalue, traceback) = p.error();
        assert_eq!(evalue, "boom");
        assert_eq!(
            traceback,
            vec![
                "\x1b[31mthread '<unnamed>' (4242) panicked at src/lib.rs:3:5:\x1b[0m",
                "boom"
            ]
        );
    }

    #[test]
    fn a_panic_without_backtrace_keeps_a_multi_line_message() {
        let mut p = PanicText::default();
        assert!(p.is_empty());
        for line in [
            "thread 'main' panicked at src/lib.rs:9:1:",
            "first",
            "",
            "FASTAI_ERROR no such file: x.png",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ] {
            assert!(p.take(line).is_empty());
        }
        assert!(!p.is_empty());
        assert_eq!(p.error().0, "first\n\nno such file: x.png");
        assert_eq!(p.error().1.len(), 4);
    }

    #[test]
    fn a_panic_in_the_cell_is_placed_on_its_line() {
        let generated = "fn x() {\n    let a = 1;\n    panic!(\"boom\");\n}\n";
        let code = "let a = 1;\n// then\npanic!(\"boom\");";
        let mut p = PanicText::default();
        assert_eq!(p.cell_line(generated, code), None);
        p.take("thread '<unnamed>' (7) panicked at src/lib.rs:3:5:");
        p.take("boom");
        assert_eq!(
            p.cell_line(generated, code),
            Some((3, "panic!(\"boom\");".to_string()))
        );
        // the line is not the cell's (evcxr's own code), or is in the cell twice: no guess
        assert_eq!(p.cell_line(generated, "let b = 2;"), None);
        let twice = "panic!(\"boom\");\npanic!(\"boom\");";
        assert_eq!(p.cell_line(generated, twice), None);
        // a line of punctuation only is never matched
        let mut q = PanicText::default();
        q.take("thread 'main' panicked at src/lib.rs:4:1:");
        assert_eq!(q.cell_line(generated, "if a {\n}"), None);
        // a panic inside the library keeps its own location
        let mut r = PanicText::default();
        r.take("thread 'main' panicked at /work/lib/src/data.rs:3:5:");
        assert_eq!(r.cell_line(generated, code), None);
    }

    #[test]
    fn blank_lines_of_the_cell_are_still_shown() {
        let mut p = PanicText::default();
        // held until the next line shows it is not the start of a panic report
        assert!(p.take("").is_empty());
        assert_eq!(p.take("next"), vec!["", "next"]);
        // two blank lines: the first shows when the second comes, the second at the end
        assert!(p.take("").is_empty());
        assert_eq!(p.take(""), vec![""]);
        assert_eq!(p.release(), Some(String::new()));
        assert_eq!(p.release(), None);
        assert!(p.is_empty());
    }

    #[test]
    fn execute_results_carry_an_object_as_transient() {
        let mut m = HashMap::new();
        m.insert("text/plain".to_string(), "3".to_string());
        let v = serde_json::to_value(execute_result(ExecutionCount::new(4), m)).unwrap();
        assert_eq!(v["transient"], serde_json::json!({}));
        assert_eq!(v["execution_count"], 4);
        assert_eq!(v["data"]["text/plain"], "3");
        assert_eq!(v["metadata"], serde_json::json!({}));
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
