//! Plotting your own data, as matplotlib's `plt.plot(losses)` and `plt.scatter(x, y)`: a [`Plot`]
//! of one or more series, drawn the way matplotlib draws by default (a framed axes box, outward
//! ticks, the tab10 colours, no grid), that shows as a PNG when a notebook cell ends in it.
//!
//! ```no_run
//! use fastai::vision::*;
//! let losses = vec![2.3f32, 1.1, 0.7, 0.5, 0.45];
//! plot(&losses).title("Training loss").show()?; // a line over the index, as plt.plot(losses)
//!
//! let x = Tensor::linspace(-1.0, 1.0, 100, (Kind::Float, Device::Cpu));
//! let y = &x * 3.0 + 2.0 + Tensor::randn([100], (Kind::Float, Device::Cpu)) * 0.3;
//! let fit = &x * 2.9 + 2.1;
//! let chart = Plot::new()
//!     .scatter(&x, &y).label("data")
//!     .line(&x, &fit).label("fit")
//!     .title("y = 3x + 2").xlabel("x").ylabel("y");
//! chart.show()?; // or end the cell with `chart` to show it as the cell's result
//! # Ok::<(), fastai::Error>(())
//! ```
//!
//! Building never fails: a bad series (lengths that differ, an empty or all-NaN series, a 2-d
//! tensor) is remembered, and drawing ([`Plot::png`], [`Plot::show`], or the cell's result)
//! reports it. So a chain reads like the Python call, without a `?` after every step.

use std::fmt;

use plotters::style::RGBColor;

use super::figure::Canvas;
use super::series::IntoSeries;
use super::{display, Rich};
use crate::error::{Error, Result};

mod axes;

/// matplotlib's default colour cycle ("tab10"): the n-th series gets `TAB10[n % 10]`.
pub const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// matplotlib's default figure size, in inches (640 x 480 pixels).
pub const FIGSIZE: (f32, f32) = (6.4, 4.8);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Line,
    Scatter,
}

#[derive(Clone)]
struct Series {
    style: Style,
    x: Vec<f64>,
    y: Vec<f64>,
    label: Option<String>,
    color: Option<RGBColor>,
}

/// A chart of one or more series (lines and scatters) on one pair of axes.
///
/// Build it with chained calls; it is drawn when shown. As a notebook cell's last value it shows
/// as a PNG (and a bad series as the cell's error); [`Plot::show`] shows it at once, and
/// [`Plot::png`] returns the bytes.
#[derive(Clone)]
pub struct Plot {
    series: Vec<Series>,
    title: Option<String>,
    xlabel: Option<String>,
    ylabel: Option<String>,
    log_x: bool,
    xlim: Option<(f64, f64)>,
    ylim: Option<(f64, f64)>,
    figsize: (f32, f32),
    /// The first thing that went wrong while building; drawing reports it.
    error: Option<String>,
}

/// A line of `y` over its index `0, 1, 2, ...`: matplotlib's `plt.plot(losses)`.
pub fn plot(y: impl IntoSeries) -> Plot {
    Plot::new().line_y(y)
}

/// A line through the points `(x[i], y[i])`: matplotlib's `plt.plot(x, y)`.
pub fn plot_xy(x: impl IntoSeries, y: impl IntoSeries) -> Plot {
    Plot::new().line(x, y)
}

/// The points `(x[i], y[i])` as dots: matplotlib's `plt.scatter(x, y)`.
pub fn scatter(x: impl IntoSeries, y: impl IntoSeries) -> Plot {
    Plot::new().scatter(x, y)
}

impl Default for Plot {
    fn default() -> Self {
        Plot::new()
    }
}

impl Plot {
    /// An empty chart of matplotlib's default size; add series with [`line`](Plot::line),
    /// [`line_y`](Plot::line_y) and [`scatter`](Plot::scatter).
    pub fn new() -> Plot {
        Plot {
            series: Vec::new(),
            title: None,
            xlabel: None,
            ylabel: None,
            log_x: false,
            xlim: None,
            ylim: None,
            figsize: FIGSIZE,
            error: None,
        }
    }

    /// Adds a line through `(x[i], y[i])`. NaN or infinite values break the line.
    pub fn line(self, x: impl IntoSeries, y: impl IntoSeries) -> Plot {
        self.add(
            Style::Line,
            "line(x, y)",
            Some(x.into_series()),
            y.into_series(),
        )
    }

    /// Adds a line of `y` over its index `0, 1, 2, ...` (a loss curve).
    pub fn line_y(self, y: impl IntoSeries) -> Plot {
        self.add(Style::Line, "line_y(y)", None, y.into_series())
    }

    /// Adds the points `(x[i], y[i])` as dots. Points with a NaN or infinite value are skipped.
    pub fn scatter(self, x: impl IntoSeries, y: impl IntoSeries) -> Plot {
        self.add(
            Style::Scatter,
            "scatter(x, y)",
            Some(x.into_series()),
            y.into_series(),
        )
    }

    /// Names the series added just before (shown in a legend).
    pub fn label(mut self, label: impl Into<String>) -> Plot {
        match self.series.last_mut() {
            Some(s) => s.label = Some(label.into()),
            None => {
                self.fail("label(..) names the series added just before it: add a series first")
            }
        }
        self
    }

    /// Colours the series added just before: a matplotlib colour name (`"orange"`,
    /// `"tab:orange"`, `"black"`), `"C0"`..`"C9"`, a letter (`"b"`, `"r"`, `"k"`) or `"#rrggbb"`.
    /// By default the n-th series gets the n-th colour of [`TAB10`].
    pub fn color(mut self, color: &str) -> Plot {
        match (parse_color(color), self.series.last_mut()) {
            (Some(c), Some(s)) => s.color = Some(c),
            (None, _) => self.fail(&format!(
                "unknown color {color:?}: use a name (\"red\", \"tab:orange\"), \"C0\"..\"C9\", \
                 a letter (\"b\", \"r\", \"k\") or \"#rrggbb\""
            )),
            (Some(_), None) => {
                self.fail("color(..) colours the series added just before it: add a series first")
            }
        }
        self
    }

    /// A title above the axes.
    pub fn title(mut self, title: impl Into<String>) -> Plot {
        self.title = Some(title.into());
        self
    }

    /// The x axis' label.
    pub fn xlabel(mut self, label: impl Into<String>) -> Plot {
        self.xlabel = Some(label.into());
        self
    }

    /// The y axis' label.
    pub fn ylabel(mut self, label: impl Into<String>) -> Plot {
        self.ylabel = Some(label.into());
        self
    }

    /// A logarithmic x axis (as the learning-rate finder's plot); points with `x <= 0` are left
    /// out, as matplotlib does.
    pub fn log_x(mut self) -> Plot {
        self.log_x = true;
        self
    }

    /// Fixes the x axis to `lo..hi` (otherwise it fits the data, with a 5% margin).
    pub fn xlim(mut self, lo: f64, hi: f64) -> Plot {
        match check_lim("xlim", lo, hi) {
            Ok(l) => self.xlim = Some(l),
            Err(e) => self.fail(&e),
        }
        self
    }

    /// Fixes the y axis to `lo..hi` (otherwise it fits the data, with a 5% margin).
    pub fn ylim(mut self, lo: f64, hi: f64) -> Plot {
        match check_lim("ylim", lo, hi) {
            Ok(l) => self.ylim = Some(l),
            Err(e) => self.fail(&e),
        }
        self
    }

    /// The figure's size in inches at 100 pixels per inch (default 6.4 x 4.8, as matplotlib).
    pub fn figsize(mut self, figsize: (f32, f32)) -> Plot {
        if figsize.0.is_finite() && figsize.1.is_finite() && figsize.0 > 0.0 && figsize.1 > 0.0 {
            self.figsize = figsize;
        } else {
            self.fail(&format!(
                "figsize{figsize:?}: width and height must be positive (inches, e.g. (6.4, 4.8))"
            ));
        }
        self
    }

    /// The chart as PNG bytes, or what is wrong with its data.
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut canvas = Canvas::from_figsize(self.figsize);
        let whole = canvas.bounds();
        self.draw_on(&mut canvas, whole)?;
        Ok(canvas.to_png())
    }

    /// The chart as a displayable PNG (with a one-line text description).
    pub fn to_rich(&self) -> Result<Rich> {
        Ok(Rich::png(self.png()?, &self.describe()))
    }

    /// Shows the chart now, as matplotlib's `plt.show()` (in a notebook: below the cell's
    /// output so far; in a plain program: saved as a PNG file whose path is printed).
    pub fn show(&self) -> Result<()> {
        display(&self.to_rich()?);
        Ok(())
    }

    fn fail(&mut self, msg: &str) {
        self.error.get_or_insert_with(|| msg.to_string());
    }

    fn add(
        mut self,
        style: Style,
        call: &str,
        x: Option<std::result::Result<Vec<f64>, String>>,
        y: std::result::Result<Vec<f64>, String>,
    ) -> Plot {
        match checked(call, x, y) {
            Ok((x, y)) => self.series.push(Series {
                style,
                x,
                y,
                label: None,
                color: None,
            }),
            Err(e) => self.fail(&e),
        }
        self
    }

    /// "Plot: title (line of 100 points, scatter of 50 points)": the text alternative.
    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .series
            .iter()
            .map(|s| {
                let kind = if s.style == Style::Line {
                    "line"
                } else {
                    "scatter"
                };
                match &s.label {
                    Some(l) => format!("{kind} {l:?} of {} points", s.y.len()),
                    None => format!("{kind} of {} points", s.y.len()),
                }
            })
            .collect();
        match &self.title {
            Some(t) => format!("Plot: {t} ({})", parts.join(", ")),
            None => format!("Plot ({})", parts.join(", ")),
        }
    }

    /// The axes' limits in data units: the ones set, or the data's range with a 5% margin.
    pub(crate) fn limits(&self) -> Result<Limits> {
        if let Some(e) = &self.error {
            return Err(Error::Msg(format!("cannot draw the plot: {e}")));
        }
        if self.series.is_empty() {
            return Err(Error::Msg(
                "cannot draw the plot: it has no data; add a series with .line(x, y), \
                 .line_y(y) or .scatter(x, y)"
                    .into(),
            ));
        }
        let shown = |x: f64, y: f64| x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0);
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| s.x.iter().copied().zip(s.y.iter().copied()))
                .filter(|&(x, y)| shown(x, y))
        };
        if pts().next().is_none() {
            return Err(Error::Msg(
                "cannot draw the plot: the x axis is logarithmic (.log_x()) but no point has \
                 x > 0; drop .log_x() or plot positive x values"
                    .into(),
            ));
        }
        let x = match self.xlim {
            Some((lo, hi)) if self.log_x && lo <= 0.0 => {
                return Err(Error::Msg(format!(
                    "cannot draw the plot: xlim({lo}, {hi}) starts at or below 0 on a \
                     logarithmic x axis; use a positive lower limit"
                )))
            }
            Some(l) => l,
            None if self.log_x => {
                let (lo, hi) = padded_range(pts().map(|p| p.0.log10()));
                (10f64.powf(lo), 10f64.powf(hi))
            }
            None => padded_range(pts().map(|p| p.0)),
        };
        let y = self
            .ylim
            .unwrap_or_else(|| padded_range(pts().map(|p| p.1)));
        Ok(Limits { x, y })
    }

    /// Keeps the axes where `lim` puts them, unless this plot sets its own limits (an animation
    /// keeps its first frame's axes, as matplotlib's `FuncAnimation` redraws on fixed axes).
    pub(crate) fn keep_limits(&mut self, lim: &Limits) {
        self.xlim.get_or_insert(lim.x);
        self.ylim.get_or_insert(lim.y);
    }
}

/// A chart's axes limits, in data units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub x: (f64, f64),
    pub y: (f64, f64),
}

impl fmt::Debug for Plot {
    /// A summary, not the data: `Plot: Training loss (line of 5 points)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())?;
        if let Some(e) = &self.error {
            write!(f, " [cannot be drawn: {e}]")?;
        }
        Ok(())
    }
}

/// Checks one series: both parts converted, the same length, something drawable.
fn checked(
    call: &str,
    x: Option<std::result::Result<Vec<f64>, String>>,
    y: std::result::Result<Vec<f64>, String>,
) -> std::result::Result<(Vec<f64>, Vec<f64>), String> {
    let y = y.map_err(|e| format!("{call}: y {e}"))?;
    let x = match x {
        Some(x) => x.map_err(|e| format!("{call}: x {e}"))?,
        None => (0..y.len()).map(|i| i as f64).collect(),
    };
    if x.len() != y.len() {
        return Err(format!(
            "{call}: x has {} values but y has {}; point i is (x[i], y[i]), so they need the \
             same length",
            x.len(),
            y.len()
        ));
    }
    if y.is_empty() {
        return Err(format!(
            "{call}: the series is empty, there is nothing to draw"
        ));
    }
    let finite = |v: &[f64]| v.iter().filter(|v| v.is_finite()).count();
    let n = y.len();
    if finite(&y) == 0 {
        return Err(format!(
            "{call}: all {n} values of y are NaN or infinite (did training diverge? try a \
             lower learning rate)"
        ));
    }
    if finite(&x) == 0 {
        return Err(format!("{call}: all {n} values of x are NaN or infinite"));
    }
    if !x
        .iter()
        .zip(&y)
        .any(|(a, b)| a.is_finite() && b.is_finite())
    {
        return Err(format!(
            "{call}: no point has both x and y finite (of {n} points, each has a NaN or \
             infinite x or y)"
        ));
    }
    Ok((x, y))
}

fn check_lim(call: &str, lo: f64, hi: f64) -> std::result::Result<(f64, f64), String> {
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok((lo, hi))
    } else {
        Err(format!(
            "{call}({lo}, {hi}): the limits must be finite, the lower one first"
        ))
    }
}

/// The range of `values` with a 5% margin on each side (around a single value: 5% of it, or
/// 0.5 around 0).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo > hi {
        (0.0, 1.0) // no values
    } else if lo == hi {
        let pad = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
        (lo - pad, hi + pad)
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// A matplotlib colour: name, `tab:` name, `C0`..`C9`, one-letter code or `#rrggbb`.
fn parse_color(s: &str) -> Option<RGBColor> {
    let s = s.trim().to_ascii_lowercase();
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() == 6 {
            let v = u32::from_str_radix(hex, 16).ok()?;
            return Some(RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8));
        }
        return None;
    }
    if let Some(n) = s.strip_prefix('c').and_then(|d| d.parse::<usize>().ok()) {
        return TAB10.get(n).copied();
    }
    let name = s.strip_prefix("tab:").unwrap_or(&s);
    let tab = [
        "blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan",
    ];
    if let Some(i) = tab.iter().position(|&t| t == name) {
        return Some(TAB10[i]);
    }
    Some(match name {
        "grey" => TAB10[7],
        "b" => RGBColor(0, 0, 255),
        "g" => RGBColor(0, 128, 0),
        "r" => RGBColor(255, 0, 0),
        "c" => RGBColor(0, 191, 191),
        "m" | "magenta" => RGBColor(191, 0, 191),
        "y" | "yellow" => RGBColor(191, 191, 0),
        "k" | "black" => RGBColor(0, 0, 0),
        "w" | "white" => RGBColor(255, 255, 255),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
