//! Data augmentation with fastai's `get_transforms()` defaults, done in one resampling pass.
//!
//! For every output pixel we compute where it comes from in the source image - through the crop
//! to `size`, a flip, a rotation, a zoom and a perspective warp - and read the source there with
//! bilinear interpolation and reflection padding. Brightness and contrast are a 256-entry lookup
//! table on the source values. So an augmented 224x224 image costs one pass over 224x224 pixels,
//! whatever the source size.
//!
//! Coordinates follow fastai v1: transforms act on normalized coordinates in [-1, 1], mapping each
//! output point to the input point it samples (zoom by 1.1 maps u to u/1.1: a zoom in).

use image::{GrayImage, RgbImage};
use rand::Rng;

mod batch;
pub use batch::{render_batch, render_batch_in, BatchPicture};

/// Which random augmentations to apply, with fastai v1's `get_transforms()` defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Transforms {
    /// Random horizontal flip (p = 0.5).
    pub do_flip: bool,
    /// With `do_flip`: any of the 8 flips/rotations by 90 degrees (for satellite or microscope
    /// images) instead of horizontal flips only.
    pub flip_vert: bool,
    /// Rotation, uniform in +-`max_rotate` degrees, with probability `p_affine`.
    pub max_rotate: f32,
    /// Zoom, uniform in 1..`max_zoom`, centred anywhere, with probability `p_affine`.
    pub max_zoom: f32,
    /// Brightness and contrast change, each with probability `p_lighting`.
    pub max_lighting: f32,
    /// Perspective warp magnitude, with probability `p_affine`.
    pub max_warp: f32,
    pub p_affine: f32,
    pub p_lighting: f32,
    /// What is seen beyond the picture's edges after a rotation, zoom out or warp.
    pub padding_mode: PaddingMode,
}

/// How pixels outside the source picture are filled (fastai's `padding_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaddingMode {
    /// The picture mirrored at its edges (fastai's default).
    #[default]
    Reflection,
    /// Black.
    Zeros,
    /// The edge pixels repeated outwards.
    Border,
}

/// fastai's defaults: flip, rotate +-10 degrees, zoom up to 1.1, lighting 0.2, warp 0.2,
/// each (but the flip) with probability 0.75.
pub fn get_transforms() -> Transforms {
    Transforms {
        do_flip: true,
        flip_vert: false,
        max_rotate: 10.0,
        max_zoom: 1.1,
        max_lighting: 0.2,
        max_warp: 0.2,
        p_affine: 0.75,
        p_lighting: 0.75,
        padding_mode: PaddingMode::Reflection,
    }
}

impl Default for Transforms {
    fn default() -> Self {
        get_transforms()
    }
}

impl Transforms {
    /// No augmentation at all (only the crop to size).
    pub fn none() -> Transforms {
        Transforms {
            do_flip: false,
            flip_vert: false,
            max_rotate: 0.0,
            max_zoom: 1.0,
            max_lighting: 0.0,
            max_warp: 0.0,
            p_affine: 0.0,
            p_lighting: 0.0,
            padding_mode: PaddingMode::Reflection,
        }
    }
    /// The probability of each affine change (rotation, zoom, warp).
    pub fn p_affine(mut self, p: f32) -> Self {
        self.p_affine = p;
        self
    }
    /// The probability of each lighting change (brightness, contrast).
    pub fn p_lighting(mut self, p: f32) -> Self {
        self.p_lighting = p;
        self
    }
    pub fn padding_mode(mut self, m: PaddingMode) -> Self {
        self.padding_mode = m;
        self
    }
    pub fn do_flip(mut self, v: bool) -> Self {
        self.do_flip = v;
        self
    }
    pub fn flip_vert(mut self, v: bool) -> Self {
        self.flip_vert = v;
        self
    }
    pub fn max_rotate(mut self, v: f32) -> Self {
        self.max_rotate = v;
        self
    }
    pub fn max_zoom(mut self, v: f32) -> Self {
        self.max_zoom = v;
        self
    }
    pub fn max_lighting(mut self, v: f32) -> Self {
        self.max_lighting = v;
        self
    }
    pub fn max_warp(mut self, v: f32) -> Self {
        self.max_warp = v;
        self
    }

    /// Draws the random parameters for one training image.
    pub fn sample(&self, rng: &mut impl Rng) -> Augment {
        let mut a = Augment::center();
        a.padding = self.padding_mode;
        a.crop = (rng.random::<f32>(), rng.random::<f32>());
        if self.do_flip {
            a.dihedral = if self.flip_vert {
                rng.random_range(0..8)
            } else if rng.random_bool(0.5) {
                1
            } else {
                0
            };
        }
        let mut coin = |p: f32| p > 0.0 && rng.random::<f32>() < p;
        let (rot, zoom, warp, bright, contr) = (
            coin(self.p_affine),
            coin(self.p_affine),
            coin(self.p_affine),
            coin(self.p_lighting),
            coin(self.p_lighting),
        );
        if rot && self.max_rotate > 0.0 {
            a.rotate_deg = rng.random_range(-self.max_rotate..=self.max_rotate);
        }
        if zoom && self.max_zoom > 1.0 {
            a.zoom = rng.random_range(1.0..=self.max_zoom);
            a.zoom_center = (rng.random::<f32>(), rng.random::<f32>());
        }
        if warp && self.max_warp > 0.0 {
            for m in a.warp.iter_mut() {
                *m = rng.random_range(-self.max_warp..=self.max_warp);
            }
        }
        if bright && self.max_lighting > 0.0 {
            a.brightness =
                rng.random_range(0.5 * (1.0 - self.max_lighting)..=0.5 * (1.0 + self.max_lighting));
        }
        if contr && self.max_lighting > 0.0 && self.max_lighting < 1.0 {
            let (lo, hi) = (
                (1.0 - self.max_lighting).ln(),
                (1.0 / (1.0 - self.max_lighting)).ln(),
            );
            a.contrast = rng.random_range(lo..=hi).exp();
        }
        a
    }
}

/// The drawn parameters of one augmentation (the identity is [`Augment::center`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    /// Where the crop window sits in the resized image, (row, column) in 0..=1; 0.5 = centre.
    pub crop: (f32, f32),
    /// 0 = none, 1 = horizontal flip, 2..8 = the other flips/quarter turns.
    pub dihedral: u8,
    pub rotate_deg: f32,
    pub zoom: f32,
    /// Zoom centre (row, column) in 0..=1.
    pub zoom_center: (f32, f32),
    /// Perspective warp magnitudes of the four corners.
    pub warp: [f32; 4],
    /// Brightness "change" (0.5 = unchanged), applied in logit space as fastai does.
    pub brightness: f32,
    /// Contrast scale (1 = unchanged), applied in logit space.
    pub contrast: f32,
    pub padding: PaddingMode,
}

impl Augment {
    /// No augmentation, centre crop: what validation images get.
    pub fn center() -> Augment {
        Augment {
            crop: (0.5, 0.5),
            dihedral: 0,
            rotate_deg: 0.0,
            zoom: 1.0,
            zoom_center: (0.5, 0.5),
            warp: [0.0; 4],
            brightness: 0.5,
            contrast: 1.0,
            padding: PaddingMode::Reflection,
        }
    }

    /// The drawn parameters in words, for titles: "flip, rotate 4.2, zoom 1.07, warp, bright
    /// 0.55, contrast 0.9" (empty when nothing changes).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.dihedral {
            0 => {}
            1 => parts.push("flip".to_string()),
            d => parts.push(format!("dihedral {d}")),
        }
        if self.rotate_deg != 0.0 {
            parts.push(format!("rotate {:.1}", self.rotate_deg));
        }
        if self.zoom != 1.0 {
            parts.push(format!("zoom {:.2}", self.zoom));
        }
        if self.warp.iter().any(|&w| w != 0.0) {
            parts.push("warp".into());
        }
        if self.brightness != 0.5 {
            parts.push(format!("bright {:.2}", self.brightness));
        }
        if self.contrast != 1.0 {
            parts.push(format!("contrast {:.2}", self.contrast));
        }
        parts.join(", ")
    }

    /// The 2x3 affine map on normalized (x, y) coordinates: output point -> input point.
    fn affine(&self) -> [[f64; 3]; 2] {
        // flips / quarter turns
        let (fx, fy, transpose) = match self.dihedral {
            1 => (-1.0, 1.0, false),
            2 => (1.0, -1.0, false),
            3 => (-1.0, -1.0, false),
            4 => (1.0, 1.0, true),
            5 => (-1.0, 1.0, true),
            6 => (1.0, -1.0, true),
            7 => (-1.0, -1.0, true),
            _ => (1.0, 1.0, false),
        };
        let d: [[f64; 3]; 2] = if transpose {
            [[0.0, fx, 0.0], [fy, 0.0, 0.0]]
        } else {
            [[fx, 0.0, 0.0], [0.0, fy, 0.0]]
        };
        let t = (self.rotate_deg as f64).to_radians();
        let r = [[t.cos(), -t.sin(), 0.0], [t.sin(), t.cos(), 0.0]];
        let s = 1.0 / self.zoom as f64;
        let (zr, zc) = (self.zoom_center.0 as f64, self.zoom_center.1 as f64);
        let z = [
            [s, 0.0, (1.0 - s) * (2.0 * zc - 1.0)],
            [0.0, s, (1.0 - s) * (2.0 * zr - 1.0)],
        ];
        // sample point = zoom(rotate(flip(p)))
        compose(&z, &compose(&r, &d))
    }

    /// The perspective warp as a 3x3 homography on normalized coordinates (None when flat).
    fn homography(&self) -> Option<[[f64; 3]; 3]> {
        if self.warp.iter().all(|&m| m == 0.0) {
            return None;
        }
        let m: Vec<f64> = self.warp.iter().map(|&v| v as f64).collect();
        let from = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)];
        let to = [
            (-1.0 - m[3], -1.0 - m[1]),
            (-1.0 - m[2], 1.0 + m[1]),
            (1.0 + m[3], -1.0 - m[0]),
            (1.0 + m[2], 1.0 + m[0]),
        ];
        homography_from_points(&from, &to)
    }

    /// The lookup table from a source byte to the output value in [0, 1].
    fn lighting_lut(&self) -> [f32; 256] {
        let mut lut = [0f32; 256];
        let plain = self.brightness == 0.5 && self.contrast == 1.0;
        let shift = logit(self.brightness as f64);
        for (v, out) in lut.iter_mut().enumerate() {
            let x = v as f64 / 255.0;
            *out = if plain {
                x as f32
            } else {
                sigmoid((logit(x) + shift) * self.contrast as f64) as f32
            };
        }
        lut
    }
}

fn logit(x: f64) -> f64 {
    let x = x.clamp(1e-6, 1.0 - 1e-6);
    (x / (1.0 - x)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn compose(a: &[[f64; 3]; 2], b: &[[f64; 3]; 2]) -> [[f64; 3]; 2] {
    let mut c = [[0.0; 3]; 2];
    for i in 0..2 {
        for j in 0..3 {
            c[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + if j == 2 { a[i][2] } else { 0.0 };
        }
    }
    c
}

/// The homography H with H(from[k]) = to[k] (up to scale), from four point pairs.
fn homography_from_points(from: &[(f64, f64); 4], to: &[(f64, f64); 4]) -> Option<[[f64; 3]; 3]> {
    // 8 unknowns h0..h7 (h8 = 1): u = (h0 x + h1 y + h2) / (h6 x + h7 y + 1), v likewise.
    let mut a = [[0.0f64; 9]; 8];
    for k in 0..4 {
        let ((x, y), (u, v)) = (from[k], to[k]);
        a[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = a[row][col] / a[col][col];
                for k in col..9 {
                    a[row][k] -= f * a[col][k];
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Some([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]])
}

/// Reflects `x` into [lo, hi] (reflection padding, as grid_sample's 'reflection').
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    if x >= lo && x <= hi {
        return x;
    }
    let span = hi - lo;
    if span <= 0.0 {
        return lo;
    }
    let mut t = (x - lo).rem_euclid(2.0 * span);
    if t > span {
        t = 2.0 * span - t;
    }
    lo + t
}

/// The integer factor a `(width, height)` source is shrunk by before it is sampled at `h x w`:
/// 2 or more when it is at least twice the size needed (area averaging then avoids aliasing).
fn shrink_factor((sw, sh): (u32, u32), (h, w): (usize, usize)) -> u32 {
    let needed = (h as f64 / sh as f64).max(w as f64 / sw as f64);
    ((1.0 / needed).floor() as u32).max(1)
}

/// What a worker keeps of a picture to be rendered at `size` = (height, width): the picture
/// itself, or, when it is at least twice as large as needed, a copy shrunk by an integer factor
/// (area averaging) - exactly what [`render`] reads from, so [`render_batch`] on presized pictures
/// gives [`render`]'s values.
pub fn presize(img: RgbImage, size: (usize, usize)) -> RgbImage {
    shrunk(&img, size).unwrap_or(img)
}

fn shrunk(img: &RgbImage, size: (usize, usize)) -> Option<RgbImage> {
    let k = shrink_factor(img.dimensions(), size);
    (k >= 2).then(|| {
        image::imageops::thumbnail(img, (img.width() / k).max(1), (img.height() / k).max(1))
    })
}

/// Full-size pixel coordinates -> those of a resized copy (pixel centres at integers).
fn rescale(full: (u32, u32), small: (u32, u32)) -> [[f64; 3]; 3] {
    let (ax, ay) = (
        small.0 as f64 / full.0 as f64,
        small.1 as f64 / full.1 as f64,
    );
    [
        [ax, 0.0, 0.5 * ax - 0.5],
        [0.0, ay, 0.5 * ay - 0.5],
        [0.0, 0.0, 1.0],
    ]
}

/// Renders `src` augmented by `aug` into `out`, a `3 * h * w` slice in CHW order.
///
/// Values are in [0, 1], or normalized as `(v - mean) / std` per channel when `norm` is given
/// (folded into the lookup tables, so it costs nothing here). The source is first resized
/// (conceptually) so that it covers `h x w` keeping its aspect ratio, then the crop window is
/// placed at `aug.crop`. Sources more than twice as large as needed are first shrunk by area
/// averaging, to avoid aliasing.
pub fn render(
    src: &RgbImage,
    h: usize,
    w: usize,
    aug: &Augment,
    norm: Option<([f32; 3], [f32; 3])>,
    out: &mut [f32],
) {
    assert_eq!(
        out.len(),
        3 * h * w,
        "output buffer must hold 3 x {h} x {w} values"
    );
    let shrunk_src;
    let mut src = src;
    // The geometry is computed on the full-size image, whatever is read from: a mask or points
    // of the same image then follow it exactly.
    let full = src.dimensions();
    let mut m = pixel_map(aug, (full.0 as f64, full.1 as f64), (h, w));
    if let Some(small) = shrunk(src, (h, w)) {
        shrunk_src = small;
        src = &shrunk_src;
        m = mat3(&rescale(full, src.dimensions()), &m);
    }
    let (sw, sh) = (src.width() as f64, src.height() as f64);
    let luts = channel_luts(aug, norm);
    let raw = src.as_raw();
    let (iw, ih) = (src.width() as usize, src.height() as usize);
    let plane = h * w;
    let projective = m[2][0] != 0.0 || m[2][1] != 0.0;
    for i in 0..h {
        let fi = i as f64;
        // X, Y, Z are linear in j along the row: step by the first column of M.
        let (mut x, mut y, mut z) = (
            m[0][1] * fi + m[0][2],
            m[1][1] * fi + m[1][2],
            m[2][1] * fi + m[2][2],
        );
        for j in 0..w {
            let (px, py) = if projective { (x / z, y / z) } else { (x, y) };
            x += m[0][0];
            y += m[1][0];
            z += m[2][0];
            let o = i * w + j;
            let outside = px < -0.5 || py < -0.5 || px > sw - 0.5 || py > sh - 0.5;
            if outside && aug.padding == PaddingMode::Zeros {
                for (c, lut) in luts.iter().enumerate() {
                    out[c * plane + o] = lut[0];
                }
                continue;
            }
            let (sx, sy) = if aug.padding == PaddingMode::Reflection {
                (reflect(px, -0.5, sw - 0.5), reflect(py, -0.5, sh - 0.5))
            } else {
                (px, py)
            };
            let (sx, sy) = (sx.clamp(0.0, sw - 1.0), sy.clamp(0.0, sh - 1.0));
            let (x0, y0) = (sx as usize, sy as usize); // non-negative: floor
            let (x1, y1) = ((x0 + 1).min(iw - 1), (y0 + 1).min(ih - 1));
            let (fx, fy) = ((sx - x0 as f64) as f32, (sy - y0 as f64) as f32);
            let (p00, p01, p10, p11) = (
                3 * (y0 * iw + x0),
                3 * (y0 * iw + x1),
                3 * (y1 * iw + x0),
                3 * (y1 * iw + x1),
            );
            for (c, lut) in luts.iter().enumerate() {
                let top = lut[raw[p00 + c] as usize]
                    + (lut[raw[p01 + c] as usize] - lut[raw[p00 + c] as usize]) * fx;
                let bottom = lut[raw[p10 + c] as usize]
                    + (lut[raw[p11 + c] as usize] - lut[raw[p10 + c] as usize]) * fx;
                out[c * plane + o] = top + (bottom - top) * fy;
            }
        }
    }
}

/// Renders a segmentation mask (one class id per pixel) with exactly the geometry `render` gives
/// its image under `aug`, reading the nearest source pixel: class ids are never blended. `out`
/// holds `h * w` ids (as `f32`).
pub fn render_mask(mask: &GrayImage, h: usize, w: usize, aug: &Augment, out: &mut [f32]) {
    assert_eq!(out.len(), h * w, "mask buffer must hold {h} x {w} values");
    let (sw, sh) = (mask.width() as f64, mask.height() as f64);
    let m = pixel_map(aug, (sw, sh), (h, w));
    let (iw, raw) = (mask.width() as usize, mask.as_raw());
    for i in 0..h {
        for j in 0..w {
            let (x, y) = project(&m, j as f64, i as f64);
            let outside = x < -0.5 || y < -0.5 || x > sw - 0.5 || y > sh - 0.5;
            let (x, y) = match aug.padding {
                PaddingMode::Zeros if outside => {
                    out[i * w + j] = 0.0;
                    continue;
                }
                PaddingMode::Reflection => (reflect(x, -0.5, sw - 0.5), reflect(y, -0.5, sh - 0.5)),
                _ => (x, y),
            };
            let sx = x.clamp(0.0, sw - 1.0).round() as usize;
            let sy = y.clamp(0.0, sh - 1.0).round() as usize;
            out[i * w + j] = raw[sy * iw + sx] as f32;
        }
    }
}

/// Where points of a source image of `(height, width)` land in its `h x w` augmented version:
/// `[y, x]` in continuous pixel coordinates of the source in, `[y, x]` scaled to [-1, 1] over
/// the output out (fastai's `ImagePoints` scale: -1 is the top/left edge, 1 the bottom/right).
/// Points that leave the picture get coordinates outside [-1, 1].
pub fn map_points(
    points: &[[f32; 2]],
    (sh, sw): (u32, u32),
    (h, w): (usize, usize),
    aug: &Augment,
) -> Vec<[f32; 2]> {
    let m = pixel_map(aug, (sw as f64, sh as f64), (h, w));
    let inv = invert3(&m).expect("an augmentation's map is invertible");
    points
        .iter()
        .map(|&[y, x]| {
            // continuous -> pixel centres at integers, through the inverse map, and back
            let (j, i) = project(&inv, x as f64 - 0.5, y as f64 - 0.5);
            [
                (2.0 * (i + 0.5) / h as f64 - 1.0) as f32,
                (2.0 * (j + 0.5) / w as f64 - 1.0) as f32,
            ]
        })
        .collect()
}

/// Applies a 3x3 projective map to (x, y).
fn project(m: &[[f64; 3]; 3], x: f64, y: f64) -> (f64, f64) {
    let z = m[2][0] * x + m[2][1] * y + m[2][2];
    (
        (m[0][0] * x + m[0][1] * y + m[0][2]) / z,
        (m[1][0] * x + m[1][1] * y + m[1][2]) / z,
    )
}

/// The inverse of a 3x3 matrix (adjugate over determinant), `None` if singular.
fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let c = |r: usize, k: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (k1, k2) = ((k + 1) % 3, (k + 2) % 3);
        m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]
    };
    let det = m[0][0] * c(0, 0) + m[0][1] * c(0, 1) + m[0][2] * c(0, 2);
    if det.abs() < 1e-12 {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = c(j, i) / det; // the adjugate is the transposed cofactor matrix
        }
    }
    Some(inv)
}

/// The 3x3 projective map from output pixel (column, row, 1) to source pixel coordinates:
/// crop window -> normalized coordinates -> flip/rotate/zoom -> warp -> source pixels.
fn pixel_map(aug: &Augment, (sw, sh): (f64, f64), (h, w): (usize, usize)) -> [[f64; 3]; 3] {
    let scale = (h as f64 / sh).max(w as f64 / sw);
    let (rh, rw) = (sh * scale, sw * scale);
    let r0 = aug.crop.0 as f64 * (rh - h as f64);
    let c0 = aug.crop.1 as f64 * (rw - w as f64);
    // output pixel centre -> normalized [-1, 1] in the resized image
    let to_norm = [
        [2.0 / rw, 0.0, 2.0 * (c0 + 0.5) / rw - 1.0],
        [0.0, 2.0 / rh, 2.0 * (r0 + 0.5) / rh - 1.0],
        [0.0, 0.0, 1.0],
    ];
    let a = aug.affine();
    let affine = [a[0], a[1], [0.0, 0.0, 1.0]];
    let warp = aug
        .homography()
        .unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    // normalized -> source pixel coordinates (pixel centres at integers)
    let to_src = [
        [sw / 2.0, 0.0, sw / 2.0 - 0.5],
        [0.0, sh / 2.0, sh / 2.0 - 0.5],
        [0.0, 0.0, 1.0],
    ];
    mat3(&to_src, &mat3(&warp, &mat3(&affine, &to_norm)))
}

fn mat3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut c = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

/// Per-channel tables: source byte -> lighting-adjusted value, normalized if asked.
fn channel_luts(aug: &Augment, norm: Option<([f32; 3], [f32; 3])>) -> [[f32; 256]; 3] {
    let base = aug.lighting_lut();
    let mut luts = [base; 3];
    if let Some((mean, std)) = norm {
        for c in 0..3 {
            for v in luts[c].iter_mut() {
                *v = (*v - mean[c]) / std[c];
            }
        }
    }
    luts
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A 40x30 image whose left half is red and right half blue, with a green top row.
    fn test_image() -> RgbImage {
        RgbImage::from_fn(40, 30, |x, y| {
            if y == 0 {
                image::Rgb([0, 255, 0])
            } else if x < 20 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        })
    }

    fn px(out: &[f32], h: usize, w: usize, c: usize, i: usize, j: usize) -> f32 {
        out[c * h * w + i * w + j]
    }

    #[test]
    fn centre_crop_keeps_values_and_shape() {
        let img = test_image();
        let (h, w) = (20, 20);
        let mut out = vec![0.0; 3 * h * w];
        render(&img, h, w, &Augment::center(), None, &mut out);
        // 40x30 resized to cover 20x20 -> 26.7x20, centre crop: left columns red, right blue
        assert!(px(&out, h, w, 0, 10, 1) > 0.99 && px(&out, h, w, 2, 10, 1) < 0.01);
        assert!(px(&out, h, w, 2, 10, 18) > 0.99 && px(&out, h, w, 0, 10, 18) < 0.01);
        assert!(out.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn flip_really_flips() {
        let img = test_image();
        let (h, w) = (20, 20);
        let (mut a, mut b) = (vec![0.0; 3 * h * w], vec![0.0; 3 * h * w]);
        render(&img, h, w, &Augment::center(), None, &mut a);
        render(
            &img,
            h,
            w,
            &Augment {
                dihedral: 1,
                ..Augment::center()
            },
            None,
            &mut b,
        );
        for c in 0..3 {
            for i in 0..h {
                for j in 0..w {
                    let (x, y) = (px(&a, h, w, c, i, j), px(&b, h, w, c, i, w - 1 - j));
                    assert!((x - y).abs() < 1e-5, "c{c} ({i},{j}): {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn normalization_is_folded_in_exactly() {
        let img = test_image();
        let aug = get_transforms().sample(&mut rand::rngs::StdRng::seed_from_u64(3));
        let (mean, std) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
        let (mut plain, mut normed) = (vec![0.0; 3 * 100], vec![0.0; 3 * 100]);
        render(&img, 10, 10, &aug, None, &mut plain);
        render(&img, 10, 10, &aug, Some((mean, std)), &mut normed);
        for c in 0..3 {
            for k in 0..100 {
                let want = (plain[c * 100 + k] - mean[c]) / std[c];
                assert!((normed[c * 100 + k] - want).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn random_augmentations_keep_shape_and_range() {
        let img = test_image();
        let tfms = get_transforms().flip_vert(true);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut out = vec![0.0; 3 * 16 * 24];
        for _ in 0..50 {
            let aug = tfms.sample(&mut rng);
            render(&img, 16, 24, &aug, None, &mut out);
            assert!(
                out.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
                "{aug:?}"
            );
        }
    }

    #[test]
    fn sampled_parameters_respect_the_limits() {
        let tfms = get_transforms();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut flips, mut rotated) = (0, 0);
        for _ in 0..2000 {
            let a = tfms.sample(&mut rng);
            assert!(a.rotate_deg.abs() <= 10.0 && (1.0..=1.1).contains(&a.zoom));
            assert!(a.warp.iter().all(|m| m.abs() <= 0.2));
            assert!(
                (0.4..=0.6).contains(&a.brightness) && (0.8..=1.25 + 1e-6).contains(&a.contrast)
            );
            flips += (a.dihedral == 1) as u32;
            rotated += (a.rotate_deg != 0.0) as u32;
        }
        assert!((900..1100).contains(&flips), "flip p=0.5: {flips}/2000");
        assert!(
            (1400..1600).contains(&rotated),
            "rotate p=0.75: {rotated}/2000"
        );
    }

    #[test]
    fn homography_maps_corners() {
        let from = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)];
        let to = [(-1.1, -0.9), (-0.8, 1.2), (1.1, -1.0), (0.9, 1.05)];
        let h = homography_from_points(&from, &to).unwrap();
        for k in 0..4 {
            let (x, y) = from[k];
            let d = h[2][0] * x + h[2][1] * y + h[2][2];
            let u = (h[0][0] * x + h[0][1] * y + h[0][2]) / d;
            let v = (h[1][0] * x + h[1][1] * y + h[1][2]) / d;
            assert!((u - to[k].0).abs() < 1e-9 && (v - to[k].1).abs() < 1e-9);
        }
    }

    #[test]
    fn lighting_is_identity_at_rest_and_monotonic() {
        let lut = Augment::center().lighting_lut();
        assert_eq!(lut[0], 0.0);
        assert!((lut[255] - 1.0).abs() < 1e-6 && (lut[128] - 128.0 / 255.0).abs() < 1e-6);
        let bright = Augment {
            brightness: 0.6,
            contrast: 1.2,
            ..Augment::center()
        }
        .lighting_lut();
        assert!(bright[128] > lut[128]);
        assert!(bright.windows(2).all(|p| p[0] <= p[1]));
    }

    /// A black `w x h` picture with one Gaussian spot (`sigma` px) centred at `[y, x]`
    /// (continuous pixel coordinates).
    fn spot(w: u32, h: u32, [y, x]: [f32; 2], sigma: f32) -> RgbImage {
        RgbImage::from_fn(w, h, |i, j| {
            let (dx, dy) = (i as f32 + 0.5 - x, j as f32 + 0.5 - y);
            let v = (255.0 * (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp()).round() as u8;
            image::Rgb([v, v, v])
        })
    }

    /// The intensity-weighted centre of an `h x w` rendered picture, `[y, x]` continuous.
    fn centroid(out: &[f32], h: usize, w: usize) -> [f32; 2] {
        let (mut sy, mut sx, mut s) = (0.0, 0.0, 0.0);
        for i in 0..h {
            for j in 0..w {
                let v = out[i * w + j];
                if v > 0.05 {
                    sy += v * (i as f32 + 0.5);
                    sx += v * (j as f32 + 0.5);
                    s += v;
                }
            }
        }
        [sy / s, sx / s]
    }

    #[test]
    fn a_point_lands_where_its_spot_is_drawn() {
        let (sw, sh) = (90u32, 70u32);
        let p = [30.0f32, 52.0];
        let img = spot(sw, sh, p, 1.5);
        let (h, w) = (60usize, 60usize);
        let plain = Augment::center();
        let cases = [
            ("none", plain.clone()),
            (
                "flip",
                Augment {
                    dihedral: 1,
                    ..plain.clone()
                },
            ),
            (
                "dihedral 6",
                Augment {
                    dihedral: 6,
                    ..plain.clone()
                },
            ),
            (
                "rotate",
                Augment {
                    rotate_deg: 9.0,
                    ..plain.clone()
                },
            ),
            (
                "zoom",
                Augment {
                    zoom: 1.3,
                    zoom_center: (0.2, 0.7),
                    ..plain.clone()
                },
            ),
            (
                "warp",
                Augment {
                    warp: [0.15, -0.1, 0.2, -0.05],
                    ..plain.clone()
                },
            ),
            (
                "crop",
                Augment {
                    crop: (0.0, 1.0),
                    ..plain.clone()
                },
            ),
            (
                "everything",
                Augment {
                    crop: (0.3, 0.8),
                    dihedral: 1,
                    rotate_deg: -7.0,
                    zoom: 1.1,
                    zoom_center: (0.6, 0.4),
                    warp: [-0.1, 0.1, 0.05, 0.2],
                    ..plain.clone()
                },
            ),
        ];
        for (name, aug) in cases {
            let mut out = vec![0.0; 3 * h * w];
            render(&img, h, w, &aug, None, &mut out);
            let [cy, cx] = centroid(&out[..h * w], h, w);
            let [ny, nx] = map_points(&[p], (sh, sw), (h, w), &aug)[0];
            // back from [-1, 1] to output pixels
            let (py, px) = ((ny + 1.0) * h as f32 / 2.0, (nx + 1.0) * w as f32 / 2.0);
            assert!(
                (py - cy).abs() < 0.5 && (px - cx).abs() < 0.5,
                "{name}: the point maps to ({py:.2}, {px:.2}), the spot is at ({cy:.2}, {cx:.2})"
            );
        }
        // a big source (shrunk before resampling) keeps the geometry too
        let big = spot(900, 700, [300.0, 520.0], 20.0);
        let aug = Augment {
            rotate_deg: 5.0,
            crop: (0.2, 0.9),
            ..plain
        };
        let mut out = vec![0.0; 3 * h * w];
        render(&big, h, w, &aug, None, &mut out);
        let [ny, nx] = map_points(&[[300.0, 520.0]], (700, 900), (h, w), &aug)[0];
        let [cy, cx] = centroid(&out[..h * w], h, w);
        let (py, px) = ((ny + 1.0) * h as f32 / 2.0, (nx + 1.0) * w as f32 / 2.0);
        assert!(
            (py - cy).abs() < 0.5 && (px - cx).abs() < 0.5,
            "shrunk: ({py}, {px}) vs ({cy}, {cx})"
        );
    }

    #[test]
    fn points_scale_to_minus_one_one_and_leave_the_frame_outside_it() {
        let aug = Augment::center();
        // a square source rendered at its own size: the corners and the centre
        let pts = map_points(
            &[[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]],
            (20, 20),
            (20, 20),
            &aug,
        );
        for (got, want) in pts.iter().zip([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]) {
            assert!(
                (got[0] - want[0]).abs() < 1e-5 && (got[1] - want[1]).abs() < 1e-5,
                "{got:?}"
            );
        }
        let zoomed = Augment {
            zoom: 2.0,
            ..Augment::center()
        };
        let out = map_points(&[[1.0, 1.0]], (20, 20), (20, 20), &zoomed)[0];
        assert!(
            out[0] < -1.0 && out[1] < -1.0,
            "a corner point leaves a 2x zoom: {out:?}"
        );
    }

    #[test]
    fn masks_follow_their_image_and_keep_their_ids() {
        // ids 0 (background), 3 and 7 in blocks; the image shows the same blocks in colour
        let (sw, sh) = (64u32, 48u32);
        let id = |x: u32, y: u32| -> u8 {
            if x < 20 {
                3
            } else if y < 20 {
                7
            } else {
                0
            }
        };
        let mask = GrayImage::from_fn(sw, sh, |x, y| image::Luma([id(x, y)]));
        let img = RgbImage::from_fn(sw, sh, |x, y| image::Rgb([id(x, y) * 30, 0, 0]));
        let tfms = get_transforms().flip_vert(true).max_warp(0.3).max_zoom(1.5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (h, w) = (40, 40);
        for _ in 0..40 {
            let aug = tfms.sample(&mut rng);
            let aug = Augment {
                brightness: 0.5,
                contrast: 1.0,
                ..aug
            };
            let mut m = vec![0.0; h * w];
            render_mask(&mask, h, w, &aug, &mut m);
            assert!(
                m.iter().all(|&v| v == 0.0 || v == 3.0 || v == 7.0),
                "ids blended: {aug:?}"
            );
            let mut out = vec![0.0; 3 * h * w];
            render(&img, h, w, &aug, None, &mut out);
            // away from block edges the image's red shows the mask's id
            let mut agree = 0;
            for k in 0..h * w {
                let red_id = (out[k] * 255.0 / 30.0).round();
                agree += (red_id == m[k]) as usize;
            }
            assert!(
                agree as f64 > 0.9 * (h * w) as f64,
                "mask and image disagree on {} of {} pixels: {aug:?}",
                h * w - agree,
                h * w
            );
        }
    }

    #[test]
    fn padding_modes_fill_beyond_the_edges() {
        // zoomed out by rotating 45 degrees: the corners of the output lie outside the source
        let img = RgbImage::from_fn(20, 20, |x, _| {
            image::Rgb([if x < 10 { 200 } else { 50 }, 100, 100])
        });
        let corner = |mode: PaddingMode| {
            let aug = Augment {
                rotate_deg: 45.0,
                padding: mode,
                ..Augment::center()
            };
            let mut out = vec![0.0; 3 * 20 * 20];
            render(&img, 20, 20, &aug, None, &mut out);
            (out[0], out[20 * 20 + 0])
        };
        assert_eq!(corner(PaddingMode::Zeros), (0.0, 0.0), "black outside");
        let (r, g) = corner(PaddingMode::Border);
        assert!(
            r > 0.1 && (g - 100.0 / 255.0).abs() < 1e-3,
            "an edge colour: {r} {g}"
        );
        let (r, g) = corner(PaddingMode::Reflection);
        assert!(
            r > 0.1 && (g - 100.0 / 255.0).abs() < 1e-3,
            "a mirrored colour: {r} {g}"
        );
        let mask = GrayImage::from_pixel(20, 20, image::Luma([3]));
        let mut m = vec![9.0; 400];
        let aug = Augment {
            rotate_deg: 45.0,
            padding: PaddingMode::Zeros,
            ..Augment::center()
        };
        render_mask(&mask, 20, 20, &aug, &mut m);
        assert_eq!(
            (m[0], m[210]),
            (0.0, 3.0),
            "zeros padding gives masks id 0 outside"
        );
        assert_eq!(aug.describe(), "rotate 45.0");
    }

    #[test]
    fn reflection_padding() {
        assert_eq!(reflect(-1.5, -0.5, 9.5), 0.5);
        assert_eq!(reflect(10.5, -0.5, 9.5), 8.5);
        assert_eq!(reflect(3.0, -0.5, 9.5), 3.0);
    }
}
