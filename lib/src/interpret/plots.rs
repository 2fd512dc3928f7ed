//! The interpretation's figures: `plot_top_losses` (a grid of the worst items with
//! `prediction/actual/loss/probability` titles) and `plot_confusion_matrix` (a Blues heat map
//! with the counts in the cells). Each is shown inline in a notebook (or saved as a PNG in a
//! plain program) and has a `_png` twin that returns the bytes.

use image::{imageops::FilterType, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::ClassificationInterpretation;
use crate::display::figure::{fit_text, Canvas, TITLE_FONT};
use crate::display::paint::Align;
use crate::display::{display, Rich};
use crate::error::{Error, Result};

fn chart_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Msg(format!("drawing the chart failed: {e:?}"))
}

fn text_width(text: &str, px: f64) -> u32 {
    crate::display::paint::text_width(text, px as f32).ceil() as u32
}

fn style(px: f64, color: &'static RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((TITLE_FONT, px).into_font())
        .color(color)
        .pos(Pos::new(h, v))
}

/// Breaks `title` into lines of at most `max_w` pixels, after its '/' separators (a part too
/// long for a line on its own is shortened with "...").
fn wrap_title(title: &str, px: f64, max_w: u32) -> Vec<String> {
    let parts: Vec<&str> = title.split_inclusive('/').collect();
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for part in parts {
        let joined = format!("{cur}{part}");
        if cur.is_empty() || text_width(&joined, px) <= max_w {
            cur = joined;
        } else {
            lines.push(std::mem::take(&mut cur));
            cur = part.to_string();
        }
    }
    lines.push(cur);
    lines.iter().map(|l| fit_text(l, px, max_w)).collect()
}

/// matplotlib's "Blues" (ColorBrewer's 9 blues, interpolated): `t = 0` white, `t = 1` dark blue.
fn blues(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (247, 251, 255),
        (222, 235, 247),
        (198, 219, 239),
        (158, 202, 225),
        (107, 174, 214),
        (66, 146, 198),
        (33, 113, 181),
        (8, 81, 156),
        (8, 48, 107),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black text on light cells, white on dark ones (by perceived luminance).
fn text_color(bg: RGBColor) -> &'static RGBColor {
    let lum = 0.299 * bg.0 as f64 + 0.587 * bg.1 as f64 + 0.114 * bg.2 as f64;
    if lum < 140.0 {
        &WHITE
    } else {
        &BLACK
    }
}

impl ClassificationInterpretation {
    /// Shows the `k` items with the largest losses (fastai v1: `interp.plot_top_losses(9,
    /// figsize=(15,11))`), titled `prediction/actual/loss/probability of actual`, on a
    /// `ceil(sqrt(k))`-square grid. `k` is clamped to the number of items.
    pub fn plot_top_losses(&self, k: usize, figsize: (f32, f32)) -> Result<()> {
        let png = self.plot_top_losses_png(k, figsize)?;
        display(&Rich::png(
            png,
            &format!("the {k} validation images with the largest losses: prediction/actual/loss/probability"),
        ));
        Ok(())
    }

    /// The `plot_top_losses` figure as PNG bytes.
    pub fn plot_top_losses_png(&self, k: usize, figsize: (f32, f32)) -> Result<Vec<u8>> {
        if self.items.is_empty() {
            return Err(Error::Msg(
                "this interpretation has no images to plot: build it with \
                 ClassificationInterpretation::from_learner"
                    .into(),
            ));
        }
        let (_, idx) = self.top_losses(Some(k.max(1)));
        let mut cells = Vec::with_capacity(idx.len());
        for &i in &idx {
            cells.push((self.image(i)?, self.title(i)));
        }
        let side = (cells.len() as f64).sqrt().ceil() as usize;
        Ok(titled_grid(&cells, side, side, figsize))
    }

    /// Shows the confusion matrix (rows: actual class, columns: predicted class) as a Blues heat
    /// map with the count in each cell, or with `normalize` the share of each actual class
    /// (2 decimals; a class without items is a row of zeros).
    pub fn plot_confusion_matrix(&self, normalize: bool, figsize: (f32, f32)) -> Result<()> {
        let png = self.plot_confusion_matrix_png(normalize, figsize)?;
        display(&Rich::png(
            png,
            "confusion matrix: actual class (rows) against predicted class (columns)",
        ));
        Ok(())
    }

    /// The `plot_confusion_matrix` figure as PNG bytes.
    pub fn plot_confusion_matrix_png(
        &self,
        normalize: bool,
        figsize: (f32, f32),
    ) -> Result<Vec<u8>> {
        let cm = self.confusion_matrix();
        let values: Vec<Vec<f64>> = cm
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                row.iter()
                    .map(|&n| match (normalize, total) {
                        (false, _) => n as f64,
                        (true, 0) => 0.0,
                        (true, t) => n as f64 / t as f64,
                    })
                    .collect()
            })
            .collect();
        // Shares have 2 decimals; when the cells are too small for "0.84" to be legible
        // (many classes) they drop the leading zero (".84"), and 0 and 1 are written "0", "1".
        let mut canvas = Canvas::from_figsize(figsize);
        let cell = layout(&self.classes, canvas.w as f64, canvas.h as f64).cell;
        let compact = normalize && cell < 26.0;
        let labels: Vec<String> = values
            .iter()
            .flatten()
            .map(|&v| match (normalize, compact) {
                (false, _) => format!("{v}"),
                (true, false) => format!("{v:.2}"),
                (true, true) if v == 0.0 => "0".into(),
                (true, true) if v == 1.0 => "1".into(),
                (true, true) => format!("{v:.2}").trim_start_matches('0').to_string(),
            })
            .collect();
        draw_matrix(&mut canvas, &self.classes, &values, &labels)?;
        Ok(canvas.to_png())
    }
}

struct Layout {
    margin: f64,
    title_px: f64,
    axis_px: f64,
    /// Where the matrix starts (below the title).
    top: f64,
    gap: f64,
    /// Font size of the class names.
    label_px: f64,
    /// Side of a cell in pixels.
    cell: f64,
    /// Width of the longest class name.
    name_w: f64,
}

/// Sizes the confusion matrix on a `w x h` canvas.
fn layout(classes: &[String], w: f64, h: f64) -> Layout {
    let c = classes.len().max(1);
    let margin = 10.0;
    let title_px = (w.min(h) * 0.03).clamp(14.0, 22.0);
    let axis_px = title_px * 0.8;
    let top = margin + title_px * 1.8;
    let gap = 6.0;
    // Class-name font and cell size depend on each other: the names take room from the cells,
    // and the names may be no taller than a cell. Three rounds settle it.
    let mut label_px = 14.0;
    let (mut cell, mut name_w) = (0.0, 0.0);
    for _ in 0..3 {
        name_w = classes
            .iter()
            .map(|s| text_width(s, label_px))
            .max()
            .unwrap_or(0) as f64
            // glyphs overhang the measured box a little; rotated names more so
            * 1.04
            + 4.0;
        let room_w = w - 2.0 * margin - axis_px * 1.6 - name_w - gap;
        let room_h = h - top - margin - axis_px * 1.6 - name_w - gap;
        cell = (room_w.min(room_h) / c as f64).max(1.0);
        label_px = (cell * 0.8).clamp(6.0, 14.0);
    }
    Layout {
        margin,
        title_px,
        axis_px,
        top,
        gap,
        label_px,
        cell,
        name_w,
    }
}

/// Draws the heat map `values` (c x c) with the cell texts `labels` (row-major) and the class
/// names on both axes, laid out to fill the canvas.
fn draw_matrix(
    canvas: &mut Canvas,
    classes: &[String],
    values: &[Vec<f64>],
    labels: &[String],
) -> Result<()> {
    let c = classes.len();
    let (w, h) = (canvas.w as f64, canvas.h as f64);
    let Layout {
        margin,
        title_px,
        axis_px,
        top,
        gap,
        label_px,
        cell,
        name_w,
    } = layout(classes, w, h);
    let grid = cell * c as f64;
    let left_block = axis_px * 1.6 + name_w + gap;
    let x0 = ((w - left_block - grid) / 2.0).max(margin) + left_block;
    let y0 = top;
    let edge = |o: f64, k: usize| (o + k as f64 * cell).round() as i32;

    let max = values.iter().flatten().cloned().fold(0.0, f64::max);
    let longest = labels.iter().map(|s| s.len()).max().unwrap_or(1).max(1) as f64;
    // Hack's advance is 0.6 em: the cell text fills at most 85% of the cell's width.
    let num_px = (cell * 0.85 / (0.6 * longest)).min(cell * 0.5).min(16.0);

    let root = canvas.area();
    root.fill(&WHITE).map_err(chart_err)?;
    for (i, row) in values.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let bg = blues(if max > 0.0 { v / max } else { 0.0 });
            let (xa, xb, ya, yb) = (edge(x0, j), edge(x0, j + 1), edge(y0, i), edge(y0, i + 1));
            root.draw(&Rectangle::new([(xa, ya), (xb, yb)], bg.filled()))
                .map_err(chart_err)?;
            if num_px >= 6.0 {
                let s = style(num_px, text_color(bg), HPos::Center, VPos::Center);
                root.draw_text(&labels[i * c + j], &s, ((xa + xb) / 2, (ya + yb) / 2))
                    .map_err(chart_err)?;
            }
        }
    }
    let (xe, ye) = (edge(x0, c), edge(y0, c));
    root.draw(&Rectangle::new(
        [(edge(x0, 0), edge(y0, 0)), (xe, ye)],
        BLACK,
    ))
    .map_err(chart_err)?;

    let name_x =
        style(label_px, &BLACK, HPos::Right, VPos::Center).transform(FontTransform::Rotate270);
    let name_y = style(label_px, &BLACK, HPos::Right, VPos::Center);
    for (k, name) in classes.iter().enumerate() {
        let mid = |o: f64| (o + (k as f64 + 0.5) * cell).round() as i32;
        root.draw_text(name, &name_y, ((x0 - gap) as i32, mid(y0)))
            .map_err(chart_err)?;
        root.draw_text(name, &name_x, (mid(x0), ye + gap as i32))
            .map_err(chart_err)?;
    }

    let title = style(title_px, &BLACK, HPos::Center, VPos::Top);
    root.draw_text(
        "Confusion matrix",
        &title,
        (((x0 + grid / 2.0) as i32), margin as i32),
    )
    .map_err(chart_err)?;
    let axis = style(axis_px, &BLACK, HPos::Center, VPos::Top);
    let below = ye as f64 + gap + name_w + gap * 0.5;
    root.draw_text("Predicted", &axis, ((x0 + grid / 2.0) as i32, below as i32))
        .map_err(chart_err)?;
    let axis_y =
        style(axis_px, &BLACK, HPos::Center, VPos::Top).transform(FontTransform::Rotate270);
    let beside = x0 - gap - name_w - gap * 0.5 - axis_px * 1.2;
    root.draw_text("Actual", &axis_y, (beside as i32, (y0 + grid / 2.0) as i32))
        .map_err(chart_err)?;
    root.present().map_err(chart_err)?;
    Ok(())
}

/// A `rows x cols` grid of images, each under its title, wrapped onto as many lines as it needs
/// (after '/' separators) so long class names stay readable.
pub(super) fn titled_grid(
    cells: &[(RgbImage, String)],
    rows: usize,
    cols: usize,
    figsize: (f32, f32),
) -> Vec<u8> {
    let mut canvas = Canvas::from_figsize(figsize);
    let (cw, ch) = (canvas.w / cols.max(1) as u32, canvas.h / rows.max(1) as u32);
    let pad = 6u32;
    let px = (cw as f64 * 0.042).clamp(10.0, 18.0);
    let line_h = (px * 1.2).ceil() as u32;
    let titles: Vec<Vec<String>> = cells
        .iter()
        .map(|(_, t)| wrap_title(t, px, cw.saturating_sub(2 * pad)))
        .collect();
    let n_lines = titles.iter().map(|t| t.len()).max().unwrap_or(1) as u32;
    // margin above the title, the title, a gap, the image, a wider gap before the next row
    let title_h = pad + n_lines * line_h + pad / 2;
    let mut texts: Vec<(String, f32, f32)> = Vec::new();
    {
        let root = canvas.area();
        for (k, ((img, _), lines)) in cells.iter().zip(&titles).enumerate() {
            let (cx, cy) = ((k % cols) as u32 * cw, (k / cols) as u32 * ch);
            let (aw, ah) = (
                cw.saturating_sub(2 * pad),
                ch.saturating_sub(title_h + 2 * pad),
            );
            if aw >= 2 && ah >= 2 {
                let scale = (aw as f64 / img.width() as f64).min(ah as f64 / img.height() as f64);
                let (iw, ih) = (
                    ((img.width() as f64 * scale) as u32).max(1),
                    ((img.height() as f64 * scale) as u32).max(1),
                );
                let resized = image::imageops::resize(img, iw, ih, FilterType::Triangle);
                let at = (
                    (cx + (cw - iw) / 2) as i32,
                    (cy + title_h + (ah - ih) / 2) as i32,
                );
                if let Some(elem) =
                    BitMapElement::<_>::with_owned_buffer(at, (iw, ih), resized.into_raw())
                {
                    let _ = root.draw(&elem);
                }
            }
            // lines sit at the bottom of the title band, just above the image
            let first = cy + pad + (n_lines - lines.len() as u32) * line_h;
            for (l, line) in lines.iter().enumerate() {
                let y = first + l as u32 * line_h;
                texts.push((line.clone(), (cx + cw / 2) as f32, y as f32));
            }
        }
        let _ = root.present();
    }
    // drawn with the glyphs' own spacing (plotters' text put a gap after every '.')
    for (line, x, y) in texts {
        canvas.text(
            &line,
            (x, y),
            px as f32,
            (Align::Center, Align::Start),
            BLACK,
        );
    }
    canvas.to_png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blues_runs_from_white_to_dark_blue() {
        assert_eq!(blues(0.0), RGBColor(247, 251, 255));
        assert_eq!(blues(1.0), RGBColor(8, 48, 107));
        assert_eq!(text_color(blues(0.0)), &BLACK);
        assert_eq!(text_color(blues(1.0)), &WHITE);
    }

    #[test]
    fn long_titles_wrap_after_slashes() {
        crate::display::figure::register_fonts();
        let t = "staffordshire_bull_terrier/american_pit_bull_terrier/3.21/0.04";
        let lines = wrap_title(t, 16.0, 390);
        assert_eq!(lines.concat(), t, "{lines:?}");
        assert!(lines.len() >= 2);
        assert_eq!(
            wrap_title("pug/beagle/4.21/0.02", 16.0, 390),
            ["pug/beagle/4.21/0.02"]
        );
    }
}
