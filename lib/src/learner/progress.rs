//! Training progress as fastprogress shows it: an epoch bar, a batch bar with the smoothed loss
//! and the time left, and the table `epoch | train_loss | valid_loss | <metrics> | time`.
//!
//! In the fastai kernel it is one display updated in place while training runs. Elsewhere the
//! table is printed a row at a time as epochs finish (and, in a terminal, a batch bar is drawn
//! on stderr with `\r`).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::callback::{AnyLearner, Callback, FitState};
use crate::display::progress::{bar_html, format_time, html_escape, BarState};
use crate::display::{supports_updates, DisplayHandle, Rich};

/// One of the standing callbacks; `learn.remove_cb::<ProgressCallback>()` silences training.
pub struct ProgressCallback {
    metric_names: Vec<String>,
    /// How the last fit's display ended (for tests): `None` while none has run.
    pub last_state: Option<BarState>,
    rows: Vec<Vec<String>>,
    handle: Option<DisplayHandle>,
    live: bool,
    tty: bool,
    fit_start: Instant,
    epoch_start: Instant,
    last_draw: Instant,
    /// The live loss chart (fastai's `ShowGraph`): redrawn after every epoch and every this
    /// many batches; `None` = off (the default). See [`crate::learner::Learner::show_graph`].
    pub graph_every: Option<usize>,
    /// The chart's last drawing, as a base64 PNG.
    graph: Option<String>,
}

/// A display with no rows yet; the metric columns are the learner's, read when a fit starts.
impl Default for ProgressCallback {
    fn default() -> Self {
        let now = Instant::now();
        ProgressCallback {
            metric_names: Vec::new(),
            last_state: None,
            rows: Vec::new(),
            handle: None,
            live: supports_updates(),
            tty: std::io::stderr().is_terminal(),
            fit_start: now,
            epoch_start: now,
            last_draw: now,
            graph_every: None,
            graph: None,
        }
    }
}

impl ProgressCallback {
    fn header(&self) -> Vec<String> {
        let mut h = vec![
            "epoch".to_string(),
            "train_loss".into(),
            "valid_loss".into(),
        ];
        h.extend(self.metric_names.iter().cloned());
        h.push("time".into());
        h
    }

    fn table_html(&self) -> String {
        let mut s = String::from(
            "<table border='1' class='dataframe'><thead><tr style='text-align: left;'>",
        );
        for h in self.header() {
            s += &format!("<th>{}</th>", html_escape(&h));
        }
        s += "</tr></thead><tbody>";
        for r in &self.rows {
            s += "<tr>";
            for c in r {
                s += &format!("<td>{c}</td>");
            }
            s += "</tr>";
        }
        s + "</tbody></table>"
    }

    fn text_table(&self) -> String {
        let mut lines = vec![self.header().join("  ")];
        lines.extend(self.rows.iter().map(|r| r.join("  ")));
        lines.join("\n")
    }

    fn render(&self, s: &FitState, state: BarState) -> Rich {
        let epochs = bar_html(
            "epoch",
            s.epoch as u64 + u64::from(state != BarState::Running),
            Some(s.n_epochs as u64),
            self.fit_start.elapsed(),
            "",
            state,
        );
        let batch = if state == BarState::Running || state == BarState::Interrupted {
            let comment = if s.batch > 0 {
                format!("{:.4}", s.smooth_loss)
            } else {
                String::new()
            };
            bar_html(
                "batch",
                s.batch as u64,
                Some(s.n_batches as u64),
                self.epoch_start.elapsed(),
                &comment,
                state,
            )
        } else {
            String::new()
        };
        let graph = self.graph.as_ref().map_or(String::new(), |b64| {
            format!("<div><img src='data:image/png;base64,{b64}' alt='training and validation loss'/></div>")
        });
        let html = format!("<div>{epochs}{batch}{}{graph}</div>", self.table_html());
        Rich::html(html, self.text_table())
    }

    /// Redraws the loss chart from the recorder (when the graph is on).
    fn redraw_graph(&mut self, l: &AnyLearner) {
        if self.graph_every.is_none() || !self.live {
            return;
        }
        let s = &l.state;
        let iters = s.n_epochs * s.n_batches;
        if let Ok(png) = l.recorder.losses_chart(Some(iters), (6.0, 3.6)) {
            use base64::Engine;
            self.graph = Some(base64::engine::general_purpose::STANDARD.encode(png));
        }
    }

    fn draw(&mut self, s: &FitState, state: BarState) {
        self.last_draw = Instant::now();
        let r = self.render(s, state);
        match &self.handle {
            Some(h) => h.update(&r),
            None => self.handle = Some(DisplayHandle::new(&r)),
        }
    }
}

fn fmt_val(v: f64) -> String {
    if v.is_nan() {
        "#na#".into()
    } else {
        format!("{v:.6}")
    }
}

impl Callback for ProgressCallback {
    fn order(&self) -> i32 {
        60
    }
    fn before_fit(&mut self, l: &mut AnyLearner) {
        // a new display for every fit
        self.metric_names = l.metrics.iter().map(|m| m.name()).collect();
        self.rows.clear();
        self.handle = None;
        self.graph = None;
        self.last_state = Some(BarState::Running);
        let s = &l.state;
        self.fit_start = Instant::now();
        if self.live {
            self.draw(s, BarState::Running);
        } else {
            println!("{}", self.header().join("  "));
        }
    }
    fn before_epoch(&mut self, l: &mut AnyLearner) {
        let s = &l.state;
        self.epoch_start = Instant::now();
        if self.live {
            self.draw(s, BarState::Running);
        }
    }
    fn after_batch(&mut self, l: &mut AnyLearner) {
        let s = &l.state;
        if !s.training {
            return;
        }
        if self.live {
            let graph_due = self
                .graph_every
                .is_some_and(|n| n > 0 && s.batch > 0 && s.batch % n == 0);
            if graph_due {
                self.redraw_graph(l);
                let s = &l.state;
                self.draw(s, BarState::Running);
            } else if self.last_draw.elapsed() >= Duration::from_millis(200) {
                self.draw(s, BarState::Running);
            }
        } else if self.tty && self.last_draw.elapsed() >= Duration::from_millis(200) {
            self.last_draw = Instant::now();
            eprint!(
                "\r  batch {}/{} loss {:.4} [{}]   ",
                s.batch,
                s.n_batches,
                s.smooth_loss,
                format_time(self.epoch_start.elapsed())
            );
            let _ = std::io::stderr().flush();
        }
    }
    fn after_epoch(&mut self, l: &mut AnyLearner) {
        let s = &l.state;
        let mut row = vec![
            s.epoch.to_string(),
            fmt_val(s.smooth_loss),
            fmt_val(s.valid_loss.unwrap_or(f64::NAN)),
        ];
        row.extend(s.metrics.iter().map(|(_, v)| fmt_val(*v)));
        row.push(format_time(self.epoch_start.elapsed()));
        if self.live {
            self.rows.push(row);
            self.redraw_graph(l);
            let s = &l.state;
            self.draw(s, BarState::Running);
        } else {
            if self.tty {
                eprint!("\r{:60}\r", "");
            }
            println!("{}", row.join("  "));
            self.rows.push(row);
        }
    }
    fn after_fit(&mut self, l: &mut AnyLearner) {
        let s = &l.state;
        let state = if s.stop_reason.is_some() {
            BarState::Interrupted
        } else {
            BarState::Done
        };
        self.last_state = Some(state);
        if self.live && self.handle.is_some() {
            self.draw(s, state);
        }
        if let Some(reason) = &s.stop_reason {
            eprintln!("{reason}");
        }
    }
}
