//! A progress bar that redraws in place in the fastai kernel (an HTML `<progress>` element
//! updated through the display protocol), like fastprogress in Python notebooks.
//!
//! Outside the fastai kernel, [`ProgressBar::live`] returns `None` and callers print plain
//! lines instead (notebooks do not redraw `\r` lines, and a terminal log should stay readable).

use std::time::{Duration, Instant};

use super::{supports_updates, DisplayHandle, Rich};

/// How a bar ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarState {
    Running,
    Done,
    /// Stopped early (interrupt, error): drawn in red.
    Interrupted,
}

/// A live progress bar: `label [=====>    ] 45% 450/1000 [00:10<00:12] comment`.
#[derive(Debug)]
pub struct ProgressBar {
    handle: DisplayHandle,
    label: String,
    total: Option<u64>,
    start: Instant,
    last_draw: Instant,
    /// Minimum time between redraws (the kernel forwards every update; keep traffic sane).
    pub min_interval: Duration,
}

impl ProgressBar {
    /// A bar shown now, when the frontend can update it in place; `None` otherwise.
    pub fn live(label: impl Into<String>, total: Option<u64>) -> Option<ProgressBar> {
        if !supports_updates() {
            return None;
        }
        let label = label.into();
        let html = bar_html(&label, 0, total, Duration::ZERO, "", BarState::Running);
        let handle = DisplayHandle::new(&Rich::html(html, label.clone()));
        let now = Instant::now();
        Some(ProgressBar {
            handle,
            label,
            total,
            start: now,
            last_draw: now,
            min_interval: Duration::from_millis(100),
        })
    }

    /// Sets the total (when it becomes known).
    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
    }

    /// Redraws with `done` units finished and a comment (throttled to `min_interval`).
    pub fn update(&mut self, done: u64, comment: &str) {
        if self.last_draw.elapsed() < self.min_interval {
            return;
        }
        self.draw(done, comment, BarState::Running);
    }

    /// Final redraw, green/complete or red/interrupted.
    pub fn finish(&mut self, done: u64, comment: &str, state: BarState) {
        self.draw(done, comment, state);
    }

    fn draw(&mut self, done: u64, comment: &str, state: BarState) {
        self.last_draw = Instant::now();
        let html = bar_html(
            &self.label,
            done,
            self.total,
            self.start.elapsed(),
            comment,
            state,
        );
        let text = format!(
            "{} {done}/{}",
            self.label,
            self.total.map_or("?".into(), |t| t.to_string())
        );
        self.handle.update(&Rich::html(html, text));
    }
}

/// `mm:ss` (or `h:mm:ss`).
pub fn format_time(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// The HTML of a bar; `elapsed` gives the time so far and the estimate of the time left.
pub fn bar_html(
    label: &str,
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
    comment: &str,
    state: BarState,
) -> String {
    let (value, max, pct) = match total {
        Some(t) if t > 0 => (
            done.min(t),
            t,
            format!("{:.2}%", 100.0 * done.min(t) as f64 / t as f64),
        ),
        _ => (0, 1, String::new()),
    };
    let left = match total {
        Some(t) if done > 0 && t > done && state == BarState::Running => {
            format!(
                "&lt;{}",
                format_time(elapsed.mul_f64((t - done) as f64 / done as f64))
            )
        }
        _ => String::new(),
    };
    let count = total.map_or(format!("{done}"), |t| format!("{done}/{t}"));
    let colour = match state {
        BarState::Interrupted => "accent-color:#d9534f;",
        _ => "",
    };
    let status = if state == BarState::Interrupted {
        " <b style='color:#d9534f'>interrupted</b>"
    } else {
        ""
    };
    format!(
        "<div><span style='font-family:monospace'>{label}</span> \
         <progress value='{value}' max='{max}' style='width:300px;height:20px;vertical-align:middle;{colour}'></progress> \
         {pct} [{count} {}{left}{}{}]{status}</div>",
        format_time(elapsed),
        if comment.is_empty() { "" } else { " " },
        html_escape(comment),
    )
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_shows_fraction_time_and_estimate() {
        let h = bar_html(
            "epoch",
            25,
            Some(100),
            Duration::from_secs(10),
            "loss 0.5",
            BarState::Running,
        );
        assert!(
            h.contains("value='25' max='100'") && h.contains("25.00%"),
            "{h}"
        );
        assert!(h.contains("[25/100 00:10&lt;00:30 loss 0.5]"), "{h}");
        let h = bar_html(
            "epoch",
            3,
            Some(100),
            Duration::from_secs(1),
            "",
            BarState::Interrupted,
        );
        assert!(h.contains("interrupted") && h.contains("d9534f"));
        assert_eq!(format_time(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(html_escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
