//! Drawing figures into PNGs with plotters: fonts, the canvas, and an image grid with titles.
//!
//! Fonts are embedded (Ubuntu Light as "sans-serif", Hack as "monospace", from the
//! `epaint_default_fonts` crate), so figures look the same on every machine and need no system
//! font packages.

use std::io::Cursor;
use std::sync::Once;

use image::{imageops::FilterType, RgbImage};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// The font of titles and labels: Hack's fixed advances render evenly with plotters' glyph
/// placement (Ubuntu Light's proportional spacing came out uneven).
pub const TITLE_FONT: &str = "monospace";

/// Pixels per inch of figure sizes given in inches (fastai's `figsize`).
pub const DPI: f32 = 100.0;

static FONTS: Once = Once::new();

/// Makes the embedded fonts available to plotters (idempotent).
pub fn register_fonts() {
    FONTS.call_once(|| {
        let sans = epaint_default_fonts::UBUNTU_LIGHT;
        let mono = epaint_default_fonts::HACK_REGULAR;
        for style in [
            FontStyle::Normal,
            FontStyle::Bold,
            FontStyle::Italic,
            FontStyle::Oblique,
        ] {
            // Valid TTFs compiled into the binary: registration cannot fail.
            let _ = plotters::style::register_font("sans-serif", style, sans);
            let _ = plotters::style::register_font("monospace", style, mono);
        }
    });
}

/// An RGB canvas of `w x h` pixels that plotters draws on.
pub struct Canvas {
    pub w: u32,
    pub h: u32,
    pub buf: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(w: u32, h: u32) -> Canvas {
        register_fonts();
        Canvas {
            w,
            h,
            buf: vec![255; (w * h * 3) as usize],
        }
    }

    /// A canvas sized from a figure size in inches.
    pub fn from_figsize(figsize: (f32, f32)) -> Canvas {
        let w = (figsize.0 * DPI).round().clamp(50.0, 8000.0) as u32;
        let h = (figsize.1 * DPI).round().clamp(50.0, 8000.0) as u32;
        Canvas::new(w, h)
    }

    /// A plotters drawing area on this canvas.
    pub fn area(&mut self) -> DrawingArea<BitMapBackend<'_>, plotters::coord::Shift> {
        BitMapBackend::with_buffer(&mut self.buf, (self.w, self.h)).into_drawing_area()
    }

    /// PNG-encodes the canvas.
    pub fn to_png(&self) -> Vec<u8> {
        let img = RgbImage::from_raw(self.w, self.h, self.buf.clone()).expect("canvas buffer size");
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("PNG encoding to memory");
        out.into_inner()
    }
}

/// A title that fits `max_w` pixels at `size` px: shortened with "..." when needed.
pub fn fit_text(text: &str, size: f64, max_w: u32) -> String {
    let width = |s: &str| super::paint::text_width(s, size as f32).ceil() as u32;
    if width(text) <= max_w {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let s: String = chars[..keep].iter().collect::<String>() + "...";
        if width(&s) <= max_w {
            return s;
        }
    }
    "...".into()
}

/// A grid of images, `rows x cols`, each with a title above it, on a `figsize` (inches) figure.
/// Images keep their aspect ratio. Returns the PNG bytes.
pub fn image_grid(
    images: &[(RgbImage, String)],
    rows: usize,
    cols: usize,
    figsize: (f32, f32),
) -> Vec<u8> {
    let mut canvas = Canvas::from_figsize(figsize);
    let mut titles: Vec<(String, f32, f32, f32)> = Vec::new();
    {
        let root = canvas.area();
        let cells = root.split_evenly((rows.max(1), cols.max(1)));
        for (cell, (img, title)) in cells.iter().zip(images) {
            let (cw, ch) = cell.dim_in_pixel();
            let font_px = ((ch as f64) * 0.085).clamp(11.0, 22.0);
            let title_h = (font_px * 1.5) as u32;
            let pad = 4u32;
            let (aw, ah) = (cw.saturating_sub(2 * pad), ch.saturating_sub(title_h + pad));
            if aw < 2 || ah < 2 {
                continue;
            }
            let scale = (aw as f64 / img.width() as f64).min(ah as f64 / img.height() as f64);
            let (iw, ih) = (
                ((img.width() as f64) * scale).max(1.0) as u32,
                ((img.height() as f64) * scale).max(1.0) as u32,
            );
            let resized = image::imageops::resize(img, iw, ih, FilterType::Triangle);
            let x = ((cw - iw) / 2) as i32;
            let y = (title_h + (ah - ih) / 2) as i32;
            if let Some(elem) =
                BitMapElement::<_>::with_owned_buffer((x, y), (iw, ih), resized.into_raw())
            {
                let _ = cell.draw(&elem);
            }
            let text = fit_text(title, font_px, cw.saturating_sub(2 * pad));
            let (ox, oy) = cell.get_base_pixel();
            titles.push((
                text,
                (ox + (cw / 2) as i32) as f32,
                (oy as f64 + font_px * 0.25) as f32,
                font_px as f32,
            ));
        }
        let _ = root.present();
    }
    // titles with the glyphs' own spacing (plotters' text drops each glyph's side bearing:
    // "5.74" read "5. 74")
    for (text, x, y, px) in titles {
        canvas.text(
            &text,
            (x, y),
            px,
            (super::paint::Align::Center, super::paint::Align::Start),
            BLACK,
        );
    }
    canvas.to_png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_a_png_of_the_figure_size() {
        let img = RgbImage::from_pixel(30, 20, image::Rgb([200, 30, 30]));
        let images: Vec<_> = (0..4)
            .map(|i| (img.clone(), format!("class {i}")))
            .collect();
        let png = image_grid(&images, 2, 2, (4.0, 3.0));
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (400, 300));
        // some pixels are the image's red, some the white background, some the black text
        let px: Vec<[u8; 3]> = decoded.pixels().map(|p| p.0).collect();
        assert!(px.contains(&[200, 30, 30]) && px.contains(&[255, 255, 255]));
        assert!(
            px.iter().any(|p| p[0] < 80 && p[1] < 80 && p[2] < 80),
            "titles drawn"
        );
    }

    #[test]
    fn long_titles_are_shortened() {
        register_fonts();
        let t = fit_text(
            "staffordshire_bull_terrier/american_pit_bull_terrier",
            14.0,
            120,
        );
        assert!(t.ends_with("...") && t.len() < 40, "{t}");
        assert_eq!(fit_text("pug", 14.0, 120), "pug");
    }
}
