//! `show_batch`: a grid of training images as the model sees them (augmented), with their labels.

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use std::path::Path;

use super::bunch::ImageDataBunch;
use super::image::open_image;
use super::transforms::{render, Augment};
use super::loader::Stats;
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

impl ImageDataBunch {
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
        let (mut images, mut titles) = (Vec::new(), Vec::new());
        let stats = self.stats;
        // epochs counted down from the top, far from the ones training uses
        let shown = self
            .shown
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut it = self.train_dl.iter_epoch(u64::MAX - shown);
        while images.len() < want {
            let Some(b) = it.next() else { break };
            for (img, &i) in batch_to_images(&b.x, stats).into_iter().zip(&b.indices) {
                if images.len() < want {
                    images.push(img);
                    titles.push(self.train_ds.label(i).to_string());
                }
            }
        }
        drop(it);
        if images.is_empty() {
            return Err(DataError::Other(
                "show_batch: the training set gave no images".into(),
            ));
        }
        let cols = rows;
        let rows_used = images.len().div_ceil(cols);
        let pairs: Vec<(RgbImage, String)> = images.into_iter().zip(titles).collect();
        Ok(image_grid(&pairs, rows_used, cols, figsize))
    }
}
