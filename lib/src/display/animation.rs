//! Animated charts, as matplotlib's `FuncAnimation` in fast.ai's lesson 2 (the fitted line
//! moving as SGD fits it): [`animate`] calls your function once per frame and shows the charts
//! it returns.
//!
//! ```no_run
//! use fastai::vision::*;
//! let x = Tensor::linspace(-1.0, 1.0, 100, (Kind::Float, Device::Cpu));
//! let y = &x * 3.0 + 2.0 + Tensor::randn([100], (Kind::Float, Device::Cpu)) * 0.3;
//! let (mut a, mut b) = (-1.0f64, 1.0f64);
//! animate(100, 20.0, |_| {
//!     // one SGD step on the mean squared error, then the chart of where the line is now
//!     let err = &x * a + b - &y;
//!     a -= 0.1 * 2.0 * f64::try_from((&err * &x).mean(Kind::Float)).unwrap();
//!     b -= 0.1 * 2.0 * f64::try_from(err.mean(Kind::Float)).unwrap();
//!     Plot::new().scatter(&x, &y).line(&x, &(&x * a + b)).color("C1")
//! })?;
//! # Ok::<(), fastai::Error>(())
//! ```
//!
//! How it shows:
//! - **fastai kernel**: live. The first frame appears at once and each next one replaces it in
//!   place (one display, [`DisplayHandle::update`]), at most `fps` frames a second. When the
//!   last frame is done the display becomes the whole animation as a looping GIF, so it can be
//!   watched again and is saved with the notebook (matplotlib shows `FuncAnimation` the same way:
//!   as HTML that needs no kernel to play).
//! - **stock evcxr kernel**: the GIF, when the frames are done (it cannot update a display).
//! - **plain program**: the GIF saved in `FASTAI_PLOTS_DIR` (default `fastai-plots/`), its path
//!   printed, as other figures there.
//!
//! Every frame keeps the first frame's axes unless it sets its own (`.xlim`/`.ylim`): a line
//! that moves should not make the axes jump. The notebook's stop button ends an animation early;
//! the frames so far are shown.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame};

use super::plot::Plot;
use super::{display, frontend, DisplayHandle, Frontend, Rich};
use crate::error::{Error, Result};

/// The frames of an animated chart (PNG each) and their rate.
#[derive(Clone)]
pub struct Animation {
    frames: Vec<Vec<u8>>,
    fps: f64,
}

/// Calls `frame(i)` for `i` in `0..frames` and shows the charts it returns as an animation at
/// `fps` frames per second (see the [module's documentation](self) for how it shows where).
///
/// Fails (having shown the frames so far) when a frame's chart cannot be drawn, and at once when
/// `frames` is 0 or `fps` is not a positive number.
pub fn animate(frames: usize, fps: f64, frame: impl FnMut(usize) -> Plot) -> Result<Animation> {
    let mut handle: Option<DisplayHandle> = None;
    let live = frontend() == Frontend::FastaiKernel;
    let interval = Duration::from_secs_f64(1.0 / fps.clamp(1e-3, 1e3));
    let mut due = Instant::now();
    let anim = Animation::record_with(frames, fps, frame, |i, png| {
        if !live {
            return;
        }
        // Pace the live frames: no faster than `fps`, so the motion reads as it will in the GIF.
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        }
        due = due.max(now) + interval;
        let r = Rich::png(
            png.to_vec(),
            &format!("animation: frame {} of {frames}", i + 1),
        );
        match &handle {
            Some(h) => h.update(&r),
            None => handle = Some(DisplayHandle::new(&r)),
        }
    })?;
    match handle {
        Some(h) => h.update(&anim.to_rich()?),
        None => anim.show()?,
    }
    Ok(anim)
}

impl Animation {
    /// Draws the frames without showing anything (for saving, or tests).
    pub fn record(frames: usize, fps: f64, frame: impl FnMut(usize) -> Plot) -> Result<Animation> {
        Animation::record_with(frames, fps, frame, |_, _| {})
    }

    /// Draws frame after frame, handing each to `shown` as it is done; stops early at the
    /// notebook's stop button.
    fn record_with(
        frames: usize,
        fps: f64,
        mut frame: impl FnMut(usize) -> Plot,
        mut shown: impl FnMut(usize, &[u8]),
    ) -> Result<Animation> {
        if frames == 0 {
            return Err(Error::Msg(
                "an animation needs at least one frame (frames = 0)".into(),
            ));
        }
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::Msg(format!(
                "fps = {fps}: the frame rate must be a positive number of frames per second \
                 (matplotlib's interval=20 ms is fps = 50)"
            )));
        }
        let mut pngs = Vec::with_capacity(frames);
        let mut first_limits = None;
        for i in 0..frames {
            let mut chart = frame(i);
            let at_frame = |e: Error| Error::Msg(format!("animation frame {i} of {frames}: {e}"));
            match &first_limits {
                None => first_limits = Some(chart.limits().map_err(at_frame)?),
                Some(lim) => chart.keep_limits(lim),
            }
            let png = chart.png().map_err(at_frame)?;
            shown(i, &png);
            pngs.push(png);
            if crate::learner::interrupt::interrupted() {
                break;
            }
        }
        Ok(Animation { frames: pngs, fps })
    }

    /// How many frames were drawn (fewer than asked when stopped early).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no frames (never, for an animation that was made).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frame rate it was made with.
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// Frame `i` as PNG bytes.
    pub fn frame_png(&self, i: usize) -> Option<&[u8]> {
        self.frames.get(i).map(|f| f.as_slice())
    }

    /// The animation as a looping GIF. GIF counts time in hundredths of a second and browsers
    /// slow down anything faster than 50 frames a second, so faster rates play at 50.
    pub fn to_gif(&self) -> Result<Vec<u8>> {
        let gif_err = |e: image::ImageError| Error::Msg(format!("encoding the GIF failed: {e}"));
        let hundredths = (100.0 / self.fps).round().clamp(2.0, 65535.0) as u32;
        let mut out = Vec::new();
        {
            // With at most 256 colours in a frame the encoder uses them as they are; the speed
            // only matters if it ever has to quantize.
            let mut enc = GifEncoder::new_with_speed(&mut out, 10);
            enc.set_repeat(Repeat::Infinite).map_err(gif_err)?;
            for png in &self.frames {
                let mut img = image::load_from_memory(png).map_err(gif_err)?.to_rgba8();
                limit_colours(&mut img);
                let delay = Delay::from_numer_denom_ms(hundredths * 10, 1);
                enc.encode_frame(Frame::from_parts(img, 0, 0, delay))
                    .map_err(gif_err)?;
            }
        }
        Ok(out)
    }

    /// Writes the GIF to `path`.
    pub fn save_gif(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_gif()?).map_err(|e| {
            Error::Msg(format!(
                "could not write the GIF to {}: {e}",
                path.display()
            ))
        })
    }

    /// The GIF as HTML (`<img src="data:image/gif;base64,...">`), as a notebook shows it.
    pub fn to_rich(&self) -> Result<Rich> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.to_gif()?);
        let text = format!("animation: {} frames at {} fps", self.len(), self.fps);
        Ok(Rich::html(
            format!("<img src=\"data:image/gif;base64,{b64}\" alt=\"{text}\"/>"),
            text,
        ))
    }

    /// Shows the animation (again): the GIF in a notebook; in a plain program the GIF is saved
    /// in `FASTAI_PLOTS_DIR` and its path printed.
    pub fn show(&self) -> Result<()> {
        if frontend() != Frontend::Terminal {
            display(&self.to_rich()?);
            return Ok(());
        }
        let dir = super::plots_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Msg(format!("could not create {}: {e}", dir.display())))?;
        let path = dir.join(format!(
            "animation-{}-{:08x}.gif",
            std::process::id(),
            rand::random::<u32>()
        ));
        self.save_gif(&path)?;
        println!(
            "[animation: {} frames] saved to {}",
            self.len(),
            path.display()
        );
        Ok(())
    }
}

/// Leaves at most 256 colours in `img` (a GIF frame's palette): the most frequent ones stay as
/// they are - a chart's background, text and series colours - and the rarer in-between shades
/// of anti-aliased edges become the nearest of them. (The GIF encoder's own quantizer would
/// shift every colour slightly, the blue of a line included.)
fn limit_colours(img: &mut image::RgbaImage) {
    let mut counts: HashMap<[u8; 4], u32> = HashMap::new();
    for p in img.pixels() {
        *counts.entry(p.0).or_default() += 1;
    }
    if counts.len() <= 256 {
        return;
    }
    let mut by_count: Vec<([u8; 4], u32)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (kept, rest) = by_count.split_at(256);
    let dist = |a: &[u8; 4], b: &[u8; 4]| -> i32 {
        (0..3).map(|k| (a[k] as i32 - b[k] as i32).pow(2)).sum()
    };
    let nearest: HashMap<[u8; 4], [u8; 4]> = rest
        .iter()
        .map(|(c, _)| {
            (
                *c,
                kept.iter()
                    .min_by_key(|k| dist(c, &k.0))
                    .map(|k| k.0)
                    .unwrap_or(*c),
            )
        })
        .collect();
    for p in img.pixels_mut() {
        if let Some(n) = nearest.get(&p.0) {
            p.0 = *n;
        }
    }
}

impl std::fmt::Debug for Animation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Animation({} frames at {} fps)", self.len(), self.fps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_at(k: f64) -> Plot {
        Plot::new()
            .scatter([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
            .line([0.0, 2.0], [0.0, 2.0 * k])
    }

    #[test]
    fn frames_are_drawn_in_order_on_the_first_frames_axes() {
        let mut seen = Vec::new();
        let anim = Animation::record_with(
            5,
            10.0,
            |i| line_at(i as f64),
            |i, png| seen.push((i, png.len())),
        )
        .unwrap();
        assert_eq!(anim.len(), 5);
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        // frame 4's line reaches y = 8, far above the first frame's axes (y up to 2.1), yet the
        // axes stay put (the line is clipped, as on matplotlib's fixed axes)
        let last = image::load_from_memory(anim.frame_png(4).unwrap())
            .unwrap()
            .to_rgb8();
        let first = image::load_from_memory(anim.frame_png(0).unwrap())
            .unwrap()
            .to_rgb8();
        assert_eq!(last.dimensions(), (640, 480));
        // the axes frame and tick labels are where they were: the left spine column matches
        let spine =
            |img: &image::RgbImage| (0..640).find(|&x| img.get_pixel(x, 240).0 == [0, 0, 0]);
        assert_eq!(spine(&first), spine(&last));
    }

    #[test]
    fn the_gif_has_every_frame_at_the_frame_rate() {
        use image::AnimationDecoder;
        let anim = Animation::record(4, 20.0, |i| line_at(i as f64 * 0.3)).unwrap();
        let gif = anim.to_gif().unwrap();
        let dec = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&gif)).unwrap();
        let frames = dec.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].delay().numer_denom_ms(), (50, 1));
        assert_eq!(frames[3].buffer().dimensions(), (640, 480));
        // the GIF's colours are the PNG's (exact palette): compare a pixel of the line
        let png = image::load_from_memory(anim.frame_png(3).unwrap())
            .unwrap()
            .to_rgba8();
        let blue = png
            .enumerate_pixels()
            .find(|p| p.2 .0 == [31, 119, 180, 255])
            .unwrap();
        assert_eq!(
            frames[3].buffer().get_pixel(blue.0, blue.1).0,
            [31, 119, 180, 255]
        );
        let html = anim.to_rich().unwrap();
        assert!(html
            .get("text/html")
            .unwrap()
            .starts_with("<img src=\"data:image/gif;base64,R0lGOD"));
    }

    #[test]
    fn bad_frames_and_rates_say_what_is_wrong() {
        let e = Animation::record(0, 10.0, |_| line_at(1.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one frame"), "{e}");
        let e = Animation::record(3, 0.0, |_| line_at(1.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("fps = 0"), "{e}");
        let e = Animation::record(3, 10.0, |i| if i == 2 { Plot::new() } else { line_at(1.0) })
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("animation frame 2 of 3: cannot draw the plot: it has no data"),
            "{e}"
        );
    }
}
