//! The recorder's charts: `plot()` (lr_find's loss against the learning rate, log scale, with the
//! suggestion marked), `plot_losses()` and `plot_lr()`. Each is shown inline in a notebook (or
//! saved as a PNG in a plain program) and has a `_png` twin that returns the bytes.

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use super::lr_find::suggest;
use super::recorder::Recorder;
use crate::display::figure::{Canvas, TITLE_FONT};
use crate::display::{display, Rich};
use crate::error::{Error, Result};

fn chart_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Msg(format!("drawing the chart failed: {e:?}"))
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    (lo <= hi).then(|| {
        if lo == hi {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        }
    })
}

impl Recorder {
    /// Plots the last `lr_find` (skipping the first 10 and last 5 points, as fastai), marks the
    /// suggestions (red: steepest descent, green: valley) and returns the valley suggestion.
    pub fn plot(&self) -> Result<f64> {
        let (png, steep) = self.plot_png()?;
        let valley = super::lr_find::valley(&self.lr_find).unwrap_or(f64::NAN);
        display(&Rich::png(png, &format!("lr_find: loss against learning rate; suggestions {steep:.2e} (steepest), {valley:.2e} (valley)")));
        println!("Min numerical gradient: {steep:.2E}");
        println!("Valley: {valley:.2E}");
        Ok(valley)
    }

    /// The `plot()` figure as PNG bytes, and the suggestion.
    pub fn plot_png(&self) -> Result<(Vec<u8>, f64)> {
        let pts = &self.lr_find;
        if pts.len() < 3 {
            return Err(Error::Msg(
                "no lr_find results to plot: run learn.lr_find() first".into(),
            ));
        }
        let shown: Vec<(f64, f64)> = if pts.len() > 17 {
            pts[10..pts.len() - 5].to_vec()
        } else {
            pts.clone()
        };
        let (steep, _) =
            suggest(pts).ok_or_else(|| Error::Msg("lr_find recorded too few points".into()))?;
        let (x0, x1) = (shown.first().unwrap().0, shown.last().unwrap().0);
        let (y0, y1) = finite_range(shown.iter().map(|p| p.1)).unwrap_or((0.0, 1.0));
        let mut canvas = Canvas::new(640, 440);
        {
            let root = canvas.area();
            root.fill(&WHITE).map_err(chart_err)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .caption("Learning rate finder", (TITLE_FONT, 20))
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(chart_err)?;
            chart
                .configure_mesh()
                .x_desc("Learning Rate")
                .y_desc("Loss")
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .label_style((TITLE_FONT, 13))
                .axis_desc_style((TITLE_FONT, 15))
                .draw()
                .map_err(chart_err)?;
            chart
                .draw_series(LineSeries::new(shown.iter().copied(), BLUE.stroke_width(2)))
                .map_err(chart_err)?;
            let valley = super::lr_find::valley(pts).unwrap_or(f64::NAN);
            for (lr, colour) in [(steep, RED), (valley, RGBColor(44, 160, 44))] {
                if let Some(p) = shown
                    .iter()
                    .min_by(|a, b| (a.0 - lr).abs().total_cmp(&(b.0 - lr).abs()))
                {
                    chart
                        .draw_series(std::iter::once(Circle::new(*p, 6, colour.filled())))
                        .map_err(chart_err)?;
                }
            }
            root.present().map_err(chart_err)?;
        }
        Ok((canvas.to_png(), steep))
    }

    /// Training loss (smoothed, per batch) and validation loss (per epoch) against iterations.
    pub fn plot_losses(&self) -> Result<()> {
        display(&Rich::png(
            self.plot_losses_png()?,
            "training and validation loss",
        ));
        Ok(())
    }

    pub fn plot_losses_png(&self) -> Result<Vec<u8>> {
        if self.smooth_losses.is_empty() {
            return Err(Error::Msg("nothing recorded yet: train first".into()));
        }
        let train: Vec<(f64, f64)> = self
            .smooth_losses
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as f64 + 1.0, l))
            .collect();
        let valid: Vec<(f64, f64)> = self
            .epoch_iters
            .iter()
            .zip(&self.valid_losses)
            .filter(|(_, v)| v.is_finite())
            .map(|(&i, &v)| (i as f64, v))
            .collect();
        let (y0, y1) = finite_range(train.iter().chain(&valid).map(|p| p.1)).unwrap_or((0.0, 1.0));
        let mut canvas = Canvas::new(640, 440);
        {
            let root = canvas.area();
            root.fill(&WHITE).map_err(chart_err)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..train.len() as f64 + 1.0, y0..y1)
                .map_err(chart_err)?;
            chart
                .configure_mesh()
                .x_desc("Batches processed")
                .y_desc("Loss")
                .label_style((TITLE_FONT, 13))
                .axis_desc_style((TITLE_FONT, 15))
                .draw()
                .map_err(chart_err)?;
            chart
                .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
                .map_err(chart_err)?
                .label("Train")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            chart
                .draw_series(LineSeries::new(
                    valid.clone(),
                    RGBColor(255, 127, 14).stroke_width(2),
                ))
                .map_err(chart_err)?
                .label("Validation")
                .legend(|(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 20, y)],
                        RGBColor(255, 127, 14).stroke_width(2),
                    )
                });
            chart
                .draw_series(
                    valid
                        .iter()
                        .map(|p| Circle::new(*p, 4, RGBColor(255, 127, 14).filled())),
                )
                .map_err(chart_err)?;
            chart
                .configure_series_labels()
                .label_font((TITLE_FONT, 14))
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(chart_err)?;
            root.present().map_err(chart_err)?;
        }
        Ok(canvas.to_png())
    }

    /// The learning rate (of the head) and the momentum against iterations.
    pub fn plot_lr(&self) -> Result<()> {
        display(&Rich::png(
            self.plot_lr_png()?,
            "learning rate and momentum schedule",
        ));
        Ok(())
    }

    pub fn plot_lr_png(&self) -> Result<Vec<u8>> {
        if self.lrs.is_empty() {
            return Err(Error::Msg("nothing recorded yet: train first".into()));
        }
        let n = self.lrs.len() as f64;
        let mut canvas = Canvas::new(900, 380);
        {
            let root = canvas.area();
            root.fill(&WHITE).map_err(chart_err)?;
            let (left, right) = root.split_horizontally(450);
            for (area, values, name) in [
                (left, &self.lrs, "Learning rate"),
                (right, &self.moms, "Momentum"),
            ] {
                let (y0, y1) = finite_range(values.iter().copied()).unwrap_or((0.0, 1.0));
                let mut chart = ChartBuilder::on(&area)
                    .margin(14)
                    .x_label_area_size(40)
                    .y_label_area_size(70)
                    .build_cartesian_2d(0.0..n, y0..y1)
                    .map_err(chart_err)?;
                chart
                    .configure_mesh()
                    .x_desc("Iterations")
                    .y_desc(name)
                    .y_label_formatter(&|v| format!("{v:.1e}"))
                    .label_style((TITLE_FONT, 12))
                    .axis_desc_style((TITLE_FONT, 14))
                    .draw()
                    .map_err(chart_err)?;
                chart
                    .draw_series(LineSeries::new(
                        values.iter().enumerate().map(|(i, &v)| (i as f64, v)),
                        BLUE.stroke_width(2),
                    ))
                    .map_err(chart_err)?;
            }
            root.present().map_err(chart_err)?;
        }
        Ok(canvas.to_png())
    }
}
