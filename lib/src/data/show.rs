//! `show_batch`: a grid of training images as the model sees them (augmented), with their labels.

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use super::bunch::ImageDataBunch;
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

impl ImageDataBunch {
    /// Shows `rows x rows` training images with their labels (fastai: `data.show_batch(rows=3,
    /// figsize=(7,6))`), inline in a notebook or as a PNG file in a plain program.
    pub fn show_batch(&mut self, rows: usize, figsize: (f32, f32)) -> Result<(), DataError> {
        let png = self.show_batch_png(rows, figsize)?;
        display(&Rich::png(
            png,
            &format!("{rows}x{rows} training images with labels"),
        ));
        Ok(())
    }

    /// The `show_batch` figure as PNG bytes.
    pub fn show_batch_png(
        &mut self,
        rows: usize,
        figsize: (f32, f32),
    ) -> Result<Vec<u8>, DataError> {
        let rows = rows.max(1);
        let want = rows * rows;
        let (mut images, mut titles) = (Vec::new(), Vec::new());
        let stats = self.stats;
        let mut it = self.train_dl.iter();
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
