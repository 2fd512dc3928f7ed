//! Grad-CAM: where in an image the network looked for a class (lesson 6's heatmap, fastai v1's
//! `plot_top_losses(heatmap=True)`).
//!
//! Hook the body's output and its gradient, take the gradient of the class's score, average it
//! over the positions (one weight per channel), weigh the channels of the activation map with
//! it, keep the positive part and scale it up to the image.

use std::path::Path;

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use super::plots::titled_grid;
use super::ClassificationInterpretation;
use crate::bail;
use crate::data::show::{one_item, open_resized};
use crate::display::{display, Rich};
use crate::error::Result;
use crate::learner::Learner;
use crate::models::{ImagenetClassifier, Model};

/// The hook point Grad-CAM reads by default: the body's output (a `cnn_learner` model's).
pub const BODY: &str = "body";

impl Learner {
    /// The Grad-CAM map of `image` for `class` (`None`: the predicted class), at the data's
    /// image size, `(H, W)` in [0, 1] on the CPU; with the class used.
    pub fn grad_cam(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
    ) -> Result<(Tensor, usize)> {
        self.grad_cam_at(image, class, BODY)
    }

    /// [`grad_cam`](Self::grad_cam) on the activations of another hook point (a layer name such
    /// as `layer3` for a resnet, or a point of your own model).
    pub fn grad_cam_at(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
        point: &str,
    ) -> Result<(Tensor, usize)> {
        self.grad_cam_view(image.as_ref(), class, point, self.data.size)
    }

    /// [`grad_cam`](Self::grad_cam) with the picture read at `size x size` instead of the data's
    /// size. The body's map is 1/32 of the picture's side, so a bigger picture gives a finer map;
    /// the model sees things bigger, too, unless the picture is bigger for another reason (an
    /// item on a wide canvas, a photo with more around it).
    pub fn grad_cam_sized(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
        size: usize,
    ) -> Result<(Tensor, usize)> {
        self.grad_cam_view(image.as_ref(), class, BODY, checked_side(size)?)
    }

    /// Grad-CAM of an image batch of one `(1, 3, H, W)`, already normalized.
    pub fn grad_cam_tensor(
        &self,
        x: &Tensor,
        class: Option<usize>,
        point: &str,
    ) -> Result<(Tensor, usize)> {
        grad_cam_model(&*self.model, x, class, point)
    }

    fn grad_cam_view(
        &self,
        image: &Path,
        class: Option<usize>,
        point: &str,
        size: (usize, usize),
    ) -> Result<(Tensor, usize)> {
        let x = one_item(image, size, self.data.stats, self.device())?;
        self.grad_cam_tensor(&x, class, point)
    }

    /// The image (as the model sees it: resized, centre-cropped) with its Grad-CAM map blended
    /// over it.
    pub fn heatmap_image(&self, image: impl AsRef<Path>, class: Option<usize>) -> Result<RgbImage> {
        let (img, _) = self.heatmap_view(image.as_ref(), class, BODY, self.data.size)?;
        Ok(img)
    }

    /// The picture read at `size` with the map of `point` blended over it; with the class used.
    fn heatmap_view(
        &self,
        image: &Path,
        class: Option<usize>,
        point: &str,
        size: (usize, usize),
    ) -> Result<(RgbImage, usize)> {
        let (cam, c) = self.grad_cam_view(image, class, point, size)?;
        let base = open_resized(image, size)?;
        Ok((blend_heatmap(&base, &cam, 0.6), c))
    }

    /// Shows an image with its Grad-CAM map for `class` (default: the predicted class).
    pub fn show_heatmap(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
        figsize: (f32, f32),
    ) -> Result<()> {
        self.show_heatmap_view(image.as_ref(), class, BODY, self.data.size, figsize)
    }

    /// [`show_heatmap`](Self::show_heatmap) with the map of another hook point: an earlier layer
    /// has a finer map (`"features.6"` of a mobilenet body at 64 px: 8x8, where the body's
    /// output is 2x2), at the price of less class-specific features.
    pub fn show_heatmap_at(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
        point: &str,
        figsize: (f32, f32),
    ) -> Result<()> {
        self.show_heatmap_view(image.as_ref(), class, point, self.data.size, figsize)
    }

    /// [`show_heatmap`](Self::show_heatmap) with the picture read at `size x size` (see
    /// [`grad_cam_sized`](Self::grad_cam_sized)).
    pub fn show_heatmap_sized(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
        size: usize,
        figsize: (f32, f32),
    ) -> Result<()> {
        self.show_heatmap_view(image.as_ref(), class, BODY, checked_side(size)?, figsize)
    }

    fn show_heatmap_view(
        &self,
        image: &Path,
        class: Option<usize>,
        point: &str,
        size: (usize, usize),
        figsize: (f32, f32),
    ) -> Result<()> {
        let (img, c) = self.heatmap_view(image, class, point, size)?;
        let title = if point == BODY {
            format!("Grad-CAM: {}", self.data.classes[c])
        } else {
            format!("Grad-CAM at {point}: {}", self.data.classes[c])
        };
        let png = titled_grid(&[(img, title.clone())], 1, 1, figsize);
        display(&Rich::png(png, &title));
        Ok(())
    }
}

/// A picture side for the `_sized` calls: big enough for the body's map to have a cell (32 px),
/// small enough not to run out of memory on one image.
fn checked_side(size: usize) -> Result<(usize, usize)> {
    if !(32..=4096).contains(&size) {
        bail!("a heat map's picture size must be 32 to 4096 pixels (the body's map is 1/32 of it), got {size}");
    }
    Ok((size, size))
}

impl ImagenetClassifier {
    /// The Grad-CAM map of a photo for `class` (`None`: the predicted class) on the last feature
    /// map, `(size, size)` in [0, 1]; with the class used.
    pub fn grad_cam(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
    ) -> Result<(Tensor, usize)> {
        let x = self.one_item(image.as_ref())?;
        grad_cam_model(&self.model, &x, class, Self::LAST_FEATURES)
    }

    /// The photo as the network sees it, with its Grad-CAM map blended over it; with the class.
    pub fn heatmap_image(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
    ) -> Result<(RgbImage, usize)> {
        let image = image.as_ref();
        let (cam, c) = self.grad_cam(image, class)?;
        Ok((blend_heatmap(&self.view(image)?, &cam, 0.6), c))
    }

    /// Shows a photo with where the network looked for `class` (default: its prediction), titled
    /// with the class and its probability.
    pub fn show_heatmap(
        &self,
        image: impl AsRef<Path>,
        class: Option<usize>,
        figsize: (f32, f32),
    ) -> Result<()> {
        let image = image.as_ref();
        let (img, c) = self.heatmap_image(image, class)?;
        let x = self.one_item(image)?;
        let p = tch::no_grad(|| self.model.forward_t(&x, false))
            .softmax(-1, Kind::Float)
            .double_value(&[0, c as i64]);
        let title = format!("Grad-CAM: {} ({p:.2})", self.classes[c]);
        let png = titled_grid(&[(img, title.clone())], 1, 1, figsize);
        display(&Rich::png(png, &title));
        Ok(())
    }
}

impl ClassificationInterpretation {
    /// fastai v1's `plot_top_losses(k, heatmap=True)`: the `k` validation images with the
    /// largest losses, each with the Grad-CAM map of its predicted class over it.
    pub fn plot_top_losses_heatmap(
        &self,
        learn: &Learner,
        k: usize,
        figsize: (f32, f32),
    ) -> Result<()> {
        let png = self.plot_top_losses_heatmap_png(learn, k, figsize)?;
        display(&Rich::png(
            png,
            &format!(
                "the {k} validation images with the largest losses, with where the model looked: \
                 prediction/actual/loss/probability"
            ),
        ));
        Ok(())
    }

    /// The `plot_top_losses_heatmap` figure as PNG bytes.
    pub fn plot_top_losses_heatmap_png(
        &self,
        learn: &Learner,
        k: usize,
        figsize: (f32, f32),
    ) -> Result<Vec<u8>> {
        if self.items().is_empty() {
            bail!("this interpretation has no images: build it with ClassificationInterpretation::from_learner");
        }
        let (_, idx) = self.top_losses(Some(k.max(1)));
        let mut cells = Vec::with_capacity(idx.len());
        for &i in &idx {
            let img = learn.heatmap_image(&self.items()[i], Some(self.preds()[i]))?;
            cells.push((img, self.title(i)));
        }
        let side = (cells.len() as f64).sqrt().ceil() as usize;
        Ok(titled_grid(&cells, side, side, figsize))
    }
}

/// Grad-CAM of any model with hook points (the library's models, `Net::new`): the map of the
/// activations at `point` weighted by the mean gradient of `class`'s score (`None`: the predicted
/// class) per channel, positive part, scaled up bilinearly to `x`'s size `(H, W)` and to [0, 1];
/// with the class used. `x` is one normalized image `(1, 3, H, W)` on the model's device.
pub fn grad_cam_model(
    model: &dyn Model,
    x: &Tensor,
    class: Option<usize>,
    point: &str,
) -> Result<(Tensor, usize)> {
    let Some(taps) = model.taps() else {
        bail!(
            "Grad-CAM needs a model with hook points (the library's models, or Net::new): \
         this one declares none"
        );
    };
    let hook = taps.hook_output(point, true);
    let out = tch::with_grad(|| model.forward_t(x, false));
    let (Some(acts), true) = (hook.stored(), out.dim() == 2) else {
        bail!(
            "Grad-CAM needs a classifier whose model passes the hook point {point:?} \
             (cnn_learner models pass \"body\")"
        );
    };
    let n_out = out.size()[1] as usize;
    let class = match class {
        Some(c) if c < n_out => c,
        Some(c) => bail!("class {c} is not one of the model's {n_out} outputs"),
        None => out.get(0).argmax(0, false).int64_value(&[]) as usize,
    };
    out.get(0).get(class as i64).backward();
    let grads = hook.grad();
    drop(hook);
    // backward() also left gradients on the trainable weights: clear them, so that training
    // afterwards starts from a clean slate
    for (_, v) in model.var_store().variables() {
        let mut v = v.shallow_clone();
        if v.grad().defined() {
            v.zero_grad();
        }
    }
    let Some(grads) = grads else {
        bail!("no gradient reached the hook point {point:?}");
    };
    if acts.dim() != 4 {
        bail!(
            "Grad-CAM needs a (N, C, h, w) activation map at {point:?}, got {:?}",
            acts.size()
        );
    }
    let acts = acts.detach().to_kind(Kind::Float);
    let weights = grads
        .to_kind(Kind::Float)
        .mean_dim(&[2i64, 3][..], true, Kind::Float);
    let cam = (acts * weights)
        .sum_dim_intlist(1, true, Kind::Float)
        .relu();
    let size = [x.size()[2], x.size()[3]];
    let cam = cam
        .upsample_bilinear2d(size, false, None, None)
        .squeeze()
        .to_device(Device::Cpu);
    let top = cam.max().double_value(&[]);
    let cam = if top > 0.0 { cam / top } else { cam };
    Ok((cam, class))
}

/// Shows `map` (any `(h, w)` tensor: a channel average, a Grad-CAM before scaling) over `img`
/// the way the lesson's `show_heatmap` does: scaled up bilinearly to the picture, its range
/// stretched to [0, 1], drawn in `magma` at alpha 0.6.
pub fn show_map(img: &RgbImage, map: &Tensor, title: &str, figsize: (f32, f32)) -> Result<()> {
    if map.dim() != 2 {
        bail!(
            "a heat map is (h, w); got {:?} (average the channels first: acts.mean_dim(...))",
            map.size()
        );
    }
    let (w, h) = img.dimensions();
    let m = map
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .detach()
        .view([1, 1, map.size()[0], map.size()[1]])
        .upsample_bilinear2d([h as i64, w as i64], false, None, None)
        .squeeze();
    let (lo, hi) = (m.min().double_value(&[]), m.max().double_value(&[]));
    let m = if hi > lo {
        (m - lo) / (hi - lo)
    } else {
        m.zeros_like()
    };
    let png = titled_grid(
        &[(blend_heatmap(img, &m, 0.6), title.to_string())],
        1,
        1,
        figsize,
    );
    display(&Rich::png(png, title));
    Ok(())
}

/// Matplotlib's `magma` colour map at a few stops (black - purple - orange - pale yellow), the
/// one fastai draws heatmaps with.
const MAGMA: [[f32; 3]; 6] = [
    [0.0, 0.0, 4.0],
    [59.0, 15.0, 112.0],
    [140.0, 41.0, 129.0],
    [222.0, 73.0, 104.0],
    [254.0, 159.0, 109.0],
    [252.0, 253.0, 191.0],
];

fn magma(t: f32) -> [f32; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (MAGMA.len() - 1) as f32;
    let i = (x.floor() as usize).min(MAGMA.len() - 2);
    let f = x - i as f32;
    let (a, b) = (MAGMA[i], MAGMA[i + 1]);
    [
        a[0] + (b[0] - a[0]) * f,
        a[1] + (b[1] - a[1]) * f,
        a[2] + (b[2] - a[2]) * f,
    ]
}

/// `img` with the map `(H, W)` in [0, 1] drawn over it in `magma` at `alpha` (fastai: 0.6).
pub fn blend_heatmap(img: &RgbImage, cam: &Tensor, alpha: f32) -> RgbImage {
    let (h, w) = (cam.size()[0] as u32, cam.size()[1] as u32);
    let v = Vec::<f32>::try_from(cam.to_kind(Kind::Float).flatten(0, -1)).expect("float map");
    let base = if img.dimensions() == (w, h) {
        img.clone()
    } else {
        image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
    };
    let mut out = base;
    for (px, &t) in out.pixels_mut().zip(&v) {
        let c = magma(t);
        for k in 0..3 {
            px.0[k] = ((1.0 - alpha) * px.0[k] as f32 + alpha * c[k]).round() as u8;
        }
    }
    out
}
