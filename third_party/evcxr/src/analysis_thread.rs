// Copyright 2020 The Evcxr Authors.
//
// Licensed under the Apache License, Version 2.0 <LICENSE or
// https://www.apache.org/licenses/LICENSE-2.0> or the MIT license <LICENSE
// or https://opensource.org/licenses/MIT>, at your option. This file may not be
// copied, modified, or distributed except according to those terms.

//! rust-analyzer, optionally working on a thread of its own (`EVCXR_BACKGROUND_ANALYSIS=1`).
//!
//! The first analysis in a context indexes the standard library, and the first one after a
//! dependency is added loads that dependency and everything it depends on: seconds to tens of
//! seconds of CPU for a large dependency tree, paid by whichever cell happens to define the first
//! variable. In background mode, while the analyzer is busy (or has never run), a cell that
//! defines variables does not wait for it: the names of its variables are read from its syntax,
//! the cell is compiled with their types left to the compiler (`put_variable::<_>`), and the
//! analysis that names their types is queued on the analyzer's thread. Its result is collected
//! when a later cell needs those variables (see `EvalContext::resolve_pending_types`).

use crate::rust_analyzer::RustAnalyzer;
use crate::rust_analyzer::VariableInfo;
use anyhow::Result;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;

/// The environment variable that turns background analysis on.
pub(crate) const BACKGROUND_ANALYSIS_VAR: &str = "EVCXR_BACKGROUND_ANALYSIS";

/// What a queued analysis finds: the top-level variables of the analysed code, or why not.
pub(crate) type AnalysisResult = Result<HashMap<String, VariableInfo>, String>;

/// A queued analysis whose result someone will wait for.
pub(crate) type PendingAnalysis = crossbeam_channel::Receiver<AnalysisResult>;

struct Job {
    source: String,
    function_name: &'static str,
    reply: Option<crossbeam_channel::Sender<AnalysisResult>>,
}

struct Background {
    jobs: crossbeam_channel::Sender<Job>,
    /// Jobs queued or running.
    outstanding: Arc<AtomicUsize>,
    /// Whether a job has finished: the standard library has been indexed.
    warm: Arc<AtomicBool>,
    /// The thread's id for the scheduler (0 until it has started; Linux only).
    tid: Arc<std::sync::atomic::AtomicI64>,
}

pub(crate) struct Analyzer {
    shared: Arc<Mutex<RustAnalyzer>>,
    background: Option<Background>,
}

impl Analyzer {
    pub(crate) fn new(root_directory: &Path) -> Result<Analyzer> {
        let background = std::env::var(BACKGROUND_ANALYSIS_VAR).is_ok_and(|v| v == "1");
        let analyzer = RustAnalyzer::new(root_directory)?;
        let shared = Arc::new(Mutex::new(analyzer));
        let background = if background {
            Some(start_thread(shared.clone())?)
        } else {
            None
        };
        Ok(Analyzer { shared, background })
    }

    /// The analyzer, for a synchronous query; waits for the job running on the thread, if any.
    pub(crate) fn lock(&self) -> MutexGuard<'_, RustAnalyzer> {
        // A job that panicked leaves the analyzer as usable as a failed query would.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a query now would have to wait: background mode, and the thread has work queued
    /// or has not yet finished a first job (the standard library is not indexed).
    pub(crate) fn is_busy(&self) -> bool {
        self.background.as_ref().is_some_and(|b| {
            b.outstanding.load(Ordering::SeqCst) > 0 || !b.warm.load(Ordering::SeqCst)
        })
    }

    /// Queues the analysis of `source` (background mode; otherwise runs it now). The returned
    /// channel delivers the top-level variables of `function_name`.
    pub(crate) fn submit(&self, source: String, function_name: &'static str) -> PendingAnalysis {
        let (reply, result) = crossbeam_channel::bounded(1);
        let job = Job {
            source,
            function_name,
            reply: Some(reply),
        };
        self.run_or_queue(job);
        result
    }

    /// Queues an analysis whose result nobody needs: it only fills rust-analyzer's caches.
    pub(crate) fn prime(&self, source: String, function_name: &'static str) {
        self.run_or_queue(Job {
            source,
            function_name,
            reply: None,
        });
    }

    /// While a cell compiles and runs, the analysis thread only gets CPU time nobody else wants
    /// (`SCHED_IDLE` on Linux); between cells it is back at its lowered priority.
    pub(crate) fn set_cell_running(&self, running: bool) {
        #[cfg(target_os = "linux")]
        if let Some(b) = &self.background {
            let tid = b.tid.load(Ordering::SeqCst);
            if tid > 0 {
                let policy = if running {
                    libc::SCHED_IDLE
                } else {
                    libc::SCHED_OTHER
                };
                let param = libc::sched_param { sched_priority: 0 };
                // SAFETY: changes the scheduling of a thread of this process; `param` outlives
                // the call.
                unsafe {
                    libc::sched_setscheduler(tid as libc::pid_t, policy, &param);
                    if !running {
                        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
                    }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = running;
    }

    fn run_or_queue(&self, job: Job) {
        match &self.background {
            Some(b) => {
                b.outstanding.fetch_add(1, Ordering::SeqCst);
                if let Err(e) = b.jobs.send(job) {
                    // The thread is gone (it cannot be, it lives as long as `jobs`): run it here.
                    b.outstanding.fetch_sub(1, Ordering::SeqCst);
                    run_job(&self.shared, e.into_inner());
                }
            }
            None => run_job(&self.shared, job),
        }
    }
}

fn start_thread(shared: Arc<Mutex<RustAnalyzer>>) -> Result<Background> {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    let outstanding = Arc::new(AtomicUsize::new(0));
    let warm = Arc::new(AtomicBool::new(false));
    let tid = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let (outstanding2, warm2, tid2) = (outstanding.clone(), warm.clone(), tid.clone());
    std::thread::Builder::new()
        .name("evcxr-analysis".into())
        .spawn(move || {
            tid2.store(lower_priority(), Ordering::SeqCst);
            for job in queue {
                run_job(&shared, job);
                warm2.store(true, Ordering::SeqCst);
                outstanding2.fetch_sub(1, Ordering::SeqCst);
            }
        })?;
    Ok(Background {
        jobs,
        outstanding,
        warm,
        tid,
    })
}

fn run_job(shared: &Mutex<RustAnalyzer>, job: Job) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut analyzer = shared.lock().unwrap_or_else(|e| e.into_inner());
        analyzer
            .set_source(job.source)
            .map(|()| analyzer.top_level_variables(job.function_name))
            .map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err("rust-analyzer panicked".to_owned()));
    if let Some(reply) = job.reply {
        // Nobody waiting any more (the context was cleared or dropped) is fine.
        let _ = reply.send(result);
    }
}

/// The analysis thread yields the CPU to the compiler: on a machine with few cores, the cell being
/// compiled is what the user waits for.
/// Returns the thread's id (0 where there is none to give).
fn lower_priority() -> i64 {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id; no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
        tid as i64
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The variables that the top-level `let` statements of `function_name` in `source` define, with
/// whether each is `mut`, read from the syntax alone (what [`RustAnalyzer::top_level_variables`]
/// finds, without the types). A closure bound without a type is refused with the message the
/// analysis would give, since it cannot be stored.
pub(crate) fn declared_variables(
    source: &str,
    function_name: &str,
) -> Result<Vec<(String, bool)>, String> {
    use ra_ap_syntax::AstNode;
    use ra_ap_syntax::ast;
    use ra_ap_syntax::ast::HasModuleItem;
    use ra_ap_syntax::ast::HasName;
    let parsed = ast::SourceFile::parse(source, crate::rust_analyzer::EDITION).tree();
    let mut found = Vec::new();
    for item in parsed.items() {
        let ast::Item::Fn(function) = item else {
            continue;
        };
        if function.name().is_none_or(|n| n.text() != function_name) {
            continue;
        }
        let Some(body) = function.body() else {
            continue;
        };
        for statement in body.statements() {
            let ast::Stmt::LetStmt(let_stmt) = statement else {
                continue;
            };
            let Some(pat) = let_stmt.pat() else { continue };
            if let ast::Pat::IdentPat(ident) = &pat
                && let Some(name) = ident.name()
                && let_stmt.ty().is_none()
                && matches!(let_stmt.initializer(), Some(ast::Expr::ClosureExpr(_)))
            {
                return Err(format!(
                    "The variable `{}` is a closure, which cannot be persisted.\n\
                     You can however persist closures if you box them. e.g.:\n\
                     let f: Box<dyn Fn()> = Box::new(|| {{println!(\"foo\")}});\n\
                     Alternatively, you can prevent evcxr from attempting to persist\n\
                     the variable by wrapping your code in braces.",
                    name.text()
                ));
            }
            for node in pat.syntax().descendants() {
                let Some(ident) = ast::IdentPat::cast(node) else {
                    continue;
                };
                let Some(name) = ident.name() else { continue };
                let name = name.text().to_string();
                // `None`, `MAX`: a constant or unit variant in a pattern, not a binding (rustc
                // warns about bindings named like this anyway).
                if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    continue;
                }
                if !found.iter().any(|(n, _)| *n == name) {
                    found.push((name, ident.mut_token().is_some()));
                }
            }
        }
    }
    Ok(found)
}

/// Whether the body of `function_name` in `source` has a top-level `let` statement: if not, the
/// analysis would find no variables, and need not run.
pub(crate) fn has_let_statements(source: &str, function_name: &str) -> bool {
    use ra_ap_syntax::ast;
    use ra_ap_syntax::ast::HasModuleItem;
    use ra_ap_syntax::ast::HasName;
    let parsed = ast::SourceFile::parse(source, crate::rust_analyzer::EDITION).tree();
    parsed.items().any(|item| {
        let ast::Item::Fn(function) = item else {
            return false;
        };
        function.name().is_some_and(|n| n.text() == function_name)
            && function.body().is_some_and(|body| {
                body.statements()
                    .any(|statement| matches!(statement, ast::Stmt::LetStmt(_)))
            })
    })
}

/// Whether `code` may refer to `name`: it appears as a whole word anywhere, strings included
/// (`println!("{name}")`). Errs on the side of yes.
pub(crate) fn mentions(code: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_variables_from_syntax() {
        let source = "fn other() { let no = 1; }\n\
                      fn wrapper() { let a = 1; let mut b = vec![2]; let (c, None, mut d) = f();\n\
                      let Point { x, .. } = p; { let inner = 3; } let e: Box<dyn Fn()> = g; }";
        let found = declared_variables(source, "wrapper").unwrap();
        let names: Vec<_> = found.iter().map(|(n, m)| (n.as_str(), *m)).collect();
        assert_eq!(
            names,
            vec![
                ("a", false),
                ("b", true),
                ("c", false),
                ("d", true),
                ("x", false),
                ("e", false)
            ]
        );
    }

    #[test]
    fn closures_are_refused_like_the_analysis_does() {
        let err = declared_variables("fn w() { let f = |x: i32| x + 1; }", "w").unwrap_err();
        assert!(err.contains("`f` is a closure"), "{err}");
        let typed = "fn w() { let f: fn(i32) -> i32 = |x| x + 1; }";
        assert_eq!(declared_variables(typed, "w").unwrap().len(), 1);
    }

    #[test]
    fn let_statements_are_found_at_the_top_level_only() {
        assert!(has_let_statements("fn w() { 1; let a = 2; }", "w"));
        assert!(!has_let_statements("fn w() { 1 + 1 }", "w"));
        assert!(!has_let_statements("fn w() { { let a = 1; } }", "w"));
        assert!(!has_let_statements("fn o() { let a = 1; } fn w() {}", "w"));
    }

    #[test]
    fn mentions_whole_words_only() {
        assert!(mentions("let y = t + 1;", "t"));
        assert!(mentions("println!(\"{t}\")", "t"));
        assert!(!mentions("let total = 1; tt", "t"));
        assert!(!mentions("1 + 1", "t"));
    }
}
