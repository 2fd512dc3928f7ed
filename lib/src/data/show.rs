//! `show_batch`: a grid of training images as the model sees them (augmented), with their labels.

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use std::path::Path;

use super::bunch::ImageDataBunch;
use super::image::open_image;
use super::labels::Labels;
use super::loader::Stats;
use super::transforms::{render, Augment, Transforms};
use super::DataError;
use crate::display::{display, figure::image_grid, Rich};

/// Turns a `(N, 3, H, W)` batch back into 8-bit images, undoing the normalization.
pub fn batch_to_images(x: &Tensor, stats: Option<Stats>) -> Vec<RgbImage> {
    let mut x = x.to_device(Device::Cpu).to_kind(Kind::Float);
    if let Some(s) = stats {
        let mean = Tensor::from_slice(&s.mean).view([1, 3, 1, 1]);
        let std = Tensor::from_slice(&s.std).view([1, 3, 1, 1]);
        x = x * std + mean;
    }
    let (n, h, w) = (x.size()[0], x.size()[2] as u32, x.size()[3] as u32);
    let bytes = (x.clamp(0.0, 1.0) * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous();
    (0..n)
        .map(|i| {
            let v = Vec::<u8>::try_from(bytes.get(i).flatten(0, -1)).expect("u8 tensor to vec");
            RgbImage::from_raw(w, h, v).expect("image buffer size")
        })
        .collect()
}

/// An image file as a validation batch shows it: resized to cover `(h, w)` and centre-cropped.
pub fn open_resized(path: &Path, (h, w): (usize, usize)) -> Result<RgbImage, DataError> {
    let img = open_image(path)?;
    let (h, w) = (h.max(1), w.max(1));
    let mut buf = vec![0f32; 3 * h * w];
    render(&img, h, w, &Augment::center(), None, &mut buf);
    let plane = h * w;
    Ok(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let at = y as usize * w + x as usize;
        let px = |ch: usize| (buf[ch * plane + at].clamp(0.0, 1.0) * 255.0).round() as u8;
        image::Rgb([px(0), px(1), px(2)])
    }))
}

/// An image tensor as an 8-bit picture, the way `plt.imshow` shows it: `(H, W)` or `(1, H, W)`
/// in gray, `(3, H, W)` in colour, values scaled so that the smallest is black and the largest
/// white.
pub fn tensor_to_image(t: &Tensor) -> Result<RgbImage, DataError> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).detach();
    let t = match t.size().as_slice() {
        [_, _] => t.unsqueeze(0).expand([3, -1, -1], false),
        [1, _, _] => t.expand([3, -1, -1], false),
        [3, _, _] => t,
        other => {
            return Err(DataError::Other(format!(
                "show_image takes a (H, W), (1, H, W) or (3, H, W) tensor, not {other:?} \
                 (a flat MNIST row: .view([28, 28]))"
            )))
        }
    };
    let (lo, hi) = (t.min().double_value(&[]), t.max().double_value(&[]));
    let scaled = if hi > lo {
        (t - lo) / (hi - lo)
    } else {
        t.zeros_like()
    };
    Ok(batch_to_images(&scaled.unsqueeze(0), None).remove(0))
}

/// Shows an image tensor inline (fastai v1's `Image(t).show(title=...)`).
pub fn show_image(t: &Tensor, title: &str, figsize: (f32, f32)) -> Result<(), DataError> {
    let img = tensor_to_image(t)?;
    let png = image_grid(&[(img, title.to_string())], 1, 1, figsize);
    display(&Rich::png(png, &format!("image: {title}")));
    Ok(())
}

/// Shows an image file with its mask blended over it, a colour per class id (fastai v1's
/// `img.show(y=mask)`). The mask must have the image's size.
pub fn show_with_mask(image: &Path, mask: &Path, figsize: (f32, f32)) -> Result<(), DataError> {
    let img = open_image(image)?;
    let m = super::image::open_mask(mask)?;
    if m.dimensions() != img.dimensions() {
        return Err(DataError::Other(format!(
            "the mask {} is {}x{} but the image {} is {}x{}",
            mask.display(),
            m.width(),
            m.height(),
            image.display(),
            img.width(),
            img.height()
        )));
    }
    let ids = Tensor::from_slice(m.as_raw()).view([m.height() as i64, m.width() as i64]);
    let title = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let png = image_grid(&[(overlay_mask(&img, &ids), title.clone())], 1, 1, figsize);
    display(&Rich::png(png, &format!("{title} with its mask")));
    Ok(())
}

/// Shows an image file with points `[y, x]` (in its pixels) drawn on it (fastai v1's
/// `img.show(y=points)`).
pub fn show_with_points(
    image: &Path,
    points: &[[f32; 2]],
    figsize: (f32, f32),
) -> Result<(), DataError> {
    let img = open_image(image)?;
    let (h, w) = (img.height() as f32, img.width() as f32);
    let scaled: Vec<f32> = points
        .iter()
        .flat_map(|&[y, x]| [2.0 * y / h - 1.0, 2.0 * x / w - 1.0])
        .collect();
    let pts = Tensor::from_slice(&scaled).view([-1, 2]);
    let title = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let png = image_grid(
        &[(draw_points(&img, &pts, POINT_COLOR), title.clone())],
        1,
        1,
        figsize,
    );
    display(&Rich::png(png, &format!("{title} with its points")));
    Ok(())
}

/// `rows x cols` versions of one image under `tfms`, each drawn afresh (the lesson-6 cells
/// that show what each augmentation does), titled with the drawn parameters. `seed` makes the
/// draws repeatable.
pub fn augmented_versions(
    image: &Path,
    tfms: &Transforms,
    n: usize,
    size: usize,
    seed: u64,
) -> Result<Vec<(RgbImage, String)>, DataError> {
    use rand::SeedableRng;
    let img = open_image(image)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = vec![0f32; 3 * size * size];
    (0..n)
        .map(|_| {
            let aug = tfms.sample(&mut rng);
            render(&img, size, size, &aug, None, &mut buf);
            let plane = size * size;
            let pic = RgbImage::from_fn(size as u32, size as u32, |x, y| {
                let at = y as usize * size + x as usize;
                let px = |c: usize| (buf[c * plane + at].clamp(0.0, 1.0) * 255.0).round() as u8;
                image::Rgb([px(0), px(1), px(2)])
            });
            let title = aug.describe();
            Ok((
                pic,
                if title.is_empty() {
                    "unchanged".into()
                } else {
                    title
                },
            ))
        })
        .collect()
}

/// Shows one image under `tfms` `rows x cols` times (fastai lesson 6's `plots_f`: the image
/// with `apply_tfms` drawn again in every cell).
pub fn show_transforms(
    image: &Path,
    tfms: &Transforms,
    (rows, cols): (usize, usize),
    size: usize,
    figsize: (f32, f32),
) -> Result<(), DataError> {
    let cells = augmented_versions(image, tfms, rows * cols, size, rand::random())?;
    let png = image_grid(&cells, rows, cols, figsize);
    display(&Rich::png(
        png,
        &format!("{} augmented versions of {}", rows * cols, image.display()),
    ));
    Ok(())
}

/// One image file as a batch of one, `(1, 3, H, W)` on `device`: resized, centre-cropped and
/// normalized with `stats` (if any) as validation images are.
pub fn one_item(
    image: &Path,
    (h, w): (usize, usize),
    stats: Option<Stats>,
    device: Device,
) -> Result<Tensor, DataError> {
    let img = open_image(image)?;
    let mut buf = vec![0f32; 3 * h * w];
    render(
        &img,
        h,
        w,
        &Augment::center(),
        stats.map(|s| (s.mean, s.std)),
        &mut buf,
    );
    Ok(Tensor::from_slice(&buf)
        .view([1, 3, h as i64, w as i64])
        .to_device(device))
}

impl ImageDataBunch {
    /// One image file as a batch of one, `(1, 3, H, W)` on the data's device, resized,
    /// centre-cropped and normalized as validation images are (fastai's `data.one_item(x)`).
    pub fn one_item(&self, image: &Path) -> Result<Tensor, DataError> {
        one_item(image, self.size, self.stats, self.device())
    }

    /// Shows `rows x rows` training images with their labels (fastai: `data.show_batch(rows=3,
    /// figsize=(7,6))`), inline in a notebook or as a PNG file in a plain program. Each call
    /// shows other images (another epoch's shuffle and augmentation); training is not affected.
    pub fn show_batch(&self, rows: usize, figsize: (f32, f32)) -> Result<(), DataError> {
        let png = self.show_batch_png(rows, figsize)?;
        display(&Rich::png(
            png,
            &format!("{rows}x{rows} training images with labels"),
        ));
        Ok(())
    }

    /// The `show_batch` figure as PNG bytes.
    pub fn show_batch_png(&self, rows: usize, figsize: (f32, f32)) -> Result<Vec<u8>, DataError> {
        let rows = rows.max(1);
        let want = rows * rows;
        let mut pairs: Vec<(RgbImage, String)> = Vec::new();
        // epochs counted down from the top, far from the ones training uses
        let shown = self
            .shown
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut it = self.train_dl.iter_epoch(u64::MAX - shown);
        while pairs.len() < want {
            let Some(b) = it.next() else { break };
            let images = batch_to_images(&b.x, self.stats);
            for (k, (img, &i)) in images.into_iter().zip(&b.indices).enumerate() {
                if pairs.len() < want {
                    pairs.push(self.with_target(img, &b.y.get(k as i64), i));
                }
            }
        }
        drop(it);
        if pairs.is_empty() {
            return Err(DataError::Other(
                "show_batch: the training set gave no images".into(),
            ));
        }
        let cols = rows;
        let rows_used = pairs.len().div_ceil(cols);
        Ok(image_grid(&pairs, rows_used, cols, figsize))
    }

    /// A training image with its target as `show_batch` draws it: a title for classes and
    /// numbers, the mask blended over it, the points drawn on it.
    fn with_target(&self, img: RgbImage, y: &Tensor, item: usize) -> (RgbImage, String) {
        match &self.train_ds.y {
            Labels::Mask(_) => (overlay_mask(&img, y), String::new()),
            Labels::Points(_) => (draw_points(&img, y, POINT_COLOR), String::new()),
            _ => (img, self.train_ds.label(item)),
        }
    }
}

/// A colour per class id (matplotlib's `tab20`, the colour map fastai shows masks with).
pub const PALETTE: [[u8; 3]; 20] = [
    [31, 119, 180],
    [174, 199, 232],
    [255, 127, 14],
    [255, 187, 120],
    [44, 160, 44],
    [152, 223, 138],
    [214, 39, 40],
    [255, 152, 150],
    [148, 103, 189],
    [197, 176, 213],
    [140, 86, 75],
    [196, 156, 148],
    [227, 119, 194],
    [247, 182, 210],
    [127, 127, 127],
    [199, 199, 199],
    [188, 189, 34],
    [219, 219, 141],
    [23, 190, 207],
    [158, 218, 229],
];

/// The colour of target points (fastai draws them in red).
pub const POINT_COLOR: [u8; 3] = [230, 30, 30];

/// `img` with a mask of class ids `(H, W)` blended over it at alpha 0.5, a colour per id.
pub fn overlay_mask(img: &RgbImage, mask: &Tensor) -> RgbImage {
    let mask = mask.to_device(Device::Cpu).to_kind(Kind::Int64);
    let (h, w) = (mask.size()[0] as u32, mask.size()[1] as u32);
    let ids = Vec::<i64>::try_from(mask.flatten(0, -1)).expect("int64 mask");
    let mut out = if img.dimensions() == (w, h) {
        img.clone()
    } else {
        image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
    };
    for (px, &id) in out.pixels_mut().zip(&ids) {
        let c = PALETTE[id.rem_euclid(PALETTE.len() as i64) as usize];
        for k in 0..3 {
            px.0[k] = ((px.0[k] as u16 + c[k] as u16) / 2) as u8;
        }
    }
    out
}

/// `img` with points `(P, 2)` (`[y, x]` in [-1, 1], as targets are) drawn as dots.
pub fn draw_points(img: &RgbImage, pts: &Tensor, color: [u8; 3]) -> RgbImage {
    let mut out = img.clone();
    let (w, h) = (img.width() as f32, img.height() as f32);
    let v = Vec::<f32>::try_from(
        pts.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )
    .expect("float points");
    let r = (w.min(h) / 40.0).max(2.0);
    for p in v.chunks(2) {
        let (cy, cx) = ((p[0] + 1.0) * h / 2.0, (p[1] + 1.0) * w / 2.0);
        let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
        let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
        for y in y0.max(0)..y1.min(h as i64) {
            for x in x0.max(0)..x1.min(w as i64) {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r {
                    out.put_pixel(x as u32, y as u32, image::Rgb(color));
                }
            }
        }
    }
    out
}
