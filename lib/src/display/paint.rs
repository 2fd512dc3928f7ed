//! Anti-aliased drawing on a [`Canvas`]: lines, dots, rectangles and text.
//!
//! Charts of a user's data are mostly lines, dots and small text, and plotters' bitmap backend
//! draws those poorly: a thick line comes out thinner where it is steep, nothing is
//! anti-aliased, and its text drops each glyph's left side bearing (so "3.0" reads "3. 0").
//! Here every pixel is blended by how much of it the shape covers, and text is laid out with
//! ab_glyph the way the font intends.
//!
//! Coordinates are pixels with (0, 0) the top-left corner of the canvas; pixel `(x, y)` covers
//! `x..x+1` by `y..y+1`, so its centre is `(x + 0.5, y + 0.5)`.

use ab_glyph::{point, Font, FontRef, Glyph, PxScale, ScaleFont};
use plotters::style::RGBColor;

use super::figure::Canvas;

/// The charts' font: Hack (embedded, as in [`super::figure`]), a clear face at small sizes.
fn font() -> FontRef<'static> {
    FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR)
        .expect("the embedded font is a valid TrueType font")
}

/// A rectangle in pixels, `x0..x1` by `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Rect {
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Rect {
        Rect { x0, y0, x1, y1 }
    }
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }
    fn intersect(&self, o: &Rect) -> Rect {
        Rect::new(
            self.x0.max(o.x0),
            self.y0.max(o.y0),
            self.x1.min(o.x1),
            self.y1.min(o.y1),
        )
    }
    /// The whole pixels it touches: `(x0, y0, x1, y1)`, end exclusive.
    fn pixels(&self) -> (i32, i32, i32, i32) {
        (
            self.x0.floor() as i32,
            self.y0.floor() as i32,
            self.x1.ceil() as i32,
            self.y1.ceil() as i32,
        )
    }
}

/// Where text sits relative to the point it is drawn at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Left of the text (horizontally) or its top (vertically) at the point.
    Start,
    /// Centred on the point (vertically: the middle of a capital letter).
    Center,
    /// Right of the text or its bottom at the point.
    End,
}

impl Canvas {
    /// The whole canvas as a rectangle.
    pub fn bounds(&self) -> Rect {
        Rect::new(0.0, 0.0, self.w as f32, self.h as f32)
    }

    /// Mixes `color` into pixel `(x, y)` with opacity `alpha` (0..=1); nothing outside the canvas.
    pub fn blend(&mut self, x: i32, y: i32, color: RGBColor, alpha: f32) {
        if x < 0 || y < 0 || x as u32 >= self.w || y as u32 >= self.h || alpha <= 0.0 {
            return;
        }
        let a = alpha.min(1.0);
        let i = ((y as u32 * self.w + x as u32) * 3) as usize;
        for (k, c) in [color.0, color.1, color.2].into_iter().enumerate() {
            let old = self.buf[i + k] as f32;
            self.buf[i + k] = (old + (c as f32 - old) * a).round() as u8;
        }
    }

    /// Fills the pixels whose centres lie in `r`.
    pub fn fill_rect(&mut self, r: Rect, color: RGBColor, alpha: f32) {
        let (x0, y0, x1, y1) = (
            r.x0.round() as i32,
            r.y0.round() as i32,
            r.x1.round() as i32,
            r.y1.round() as i32,
        );
        for y in y0..y1 {
            for x in x0..x1 {
                self.blend(x, y, color, alpha);
            }
        }
    }

    /// A one-pixel outline just inside `r` (rounded to whole pixels: crisp, as an axes frame).
    pub fn stroke_rect(&mut self, r: Rect, color: RGBColor) {
        let (x0, y0, x1, y1) = (r.x0.round(), r.y0.round(), r.x1.round(), r.y1.round());
        self.fill_rect(Rect::new(x0, y0, x1, y0 + 1.0), color, 1.0);
        self.fill_rect(Rect::new(x0, y1 - 1.0, x1, y1), color, 1.0);
        self.fill_rect(Rect::new(x0, y0, x0 + 1.0, y1), color, 1.0);
        self.fill_rect(Rect::new(x1 - 1.0, y0, x1, y1), color, 1.0);
    }

    /// A line `width` pixels wide through `pts`, with round joins and ends, drawn only inside
    /// `clip`. Each pixel is blended once, by its largest coverage, so joins do not darken.
    pub fn polyline(&mut self, pts: &[(f32, f32)], width: f32, color: RGBColor, clip: Rect) {
        let Some(&first) = pts.first() else { return };
        let reach = width / 2.0 + 0.5;
        let (mut lo, mut hi) = (first, first);
        for &(x, y) in pts {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
        let area = Rect::new(lo.0 - reach, lo.1 - reach, hi.0 + reach, hi.1 + reach)
            .intersect(&clip)
            .intersect(&self.bounds());
        let (x0, y0, x1, y1) = area.pixels();
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        let mut mask = Mask {
            x0,
            y0,
            w: x1 - x0,
            h: y1 - y0,
            cov: vec![0.0; ((x1 - x0) * (y1 - y0)) as usize],
        };
        if pts.len() == 1 {
            mask.segment(first, first, width / 2.0);
        }
        for s in pts.windows(2) {
            mask.segment(s[0], s[1], width / 2.0);
        }
        for y in 0..mask.h {
            for x in 0..mask.w {
                let c = mask.cov[(y * mask.w + x) as usize];
                if c > 0.0 {
                    self.blend(x0 + x, y0 + y, color, c);
                }
            }
        }
    }

    /// A filled disc of radius `r` around `c`, drawn only inside `clip`.
    pub fn dot(&mut self, c: (f32, f32), r: f32, color: RGBColor, clip: Rect) {
        let area = Rect::new(c.0 - r - 1.0, c.1 - r - 1.0, c.0 + r + 1.0, c.1 + r + 1.0)
            .intersect(&clip)
            .intersect(&self.bounds());
        let (x0, y0, x1, y1) = area.pixels();
        for y in y0..y1 {
            for x in x0..x1 {
                let d = ((x as f32 + 0.5 - c.0).powi(2) + (y as f32 + 0.5 - c.1).powi(2)).sqrt();
                self.blend(x, y, color, (r + 0.5 - d).clamp(0.0, 1.0));
            }
        }
    }

    /// Draws `text` at `size` pixels (the em size, as CSS and matplotlib count) aligned to `at`.
    pub fn text(
        &mut self,
        text: &str,
        at: (f32, f32),
        size: f32,
        align: (Align, Align),
        color: RGBColor,
    ) {
        let laid = Laid::new(text, size);
        let x = at.0 - laid.offset(align.0, laid.width);
        let baseline = at.1 + laid.baseline_below_top(align.1);
        laid.draw(x, baseline, |px, py, c| self.blend(px, py, color, c));
    }

    /// Draws `text` reading upwards (turned a quarter to the left, as a y axis' label), centred
    /// on `at`.
    pub fn text_up(&mut self, text: &str, at: (f32, f32), size: f32, color: RGBColor) {
        let laid = Laid::new(text, size);
        let (cx, cy) = (at.0.round() as i32, at.1.round() as i32);
        let x = -(laid.width / 2.0).round();
        let baseline = laid.baseline_below_top(Align::Center).round();
        // Local pixel (lx, ly) turns into canvas pixel (cx + ly, cy - lx - 1).
        laid.draw(x, baseline, |lx, ly, c| {
            self.blend(cx + ly, cy - lx - 1, color, c)
        });
    }
}

/// The width of `text` at `size` pixels, for layout.
pub fn text_width(text: &str, size: f32) -> f32 {
    Laid::new(text, size).width
}

/// The height of a text line (ascent + descent) at `size` pixels.
pub fn line_height(size: f32) -> f32 {
    let f = font();
    let s = f.as_scaled(scale(&f, size));
    s.ascent() - s.descent()
}

fn scale(f: &FontRef<'static>, size: f32) -> PxScale {
    // ab_glyph's scale is the line height (ascent - descent); `size` is the em size.
    let units = f.units_per_em().unwrap_or(1000.0);
    PxScale::from(size * f.height_unscaled() / units)
}

/// Text laid out on a baseline at y = 0, starting at x = 0.
struct Laid {
    font: FontRef<'static>,
    glyphs: Vec<Glyph>,
    width: f32,
    ascent: f32,
    descent: f32,
    cap: f32,
}

impl Laid {
    fn new(text: &str, size: f32) -> Laid {
        let font = font();
        let px = scale(&font, size);
        let s = font.as_scaled(px);
        let (mut x, mut prev, mut glyphs) = (0.0, None, Vec::new());
        for c in text.chars() {
            let id = s.glyph_id(c);
            if let Some(p) = prev {
                x += s.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(px, point(x, 0.0)));
            x += s.h_advance(id);
            prev = Some(id);
        }
        let cap = font
            .outline(font.glyph_id('H'))
            .map(|o| o.bounds.min.y * s.v_scale_factor()) // ab_glyph keeps the top in min.y
            .unwrap_or(s.ascent() * 0.7);
        let (ascent, descent) = (s.ascent(), s.descent());
        Laid {
            font,
            glyphs,
            width: x,
            ascent,
            descent,
            cap,
        }
    }

    fn offset(&self, align: Align, extent: f32) -> f32 {
        match align {
            Align::Start => 0.0,
            Align::Center => extent / 2.0,
            Align::End => extent,
        }
    }

    /// How far below the anchor the baseline is.
    fn baseline_below_top(&self, align: Align) -> f32 {
        match align {
            Align::Start => self.ascent,
            Align::Center => self.cap / 2.0,
            Align::End => self.descent,
        }
    }

    /// Calls `put(x, y, coverage)` for every pixel the text covers, with the text starting at
    /// `x` on the baseline `baseline`.
    fn draw(&self, x: f32, baseline: f32, mut put: impl FnMut(i32, i32, f32)) {
        for g in &self.glyphs {
            let mut g = g.clone();
            g.position = point(g.position.x + x, g.position.y + baseline);
            if let Some(o) = self.font.outline_glyph(g) {
                let b = o.px_bounds();
                o.draw(|gx, gy, c| {
                    put(
                        b.min.x as i32 + gx as i32,
                        b.min.y as i32 + gy as i32,
                        c.min(1.0),
                    )
                });
            }
        }
    }
}

/// Coverage of a line's pixels, each the most any segment gives it.
struct Mask {
    x0: i32,
    y0: i32,
    w: i32,
    h: i32,
    cov: Vec<f32>,
}

impl Mask {
    /// Covers the pixels within `hw` (half the width) of the segment `a`-`b`, anti-aliased over
    /// one pixel. Walks the segment's long axis, so a long diagonal costs its length, not its
    /// bounding box.
    fn segment(&mut self, a: (f32, f32), b: (f32, f32), hw: f32) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        let reach = hw + 0.5;
        let dist = |px: f32, py: f32| {
            let t = if len2 > 0.0 {
                (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            ((px - a.0 - t * dx).powi(2) + (py - a.1 - t * dy).powi(2)).sqrt()
        };
        let shallow = dx.abs() >= dy.abs();
        // (major, minor) coordinates of the endpoints
        let (am, an, bm, bn) = if shallow {
            (a.0, a.1, b.0, b.1)
        } else {
            (a.1, a.0, b.1, b.0)
        };
        let (dm, dn) = (bm - am, bn - an);
        let band = reach * (len2.sqrt() / dm.abs().max(1e-6)).min(2.0) + 1.0;
        let m0 = (am.min(bm) - reach).floor() as i32;
        let m1 = (am.max(bm) + reach).ceil() as i32;
        for m in m0..=m1 {
            let cm = m as f32 + 0.5;
            let t = if dm != 0.0 {
                ((cm - am) / dm).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let centre = an + t * dn;
            for n in (centre - band).floor() as i32..=(centre + band).ceil() as i32 {
                let (x, y) = if shallow { (m, n) } else { (n, m) };
                let (ix, iy) = (x - self.x0, y - self.y0);
                if ix < 0 || iy < 0 || ix >= self.w || iy >= self.h {
                    continue;
                }
                let c = (reach - dist(x as f32 + 0.5, y as f32 + 0.5)).clamp(0.0, 1.0);
                let cell = &mut self.cov[(iy * self.w + ix) as usize];
                *cell = cell.max(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLUE: RGBColor = RGBColor(31, 119, 180);

    fn px(c: &Canvas, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * c.w + x) * 3) as usize;
        [c.buf[i], c.buf[i + 1], c.buf[i + 2]]
    }

    #[test]
    fn steep_and_shallow_lines_are_equally_thick() {
        let mut c = Canvas::new(100, 100);
        let clip = c.bounds();
        c.polyline(&[(10.0, 50.0), (90.0, 50.0)], 2.0, BLUE, clip);
        c.polyline(&[(50.0, 10.0), (50.0, 90.0)], 2.0, BLUE, clip);
        let ink = |c: &Canvas, pts: &mut dyn Iterator<Item = (u32, u32)>| -> f32 {
            pts.map(|(x, y)| (255 - px(c, x, y)[1]) as f32 / (255.0 - 119.0))
                .sum()
        };
        // a column across the horizontal line, a row across the vertical one: ~2 pixels of ink
        let h = ink(&c, &mut (40..60).map(|y| (20, y)));
        let v = ink(&c, &mut (40..60).map(|x| (x, 20)));
        assert!((h - 2.0).abs() < 0.3 && (v - 2.0).abs() < 0.3, "{h} {v}");
        // a diagonal: the ink across it, measured along a row, is width * sqrt(2)
        let mut d = Canvas::new(100, 100);
        d.polyline(&[(10.0, 10.0), (90.0, 90.0)], 2.0, BLUE, clip);
        let across = ink(&d, &mut (30..70).map(|x| (x, 50)));
        assert!((across - 2.0 * 2f32.sqrt()).abs() < 0.4, "{across}");
    }

    #[test]
    fn drawing_stays_inside_the_clip() {
        let mut c = Canvas::new(50, 50);
        c.polyline(
            &[(0.0, 25.0), (50.0, 25.0)],
            4.0,
            BLUE,
            Rect::new(10.0, 0.0, 40.0, 50.0),
        );
        c.dot((42.0, 10.0), 5.0, BLUE, Rect::new(0.0, 0.0, 40.0, 50.0));
        assert_eq!(px(&c, 5, 25), [255, 255, 255]);
        assert_eq!(px(&c, 25, 25), [31, 119, 180]);
        assert_eq!(px(&c, 43, 10), [255, 255, 255]);
        assert_eq!(px(&c, 39, 10), [31, 119, 180]);
    }

    #[test]
    fn text_is_laid_out_with_its_bearings() {
        // "1.0": three glyphs, the dot not squeezed against the 1 (plotters drew "1. 0")
        assert!(text_width("1.0", 14.0) > text_width("10", 14.0));
        let mut c = Canvas::new(60, 30);
        c.text(
            "1.0",
            (30.0, 15.0),
            14.0,
            (Align::Center, Align::Center),
            RGBColor(0, 0, 0),
        );
        let dark: Vec<(u32, u32)> = (0..30)
            .flat_map(|y| (0..60).map(move |x| (x, y)))
            .filter(|&(x, y)| px(&c, x, y)[0] < 128)
            .collect();
        let (xs, ys): (Vec<u32>, Vec<u32>) = dark.iter().copied().unzip();
        let mid_x = (xs.iter().min().unwrap() + xs.iter().max().unwrap()) as f32 / 2.0;
        let mid_y = (ys.iter().min().unwrap() + ys.iter().max().unwrap()) as f32 / 2.0;
        assert!(
            (mid_x - 30.0).abs() <= 1.5 && (mid_y - 15.0).abs() <= 1.5,
            "{mid_x} {mid_y}"
        );
        // turned text is as tall as the flat one is wide
        let mut u = Canvas::new(30, 60);
        u.text_up("1.0", (15.0, 30.0), 14.0, RGBColor(0, 0, 0));
        let rows: Vec<u32> = (0..60)
            .filter(|&y| (0..30).any(|x| px(&u, x, y)[0] < 128))
            .collect();
        let span = rows.last().unwrap() - rows[0] + 1;
        let flat = xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1;
        assert!(span.abs_diff(flat) <= 1, "{span} {flat}"); // sub-pixel placement differs
    }
}
