//! Turning evcxr's compile errors into readable notebook tracebacks.
//!
//! rustc's own rendering points into the code evcxr generates around a cell, which means nothing to
//! the student; evcxr maps spans back to the cell's lines, so we draw the cell's lines with `^^^`
//! under the span instead, rustc-style.

use evcxr::CompilationError;

const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const BLUE: &str = "\x1b[34m";
const RESET: &str = "\x1b[0m";

/// Traceback lines for a set of compile errors in the cell `code`.
pub fn render_compile_errors(code: &str, errors: &[CompilationError]) -> Vec<String> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for e in errors {
        let head = match e.code() {
            Some(c) => format!("{}[{c}]", e.level()),
            None => e.level().to_string(),
        };
        out.push(format!(
            "{BOLD}{RED}{head}{RESET}{BOLD}: {}{RESET}",
            first_line(&e.message())
        ));
        if e.is_from_user_code() {
            for m in e.spanned_messages() {
                let Some(span) = m.span else { continue };
                for line_no in span.start_line..=span.end_line {
                    let Some(text) = lines.get(line_no.wrapping_sub(1)) else {
                        continue;
                    };
                    out.push(cell_line(line_no, text));
                    let width = text.chars().count();
                    let from = if line_no == span.start_line {
                        span.start_column.max(1)
                    } else {
                        1
                    };
                    let to = if line_no == span.end_line {
                        span.end_column
                    } else {
                        width + 1
                    };
                    let marks = to.saturating_sub(from).max(1);
                    let label = if line_no == span.end_line && !m.label.is_empty() {
                        format!(" {}", m.label)
                    } else {
                        String::new()
                    };
                    let pad = " ".repeat(from - 1);
                    let colour = if m.is_primary { RED } else { BLUE };
                    out.push(format!(
                        "{BLUE}     |{RESET} {pad}{colour}{}{label}{RESET}",
                        "^".repeat(marks)
                    ));
                }
            }
        }
        for h in e.help() {
            out.push(format!("{BOLD}help{RESET}: {h}"));
        }
        out.push(String::new());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// A line of the cell as tracebacks show it: `   3 | code`.
pub fn cell_line(line_no: usize, text: &str) -> String {
    format!("{BLUE}{line_no:>4} |{RESET} {text}")
}

/// A one-line summary (the `evalue` of the error message).
pub fn summary(errors: &[CompilationError]) -> String {
    match errors {
        [] => "compilation failed".to_string(),
        [one] => first_line(&one.message()).to_string(),
        [first, rest @ ..] => format!(
            "{} (and {} more errors)",
            first_line(&first.message()),
            rest.len()
        ),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
