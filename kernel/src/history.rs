//! The session's input history, for `history_request` (consoles' up-arrow, `%history`-like
//! tools, frontends that restore a session's cells).
//!
//! Kept in memory only: the cells this kernel ran with `store_history`, numbered by their
//! execution count, with the text of their result where they had one. The answers follow
//! IPython's kernel where the protocol leaves things open:
//! - this kernel's session is number [`SESSION`]; a request's session `0` (or absent) means the
//!   current one as well, and any other session has no history here;
//! - `range`: lines `start <= line < stop`, a negative `start`/`stop` counted from the end,
//!   `stop` 0 or absent meaning "to the end";
//! - `tail`: the last `n` cells (10 when absent);
//! - `search`: a glob over the whole input (SQLite's `GLOB`: `*`, `?`, `[abc]`, `[^a-z]`,
//!   case-sensitive); `unique` keeps the latest run of each distinct input; with `n`, the last
//!   `n` matches;
//! - entries are `[session, line, input]`, or with `output: true`, `[session, line,
//!   [input, output]]` (output `null` for a cell without a result); oldest first.

use serde_json::{json, Value};

/// The number of the current session in replies (there is no record of earlier ones).
pub const SESSION: i64 = 1;

struct Entry {
    line: usize,
    input: String,
    output: Option<String>,
}

#[derive(Default)]
pub struct History {
    entries: Vec<Entry>,
}

impl History {
    /// Records a cell as it starts (its input is history even if it fails).
    pub fn record_input(&mut self, line: usize, input: &str) {
        self.entries.push(Entry {
            line,
            input: input.to_string(),
            output: None,
        });
    }

    /// The text of the result of the cell numbered `line`.
    pub fn record_output(&mut self, line: usize, output: &str) {
        if let Some(e) = self.entries.iter_mut().rev().find(|e| e.line == line) {
            e.output = Some(output.to_string());
        }
    }

    /// The `history` list of the reply to a `history_request` with this content.
    pub fn answer(&self, request: &Value) -> Vec<Value> {
        let int = |key: &str| request.get(key).and_then(Value::as_i64);
        let output = request
            .get("output")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let picked: Vec<&Entry> = match request.get("hist_access_type").and_then(Value::as_str) {
            Some("tail") => {
                let n = int("n").unwrap_or(10);
                self.last(self.entries.iter().collect(), n)
            }
            Some("range") => {
                let session = int("session").unwrap_or(0);
                if session != 0 && session != SESSION {
                    vec![]
                } else {
                    self.range(int("start").unwrap_or(0), int("stop").unwrap_or(0))
                }
            }
            Some("search") => {
                let pattern = request
                    .get("pattern")
                    .and_then(Value::as_str)
                    .unwrap_or("*");
                let unique = request
                    .get("unique")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let mut found: Vec<&Entry> = self
                    .entries
                    .iter()
                    .filter(|e| glob_matches(pattern, &e.input))
                    .collect();
                if unique {
                    // the latest run of each input, in the order of those runs
                    let mut kept: Vec<&Entry> = Vec::new();
                    for e in found.into_iter().rev() {
                        if !kept.iter().any(|k| k.input == e.input) {
                            kept.push(e);
                        }
                    }
                    kept.reverse();
                    found = kept;
                }
                match int("n") {
                    Some(n) => self.last(found, n),
                    None => found,
                }
            }
            _ => vec![],
        };
        picked
            .into_iter()
            .map(|e| {
                if output {
                    json!([SESSION, e.line, [e.input, e.output]])
                } else {
                    json!([SESSION, e.line, e.input])
                }
            })
            .collect()
    }

    /// The last `n` of `entries` (all of them for a negative `n`, as SQLite's `LIMIT -1`).
    fn last<'a>(&self, entries: Vec<&'a Entry>, n: i64) -> Vec<&'a Entry> {
        if n < 0 {
            return entries;
        }
        let skip = entries.len().saturating_sub(n as usize);
        entries.into_iter().skip(skip).collect()
    }

    fn range(&self, start: i64, stop: i64) -> Vec<&Entry> {
        // As IPython counts: the end is one past the latest line.
        let end = self.entries.last().map_or(1, |e| e.line as i64 + 1);
        let start = if start < 0 { start + end } else { start };
        let stop = if stop == 0 || stop > end {
            end
        } else if stop < 0 {
            stop + end
        } else {
            stop
        };
        self.entries
            .iter()
            .filter(|e| (e.line as i64) >= start && (e.line as i64) < stop)
            .collect()
    }
}

/// SQLite's `GLOB`: the whole of `text` against `pattern`, case-sensitive; `*` any run of
/// characters, `?` one character, `[...]` one of a set (ranges `a-z`, negated with `^`; a `]`
/// first in the set is literal). A `[` that is never closed matches nothing, as in SQLite.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            (0..=t.len()).any(|skip| glob_at(rest, &t[skip..]))
        }
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => {
            let Some((matched, used)) = t.first().and_then(|&c| class_matches(&p[1..], c)) else {
                return false;
            };
            matched && glob_at(&p[1 + used..], &t[1..])
        }
        Some(&c) => t.first() == Some(&c) && glob_at(&p[1..], &t[1..]),
    }
}

/// Whether `c` is in the set that starts at `p` (just after its `[`), and how many pattern
/// characters the set took, its `]` included; `None` for an unclosed set.
fn class_matches(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((found != negated, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            if ch <= c && c <= p[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if ch == c {
                found = true;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> History {
        let mut h = History::default();
        for (line, input) in [(1, "1 + 2"), (2, "let a = 1;"), (3, "1 + 2"), (4, "a * 10")] {
            h.record_input(line, input);
        }
        h.record_output(3, "3");
        h.record_output(4, "10");
        h
    }

    fn lines(v: &[Value]) -> Vec<i64> {
        v.iter().map(|e| e[1].as_i64().unwrap()).collect()
    }

    #[test]
    fn tail_gives_the_last_cells_oldest_first() {
        let h = history();
        let r =
            h.answer(&json!({"hist_access_type": "tail", "n": 2, "output": false, "raw": true}));
        assert_eq!(r, vec![json!([1, 3, "1 + 2"]), json!([1, 4, "a * 10"])]);
        let all = h.answer(&json!({"hist_access_type": "tail", "n": 100, "output": false}));
        assert_eq!(lines(&all), vec![1, 2, 3, 4]);
        let none = h.answer(&json!({"hist_access_type": "tail", "n": 0, "output": false}));
        assert!(none.is_empty());
    }

    #[test]
    fn outputs_come_as_input_output_pairs() {
        let h = history();
        let r = h.answer(&json!({"hist_access_type": "tail", "n": 2, "output": true}));
        assert_eq!(
            r,
            vec![
                json!([1, 3, ["1 + 2", "3"]]),
                json!([1, 4, ["a * 10", "10"]])
            ]
        );
        let r =
            h.answer(&json!({"hist_access_type": "range", "start": 2, "stop": 3, "output": true}));
        assert_eq!(r, vec![json!([1, 2, ["let a = 1;", null]])]);
    }

    #[test]
    fn range_counts_as_ipython_does() {
        let h = history();
        let q = |session: i64, start: i64, stop: i64| {
            lines(
                &h.answer(&json!({"hist_access_type": "range", "session": session,
                "start": start, "stop": stop, "output": false, "raw": true})),
            )
        };
        assert_eq!(q(0, 2, 4), vec![2, 3]);
        assert_eq!(q(SESSION, 2, 3), vec![2]);
        assert_eq!(q(0, 0, 0), vec![1, 2, 3, 4]);
        assert_eq!(q(0, -2, 0), vec![3, 4]);
        assert_eq!(q(0, 1, -1), vec![1, 2, 3]);
        assert_eq!(q(0, 3, 99), vec![3, 4]);
        // an earlier session, or another one: nothing is known about it
        assert!(q(-1, 0, 0).is_empty());
        assert!(q(7, 0, 0).is_empty());
        // session and stop may be left out
        let r = h.answer(&json!({"hist_access_type": "range", "start": 4, "output": false}));
        assert_eq!(lines(&r), vec![4]);
    }

    #[test]
    fn search_globs_the_whole_input() {
        let h = history();
        let q = |req: Value| lines(&h.answer(&req));
        assert_eq!(
            q(json!({"hist_access_type": "search", "pattern": "1 + ?", "output": false})),
            vec![1, 3]
        );
        assert_eq!(
            q(json!({"hist_access_type": "search", "pattern": "1 + ?", "unique": true})),
            vec![3]
        );
        assert_eq!(
            q(json!({"hist_access_type": "search", "pattern": "*", "unique": true})),
            vec![2, 3, 4]
        );
        assert_eq!(
            q(json!({"hist_access_type": "search", "pattern": "*", "n": 2})),
            vec![3, 4]
        );
        // anchored: a part of the input is not a match
        assert!(q(json!({"hist_access_type": "search", "pattern": "1"})).is_empty());
        assert_eq!(
            q(json!({"hist_access_type": "search", "pattern": "a [*] 1?"})),
            vec![4]
        );
        // no pattern: everything
        assert_eq!(q(json!({"hist_access_type": "search"})), vec![1, 2, 3, 4]);
    }

    #[test]
    fn unknown_access_types_give_nothing() {
        let h = history();
        assert!(h.answer(&json!({"hist_access_type": "bogus"})).is_empty());
        assert!(h.answer(&json!({})).is_empty());
    }

    #[test]
    fn glob_follows_sqlite() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*c", "abbbc"));
        assert!(!glob_matches("a*c", "abbbd"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches("[a-c]x", "bx"));
        assert!(!glob_matches("[a-c]x", "dx"));
        assert!(glob_matches("[^a-c]x", "dx"));
        assert!(glob_matches("[]]", "]"));
        assert!(glob_matches("[*]", "*"));
        assert!(!glob_matches("[ab", "a"));
        assert!(!glob_matches("ABC", "abc"));
        assert!(glob_matches("é?", "éü"));
    }
}
