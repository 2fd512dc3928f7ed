//! Inspection (Shift-Tab in JupyterLab): what is the name under the cursor?
//!
//! Two sources, both from evcxr: the types it recorded for the variables of earlier cells (what
//! `:vars` lists; exact, since they come from the compiled code), and rust-analyzer's hover text
//! for any other name - a function's signature and doc comment, a type's definition, a method.

use evcxr::CommandContext;

/// What is known about the name at the cursor, as plain text and HTML.
pub struct Inspection {
    pub plain: String,
    pub html: String,
}

/// evcxr's hover answer when rust-analyzer knows nothing.
const NOTHING: &str = "No documentation found";

/// Looks up the name at byte offset `pos` of `code`; `None` when nothing is known.
pub fn inspect(ctx: &mut CommandContext, code: &str, pos: usize) -> Option<Inspection> {
    let (start, end) = name_at(code, pos)?;
    let name = &code[start..end];
    // Variables defined while rust-analyzer was still starting have their types looked up now.
    ctx.wait_for_variable_types();
    let variable = is_plain_name(code, start)
        .then(|| {
            ctx.variables_and_types()
                .find(|(v, _)| *v == name)
                .map(|(_, ty)| ty.to_string())
        })
        .flatten();
    // evcxr hovers at the end of the code it is given; a method is only recognised with its
    // opening parenthesis (`v.len(`), so that is kept when it follows the name.
    let hover_end = if code[end..].starts_with('(') {
        end + 1
    } else {
        end
    };
    let hover = match ctx.hover_at(code, hover_end) {
        Ok((plain, html)) if !plain.trim().is_empty() && plain.trim() != NOTHING => {
            Some((plain.trim().to_string(), html))
        }
        Ok(_) => None,
        Err(e) => {
            eprintln!("fastai-kernel: hover on {name:?} failed: {e}");
            None
        }
    };
    compose(name, variable.as_deref(), hover)
}

/// The reply text: the variable's recorded type first (when it is one), then rust-analyzer's
/// hover text (signature, docs).
fn compose(name: &str, ty: Option<&str>, hover: Option<(String, String)>) -> Option<Inspection> {
    let mut plain = Vec::new();
    let mut html = String::new();
    let mut hover = hover;
    if let Some(ty) = ty {
        let line = format!("{name}: {ty}");
        // rust-analyzer's hover on a variable is often exactly this line: say it once.
        if hover.as_ref().is_some_and(|(text, _)| text.trim() == line) {
            hover = None;
        }
        plain.push(line);
        html += &format!(
            "<p><code>{}: {}</code> <i>(variable)</i></p>",
            escape(name),
            escape(ty)
        );
    }
    if let Some((text, hover_html)) = hover {
        plain.push(text);
        html += &hover_html;
    }
    if plain.is_empty() {
        return None;
    }
    Some(Inspection {
        plain: plain.join("\n\n"),
        html,
    })
}

/// The byte range of the identifier touching `pos` (the cursor may be inside it or just after
/// it). With the cursor just after `name(`, the name before the parenthesis: that is where the
/// cursor is while typing a call's arguments.
pub fn name_at(code: &str, pos: usize) -> Option<(usize, usize)> {
    let pos = pos.min(code.len());
    if !code.is_char_boundary(pos) {
        return None;
    }
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let start = code[..pos]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map_or(pos, |(i, _)| i);
    let end = code[pos..]
        .char_indices()
        .find(|&(_, c)| !is_ident(c))
        .map_or(code.len(), |(i, _)| pos + i);
    if start < end && !code[start..].starts_with(|c: char| c.is_ascii_digit()) {
        return Some((start, end));
    }
    let before = code[..pos].trim_end();
    if let Some(call) = before.strip_suffix('(') {
        let call = call.trim_end();
        if call.ends_with(is_ident) {
            return name_at(code, call.len());
        }
    }
    None
}

/// Whether the name at `start` stands alone (`x`), rather than being a field, method or path
/// segment (`a.x`, `m::x`): only a name standing alone can be one of the cell variables.
fn is_plain_name(code: &str, start: usize) -> bool {
    let before = code[..start].trim_end();
    !(before.ends_with('.') || before.ends_with("::"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(code: &str, pos: usize) -> Option<&str> {
        name_at(code, pos).map(|(s, e)| &code[s..e])
    }

    #[test]
    fn finds_the_name_around_the_cursor() {
        assert_eq!(word("let n = total + 1;", 12), Some("total")); // inside
        assert_eq!(word("let n = total + 1;", 13), Some("total")); // just after
        assert_eq!(word("let n = total + 1;", 8), Some("total")); // just before
        assert_eq!(word("learn.fit_one_cycle(4)", 9), Some("fit_one_cycle"));
        assert_eq!(word("x + 1", 4), None); // a number is no name
        assert_eq!(word("a + b", 2), None); // between names
        assert_eq!(word("é_var", 3), Some("é_var"));
        assert_eq!(word("é", 1), None); // not on a character boundary
    }

    #[test]
    fn inside_a_calls_parentheses_the_function_is_inspected() {
        assert_eq!(word("cnn_learner(", 12), Some("cnn_learner"));
        assert_eq!(word("cnn_learner( ", 13), Some("cnn_learner"));
        assert_eq!(word("f(1, ", 5), None);
    }

    #[test]
    fn only_names_standing_alone_can_be_variables() {
        assert!(is_plain_name("x", 0));
        assert!(is_plain_name("let y = x", 8));
        assert!(!is_plain_name("a.x", 2));
        assert!(!is_plain_name("m::x", 3));
    }

    #[test]
    fn reply_puts_the_recorded_type_first() {
        let r = compose("n", Some("Vec<i32>"), None).unwrap();
        assert_eq!(r.plain, "n: Vec<i32>");
        assert!(r.html.contains("n: Vec&lt;i32&gt;"));
        let r = compose(
            "n",
            Some("u8"),
            Some(("let n: u8".into(), "<p>x</p>".into())),
        )
        .unwrap();
        assert_eq!(r.plain, "n: u8\n\nlet n: u8");
        let r = compose(
            "n",
            Some("u8"),
            Some(("n: u8".into(), "<p>n: u8</p>".into())),
        )
        .unwrap();
        assert_eq!(r.plain, "n: u8");
        assert!(compose("n", None, None).is_none());
    }
}
