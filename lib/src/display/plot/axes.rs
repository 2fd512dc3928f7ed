//! Drawing a [`Plot`]: the axes box, ticks at round values, labels, the series and a legend, in
//! matplotlib's default style (sizes as matplotlib's at 100 dpi: 10 pt text, 1.5 pt lines).

use plotters::style::RGBColor;

use super::{Limits, Plot, Style, TAB10};
use crate::display::figure::Canvas;
use crate::display::paint::{line_height, text_width, Align, Rect};
use crate::error::Result;

/// Tick labels, axis labels and legend text: 10 pt.
const TEXT: f32 = 13.9;
/// The title: 12 pt.
const TITLE: f32 = 16.7;
const TICK_LEN: f32 = 5.0;
/// Between a tick and its label.
const TICK_PAD: f32 = 4.0;
const LINE_W: f32 = 2.0;
const DOT_R: f32 = 4.0;
const BLACK: RGBColor = RGBColor(0, 0, 0);

impl Plot {
    /// Draws the chart into `area` of `canvas` (a whole figure, or one panel of a larger one).
    pub(crate) fn draw_on(&self, canvas: &mut Canvas, area: Rect) -> Result<()> {
        let lim = self.limits()?;
        // Plot coordinates: log10(x) on a logarithmic axis, so one linear mapping serves both.
        let tx = |x: f64| if self.log_x { x.log10() } else { x };
        let (x0, x1) = (tx(lim.x.0), tx(lim.x.1));
        let (y0, y1) = lim.y;
        let text_h = line_height(TEXT);

        // Vertical layout first: it decides how many y ticks fit, which decides the left margin.
        let top = area.y0
            + if self.title.is_some() {
                line_height(TITLE) + 14.0
            } else {
                12.0
            };
        let xlabel_h = if self.xlabel.is_some() {
            text_h + 4.0
        } else {
            0.0
        };
        let bottom = area.y1 - (8.0 + TICK_LEN + TICK_PAD + text_h + xlabel_h);
        let yticks = fitting_ticks(y0, y1, bottom - top, false, |_| text_h * 1.6);
        let widest = yticks
            .iter()
            .map(|t| text_width(&t.1, TEXT))
            .fold(0.0, f32::max);
        let ylabel_w = if self.ylabel.is_some() {
            text_h + 6.0
        } else {
            0.0
        };
        let left = area.x0 + 8.0 + ylabel_w + widest + TICK_PAD + TICK_LEN;
        let right = area.x1 - 20.0;
        let xticks = fitting_ticks(x0, x1, right - left, self.log_x, |l| {
            text_width(l, TEXT) + 14.0
        });
        let ax = Rect::new(left.round(), top.round(), right.round(), bottom.round());
        if ax.width() < 20.0 || ax.height() < 20.0 {
            return Err(crate::error::Error::Msg(format!(
                "cannot draw the plot: a {:.0}x{:.0} pixel figure leaves no room for the axes; \
                 use a larger .figsize(..)",
                area.width(),
                area.height()
            )));
        }
        let px = |x: f64| ax.x0 + ((tx(x) - x0) / (x1 - x0)) as f32 * ax.width();
        let py = |y: f64| ax.y1 - ((y - y0) / (y1 - y0)) as f32 * ax.height();

        canvas.fill_rect(area, RGBColor(255, 255, 255), 1.0);
        for (i, s) in self.series.iter().enumerate() {
            let color = s.color.unwrap_or(TAB10[i % TAB10.len()]);
            let drawn =
                |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0);
            let points = s.x.iter().copied().zip(s.y.iter().copied());
            match s.style {
                Style::Line => {
                    // One path per run of drawable points: a NaN breaks the line.
                    let mut run = Vec::new();
                    for p in points {
                        if drawn(&p) {
                            run.push((px(p.0), py(p.1)));
                        } else {
                            canvas.polyline(&run, LINE_W, color, ax);
                            run.clear();
                        }
                    }
                    canvas.polyline(&run, LINE_W, color, ax);
                }
                Style::Scatter => {
                    for (x, y) in points.filter(drawn) {
                        canvas.dot((px(x), py(y)), DOT_R, color, ax);
                    }
                }
            }
        }

        // The frame (all four spines), then outward ticks with their labels below and left.
        canvas.stroke_rect(ax, BLACK);
        for (v, label) in &xticks {
            let x = (ax.x0 + ((v - x0) / (x1 - x0)) as f32 * ax.width())
                .floor()
                .clamp(ax.x0, ax.x1 - 1.0);
            canvas.fill_rect(Rect::new(x, ax.y1, x + 1.0, ax.y1 + TICK_LEN), BLACK, 1.0);
            let at = (x + 0.5, ax.y1 + TICK_LEN + TICK_PAD);
            canvas.text(label, at, TEXT, (Align::Center, Align::Start), BLACK);
        }
        for (v, label) in &yticks {
            let y = py(*v).floor().clamp(ax.y0, ax.y1 - 1.0);
            canvas.fill_rect(Rect::new(ax.x0 - TICK_LEN, y, ax.x0, y + 1.0), BLACK, 1.0);
            let at = (ax.x0 - TICK_LEN - TICK_PAD, y + 0.5);
            canvas.text(label, at, TEXT, (Align::End, Align::Center), BLACK);
        }
        let mid_x = (ax.x0 + ax.x1) / 2.0;
        if let Some(l) = &self.xlabel {
            let at = (mid_x, ax.y1 + TICK_LEN + TICK_PAD + text_h + 4.0);
            canvas.text(l, at, TEXT, (Align::Center, Align::Start), BLACK);
        }
        if let Some(l) = &self.ylabel {
            canvas.text_up(
                l,
                (area.x0 + 8.0 + text_h / 2.0, (ax.y0 + ax.y1) / 2.0),
                TEXT,
                BLACK,
            );
        }
        if let Some(t) = &self.title {
            let t = fit(t, TITLE, area.width() - 16.0);
            canvas.text(
                &t,
                (mid_x, ax.y0 - 8.0),
                TITLE,
                (Align::Center, Align::End),
                BLACK,
            );
        }
        self.draw_legend(canvas, ax, &lim);
        Ok(())
    }

    /// The labelled series' names with their line or dot, in a framed box in the emptiest corner.
    fn draw_legend(&self, canvas: &mut Canvas, ax: Rect, lim: &Limits) {
        let entries: Vec<(usize, &str)> = self
            .series
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.label.as_deref().map(|l| (i, l)))
            .collect();
        if entries.is_empty() {
            return;
        }
        let (pad, handle, gap, row) = (6.0, 28.0, 8.0, line_height(TEXT) * 1.25);
        let max_text = ax.width() - 2.0 * pad - handle - gap - 16.0;
        let labels: Vec<String> = entries.iter().map(|e| fit(e.1, TEXT, max_text)).collect();
        let text_w = labels
            .iter()
            .map(|l| text_width(l, TEXT))
            .fold(0.0, f32::max);
        let (w, h) = (
            pad * 2.0 + handle + gap + text_w,
            pad * 2.0 + row * entries.len() as f32,
        );
        let (right, upper) = self.emptiest_corner(lim);
        let bx = if right { ax.x1 - 8.0 - w } else { ax.x0 + 8.0 };
        let by = if upper { ax.y0 + 8.0 } else { ax.y1 - 8.0 - h };
        let frame = Rect::new(bx.round(), by.round(), (bx + w).round(), (by + h).round());
        canvas.fill_rect(frame, RGBColor(255, 255, 255), 0.8);
        canvas.stroke_rect(frame, RGBColor(204, 204, 204));
        for (k, ((i, _), label)) in entries.iter().zip(&labels).enumerate() {
            let s = &self.series[*i];
            let color = s.color.unwrap_or(TAB10[i % TAB10.len()]);
            let cy = by + pad + row * (k as f32 + 0.5);
            let (hx0, hx1) = (bx + pad, bx + pad + handle);
            match s.style {
                Style::Line => canvas.polyline(&[(hx0, cy), (hx1, cy)], LINE_W, color, frame),
                Style::Scatter => canvas.dot(((hx0 + hx1) / 2.0, cy), DOT_R, color, frame),
            }
            canvas.text(
                label,
                (hx1 + gap, cy),
                TEXT,
                (Align::Start, Align::Center),
                BLACK,
            );
        }
    }

    /// `(right, upper)`: the corner whose part of the axes holds the fewest points (a simple
    /// version of matplotlib's "best" legend location), upper right when they tie.
    fn emptiest_corner(&self, lim: &Limits) -> (bool, bool) {
        let tx = |x: f64| if self.log_x { x.log10() } else { x };
        let fx = |x: f64| (tx(x) - tx(lim.x.0)) / (tx(lim.x.1) - tx(lim.x.0));
        let fy = |y: f64| (y - lim.y.0) / (lim.y.1 - lim.y.0);
        let count = |right: bool, upper: bool| {
            let xs = if right { 0.55..=1.0 } else { 0.0..=0.45 };
            let ys = if upper { 0.6..=1.0 } else { 0.0..=0.4 };
            let pts = self.series.iter().flat_map(|s| s.x.iter().zip(&s.y));
            pts.filter(|(x, y)| xs.contains(&fx(**x)) && ys.contains(&fy(**y)))
                .count()
        };
        [(true, true), (false, true), (false, false), (true, false)]
            .into_iter()
            .min_by_key(|&(r, u)| count(r, u))
            .unwrap_or((true, true))
    }
}

/// `text`, shortened with "..." to fit `max_w` pixels.
fn fit(text: &str, size: f32, max_w: f32) -> String {
    if text_width(text, size) <= max_w {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    (1..chars.len())
        .rev()
        .map(|keep| chars[..keep].iter().collect::<String>() + "...")
        .find(|s| text_width(s, size) <= max_w)
        .unwrap_or_else(|| "...".into())
}

/// As many ticks as fit `len` pixels when each label needs `room(label)` of them (the most
/// matplotlib would show for that length, then fewer while the labels would collide).
fn fitting_ticks(
    lo: f64,
    hi: f64,
    len: f32,
    log: bool,
    room: impl Fn(&str) -> f32,
) -> Vec<(f64, String)> {
    let mut max_n = ((len / (TEXT * 3.0)) as usize).clamp(2, 12);
    loop {
        let ticks = if log {
            log_ticks(lo, hi, max_n)
        } else {
            linear_ticks(lo, hi, max_n)
        };
        let need: f32 = ticks.iter().map(|t| room(&t.1)).fold(0.0, f32::max) * ticks.len() as f32;
        if need <= len || max_n <= 2 {
            return ticks;
        }
        max_n -= 1;
    }
}

/// Ticks at round values (the smallest step of 1, 2, 2.5 or 5 times a power of ten that gives
/// at most `max_n + 1` ticks, as matplotlib's `MaxNLocator`), labelled with one number of
/// decimals for all.
pub(super) fn linear_ticks(lo: f64, hi: f64, max_n: usize) -> Vec<(f64, String)> {
    let mag = 10f64.powf(((hi - lo) / max_n.max(1) as f64).log10().floor());
    let count = |step: f64| (hi / step + 1e-9).floor() - (lo / step - 1e-9).ceil() + 1.0;
    let (mult, extra) = [(1.0, 0), (2.0, 0), (2.5, 1), (5.0, 0), (10.0, 0)]
        .into_iter()
        .find(|(m, _)| count(m * mag) <= (max_n + 1) as f64)
        .unwrap_or((10.0, 0));
    let step = mult * mag;
    let decimals = (extra - step.log10().floor() as i32).max(0) as usize;
    let biggest = lo.abs().max(hi.abs());
    // Very large or very small numbers in scientific notation, with enough mantissa digits to
    // tell neighbouring ticks apart.
    let sci = !(1e-3..1e6).contains(&biggest);
    let sci_decimals =
        (biggest.log10().floor() - step.log10().floor()).max(0.0) as usize + extra as usize;
    let (k0, k1) = (
        (lo / step - 1e-9).ceil() as i64,
        (hi / step + 1e-9).floor() as i64,
    );
    (k0..=k1)
        .map(|k| {
            let v = k as f64 * step;
            let label = match (sci, k) {
                (true, 0) => "0".to_string(),
                (true, _) => format!("{v:.sci_decimals$e}"),
                (false, _) => format!("{v:.decimals$}"),
            };
            (v, label)
        })
        .collect()
}

/// Ticks on a logarithmic axis, given `lo..hi` in log10 units: at powers of ten (every few when
/// there are many decades), or at 1, 2 and 5 times them when fewer than two are in range.
pub(super) fn log_ticks(lo: f64, hi: f64, max_n: usize) -> Vec<(f64, String)> {
    let (e0, e1) = (lo.ceil() as i32, hi.floor() as i32);
    let decades = e1 - e0 + 1;
    if decades >= 2 {
        let every = (decades as usize).div_ceil(max_n.max(1)).max(1) as i32;
        (e0..=e1)
            .filter(|e| (e - e0) % every == 0)
            .map(|e| (e as f64, format!("1e{e}")))
            .collect()
    } else {
        let mut ticks = Vec::new();
        for e in (lo.floor() as i32)..=(hi.ceil() as i32) {
            for m in [1, 2, 5] {
                let p = (m as f64).log10() + e as f64;
                if p >= lo - 1e-9 && p <= hi + 1e-9 {
                    ticks.push((p, format!("{m}e{e}")));
                }
            }
        }
        ticks
    }
}
