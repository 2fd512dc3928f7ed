//! The recorder's charts: `plot()` (lr_find's loss against the learning rate, log scale, with the
//! suggestion marked), `plot_losses()` and `plot_lr()`. Each is shown inline in a notebook (or
//! saved as a PNG in a plain program) and has a `_png` twin that returns the bytes. They are
//! [`Plot`]s, drawn as a user's own charts are.

use super::lr_find::{suggestion_range, SuggestionMethod};
use super::recorder::Recorder;
use crate::display::figure::Canvas;
use crate::display::paint::Rect;
use crate::display::plot::Plot;
use crate::display::{display, Rich};
use crate::error::{Error, Result};

impl Recorder {
    /// Plots the last `lr_find` as fastai 2.8 does (all but the last 5 points), marks its default
    /// suggestion - the valley - and returns it.
    pub fn plot(&self) -> Result<f64> {
        let (png, valley) = self.plot_png()?;
        display(&Rich::png(
            png,
            &format!("lr_find: loss against learning rate; suggestion (valley) {valley:.2e}"),
        ));
        println!("Valley: {valley:.2E}");
        Ok(valley)
    }

    /// The `plot()` figure as PNG bytes, and the suggestion (fastai's valley; NaN when the curve
    /// is too short to suggest anything).
    pub fn plot_png(&self) -> Result<(Vec<u8>, f64)> {
        self.plot_png_with(&[SuggestionMethod::Valley])
            .map(|(png, s)| (png, s.first().copied().unwrap_or(f64::NAN)))
    }

    /// The lr_find plot with the points of the given suggestion methods marked (fastai's
    /// `suggest_funcs`), and their suggestions in the same order (NaN where there is none).
    pub fn plot_png_with(&self, methods: &[SuggestionMethod]) -> Result<(Vec<u8>, Vec<f64>)> {
        let pts = &self.lr_find;
        if pts.len() < 3 {
            return Err(Error::Msg(
                "no lr_find results to plot: run learn.lr_find() first".into(),
            ));
        }
        let num_it = if self.lr_find_num_it == 0 {
            100
        } else {
            self.lr_find_num_it
        };
        let curve = suggestion_range(pts, num_it);
        // fastai's plot_lr_find(skip_end=5); the non-finite end of a diverged search left out
        let shown: Vec<(f64, f64)> = pts[..pts.len().saturating_sub(5).max(2)]
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        let (lrs, losses): (Vec<f64>, Vec<f64>) = shown.iter().copied().unzip();
        let mut chart = Plot::new()
            .line(&lrs, &losses)
            .log_x()
            .title("Learning rate finder")
            .xlabel("Learning Rate")
            .ylabel("Loss")
            .figsize((6.4, 4.4));
        let colours = ["tab:orange", "tab:green", "tab:red", "tab:purple"];
        let mut lrs_out = Vec::new();
        for (k, m) in methods.iter().enumerate() {
            let s = m.suggest(curve);
            lrs_out.push(s.map_or(f64::NAN, |s| s.lr));
            if let Some(s) = s.filter(|s| s.mark.0.is_finite() && s.mark.1.is_finite()) {
                chart = chart
                    .scatter([s.mark.0], [s.mark.1])
                    .color(colours[k % colours.len()])
                    .label(m.name());
            }
        }
        Ok((chart.png()?, lrs_out))
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
        self.losses_chart(None, (6.4, 4.4))
    }

    /// The losses chart; with `iters`, the x axis spans that many batches (the whole fit, so
    /// a chart redrawn while training grows into its frame).
    pub(crate) fn losses_chart(
        &self,
        iters: Option<usize>,
        figsize: (f32, f32),
    ) -> Result<Vec<u8>> {
        if self.smooth_losses.is_empty() {
            return Err(Error::Msg("nothing recorded yet: train first".into()));
        }
        let (vx, vy): (Vec<f64>, Vec<f64>) = self
            .epoch_iters
            .iter()
            .zip(&self.valid_losses)
            .filter(|(_, v)| v.is_finite())
            .map(|(&i, &v)| (i as f64, v))
            .unzip();
        // iterations count from 1, as batches processed
        let batches: Vec<f64> = (1..=self.smooth_losses.len()).map(|i| i as f64).collect();
        let mut chart = Plot::new()
            .line(&batches, &self.smooth_losses)
            .label("Train")
            .xlabel("Batches processed")
            .ylabel("Loss")
            .figsize(figsize);
        if let Some(n) = iters {
            chart = chart.xlim(0.0, n.max(self.smooth_losses.len()) as f64);
        }
        if !vx.is_empty() {
            chart = chart
                .line(&vx, &vy)
                .label("Validation")
                .scatter(&vx, &vy)
                .color("C1");
        }
        chart.png()
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
        let mut canvas = Canvas::new(900, 380);
        for (k, (values, name)) in [(&self.lrs, "Learning rate"), (&self.moms, "Momentum")]
            .into_iter()
            .enumerate()
        {
            if values.is_empty() {
                continue; // (no momentum recorded: an empty panel, as before)
            }
            let panel = Rect::new(450.0 * k as f32, 0.0, 450.0 * (k + 1) as f32, 380.0);
            let chart = Plot::new().line_y(values).xlabel("Iterations").ylabel(name);
            chart.draw_on(&mut canvas, panel)?;
        }
        Ok(canvas.to_png())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        let n = 60;
        let lr_find = (0..100)
            .map(|i| {
                let lr = 1e-7 * 10f64.powf(i as f64 * 0.08);
                (
                    lr,
                    2.0 - 0.2 * (lr.log10() + 7.0) + if lr > 0.1 { 10.0 * lr } else { 0.0 },
                )
            })
            .collect();
        Recorder {
            lrs: (0..n)
                .map(|i| 1e-3 * (1.0 + (i as f64 / 10.0).sin()))
                .collect(),
            moms: (0..n)
                .map(|i| 0.95 - 0.1 * (i as f64 / 10.0).sin().abs())
                .collect(),
            smooth_losses: (0..n).map(|i| 2.0 / (1.0 + i as f64 / 10.0)).collect(),
            epoch_iters: vec![30, 60],
            valid_losses: vec![0.9, 0.6],
            lr_find,
            ..Default::default()
        }
    }

    fn size(png: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(png).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn the_recorders_charts_draw_at_their_sizes() {
        let r = recorder();
        let (png, steep) = r.plot_png().unwrap();
        assert_eq!(size(&png), (640, 440));
        assert!(steep > 1e-7 && steep < 1.0, "{steep}");
        assert_eq!(size(&r.plot_losses_png().unwrap()), (640, 440));
        assert_eq!(size(&r.plot_lr_png().unwrap()), (900, 380));
        if let Some(dir) = std::env::var_os("FASTAI_PLOT_TESTS_DIR") {
            let dir = std::path::Path::new(&dir);
            std::fs::write(dir.join("recorder_lr_find.png"), png).unwrap();
            std::fs::write(
                dir.join("recorder_losses.png"),
                r.plot_losses_png().unwrap(),
            )
            .unwrap();
            std::fs::write(dir.join("recorder_lr.png"), r.plot_lr_png().unwrap()).unwrap();
        }
    }

    #[test]
    fn nothing_recorded_says_what_to_do() {
        let r = Recorder::default();
        assert!(r
            .plot_png()
            .unwrap_err()
            .to_string()
            .contains("run learn.lr_find() first"));
        assert!(r
            .plot_losses_png()
            .unwrap_err()
            .to_string()
            .contains("train first"));
    }
}
