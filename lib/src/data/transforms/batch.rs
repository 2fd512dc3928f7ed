//! The batch renderer: [`render`](super::render)'s augmentation for a whole batch of byte
//! pictures in a few tensor operations on the batch's device (the loader's
//! [`AugmentOn::Device`](crate::data::AugmentOn) path), with the same geometry, lighting, padding
//! and normalization as the per-image renderer.

use super::{channel_luts, mat3, pixel_map, rescale, Augment, PaddingMode};
#[cfg(doc)]
use super::{presize, render};

/// [`render`] for a whole batch at once, on the batch's device (a GPU when it is there): `src`
/// holds `N` source pictures of one size as bytes, `[N, H, W, 3]` (`Kind::Uint8`), and `augs`
/// their `N` drawn augmentations. Returns `[N, 3, h, w]` float32, the values [`render`] gives
/// each picture (the same geometry, lighting, padding and normalization) - except that `render`
/// first shrinks sources more than twice the output size, which this leaves to the caller
/// ([`presize`]; [`render_batch_in`] takes presized pictures of different sizes).
pub fn render_batch(
    src: &tch::Tensor,
    augs: &[Augment],
    size: (usize, usize),
    norm: Option<([f32; 3], [f32; 3])>,
) -> tch::Tensor {
    let s = src.size();
    let dims = (
        s.get(2).copied().unwrap_or(0) as u32,
        s.get(1).copied().unwrap_or(0) as u32,
    );
    let pictures = vec![BatchPicture { dims, full: dims }; augs.len()];
    render_batch_in(src, &pictures, augs, size, norm)
}

/// Where one picture of a batch canvas is: `dims` (width, height) of the bytes at the top-left
/// of its canvas slot, `full` (width, height) of the original picture they were presized from
/// (the geometry - crop, zoom, points, masks - is the original's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPicture {
    pub dims: (u32, u32),
    pub full: (u32, u32),
}

/// [`render_batch`] over a canvas `[N, H, W, 3]` of bytes in which picture `k` fills the
/// top-left `pictures[k].dims` of its slot (the rest is never read): what the loader's workers
/// leave when the augmentation runs on the device ([`presize`]d pictures of different sizes).
///
/// One gather through the per-image lighting tables, one projective grid (every image's
/// pixel map, reflected or clamped into its own picture as [`render`] does) and one bilinear
/// `grid_sample` for the whole batch: the per-pixel work leaves the CPU.
pub fn render_batch_in(
    src: &tch::Tensor,
    pictures: &[BatchPicture],
    augs: &[Augment],
    (h, w): (usize, usize),
    norm: Option<([f32; 3], [f32; 3])>,
) -> tch::Tensor {
    use tch::{Kind, Tensor};
    let size = src.size();
    assert!(
        size.len() == 4
            && size[3] == 3
            && size[0] == augs.len() as i64
            && pictures.len() == augs.len()
            && src.kind() == Kind::Uint8,
        "render_batch: the sources must be [N, H, W, 3] bytes with N = {} augmentations and pictures, not {size:?} {:?} with {} pictures",
        augs.len(),
        src.kind(),
        pictures.len()
    );
    let (n, ch, cw) = (size[0], size[1], size[2]);
    assert!(
        pictures.iter().all(|p| p.dims.0 >= 1
            && p.dims.1 >= 1
            && p.dims.0 as i64 <= cw
            && p.dims.1 as i64 <= ch),
        "render_batch: every picture must fit its {cw}x{ch} canvas slot: {pictures:?}"
    );
    let dev = src.device();
    // lighting (and normalization) as a table lookup on the source bytes, as `render` does
    let mut luts: Vec<f32> = Vec::with_capacity(augs.len() * 3 * 256);
    let mut maps: Vec<f32> = Vec::with_capacity(augs.len() * 9);
    let mut bounds: Vec<f32> = Vec::with_capacity(augs.len() * 2);
    let mut modes: Vec<f32> = Vec::with_capacity(augs.len() * 2);
    for (a, p) in augs.iter().zip(pictures) {
        luts.extend(channel_luts(a, norm).iter().flatten());
        let full = (p.full.0 as f64, p.full.1 as f64);
        let m = mat3(&rescale(p.full, p.dims), &pixel_map(a, full, (h, w)));
        maps.extend(m.iter().flatten().map(|&v| v as f32));
        bounds.extend([p.dims.0 as f32, p.dims.1 as f32]);
        modes.extend([
            (a.padding == PaddingMode::Reflection) as u8 as f32,
            (a.padding == PaddingMode::Zeros) as u8 as f32,
        ]);
    }
    let luts = Tensor::from_slice(&luts).view([n, 3, 256]).to_device(dev);
    let idx = src
        .permute([0, 3, 1, 2])
        .reshape([n, 3, ch * cw])
        .to_kind(Kind::Int64);
    let lit = luts.gather(2, &idx, false).view([n, 3, ch, cw]);
    // every output pixel centre (column j, row i, 1) through its image's map
    let m = Tensor::from_slice(&maps).view([n, 3, 3]).to_device(dev);
    let opts = (Kind::Float, dev);
    let jj = Tensor::arange(w as i64, opts)
        .view([1, w as i64])
        .expand([h as i64, w as i64], false);
    let ii = Tensor::arange(h as i64, opts)
        .view([h as i64, 1])
        .expand([h as i64, w as i64], false);
    let ones = Tensor::ones([h as i64, w as i64], opts);
    let pts = Tensor::stack(&[jj, ii, ones], 0).view([1, 3, (h * w) as i64]);
    let q = m.matmul(&pts); // [n, 3, h*w]
    let (px, py) = (
        q.select(1, 0) / q.select(1, 2),
        q.select(1, 1) / q.select(1, 2),
    );
    // Each picture's own edges: reflection about them (else none), then clamping into the
    // picture, as `render` does - so the canvas beyond a picture is never read.
    let bounds = Tensor::from_slice(&bounds).view([n, 2]).to_device(dev);
    let modes = Tensor::from_slice(&modes).view([n, 2]).to_device(dev);
    let (bw, bh) = (
        bounds.select(1, 0).view([n, 1]),
        bounds.select(1, 1).view([n, 1]),
    );
    let (reflecting, zeros) = (
        modes.select(1, 0).view([n, 1]).gt(0.5),
        modes.select(1, 1).view([n, 1]).gt(0.5),
    );
    let place = |p: &Tensor, span: &Tensor| -> Tensor {
        // reflect into [-0.5, span - 0.5]: t = (p + 0.5) mod 2 span, folded back past span
        let t = (p + 0.5).remainder_tensor(&(span * 2.0));
        let folded = t.where_self(&t.le_tensor(span), &(span * 2.0 - &t)) - 0.5;
        let r = folded.where_self(&reflecting, p);
        r.maximum(&r.zeros_like()).minimum(&(span - 1.0))
    };
    let (sx, sy) = (place(&px, &bw), place(&py, &bh));
    // source pixel centres -> grid_sample's [-1, 1] on the canvas (align_corners = false)
    let gx = (&sx * 2.0 + 1.0) / cw as f64 - 1.0;
    let gy = (&sy * 2.0 + 1.0) / ch as f64 - 1.0;
    let grid = Tensor::stack(&[gx, gy], 2).view([n, h as i64, w as i64, 2]);
    // bilinear, border padding (never needed: every coordinate is inside its picture)
    let out = lit.grid_sampler(&grid, 0, 1, false);
    // zeros padding: outside the picture, the table's value for a black byte
    let outside = px
        .lt(-0.5)
        .logical_or(&py.lt(-0.5))
        .logical_or(&px.gt_tensor(&(&bw - 0.5)))
        .logical_or(&py.gt_tensor(&(&bh - 0.5)))
        .logical_and(&zeros)
        .view([n, 1, h as i64, w as i64]);
    let black = luts.select(2, 0).view([n, 3, 1, 1]);
    out.where_self(&outside.logical_not(), &black)
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn render_batch_equals_render_image_by_image() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // a 40x30 picture with sharp edges and noise
        let img = RgbImage::from_fn(40, 30, |x, y| {
            let n = rng.random::<u8>() / 4;
            if y == 0 {
                image::Rgb([0, 255, n])
            } else if x < 20 {
                image::Rgb([255 - n, n, 0])
            } else {
                image::Rgb([n, 0, 255 - n])
            }
        });
        let (h, w) = (24, 20);
        let norm = Some(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]));
        let mut augs = Vec::new();
        for (k, mode) in [
            PaddingMode::Reflection,
            PaddingMode::Zeros,
            PaddingMode::Border,
        ]
        .into_iter()
        .enumerate()
        {
            let tf = get_transforms()
                .padding_mode(mode)
                .max_rotate(30.0)
                .max_zoom(1.5);
            let mut r = rand::rngs::StdRng::seed_from_u64(k as u64);
            augs.extend((0..6).map(|_| tf.sample(&mut r)));
        }
        augs.push(Augment::center());
        let raw = tch::Tensor::from_slice(img.as_raw()).view([1, 30, 40, 3]);
        let src = raw
            .expand([augs.len() as i64, 30, 40, 3], false)
            .contiguous();
        let batch = render_batch(&src, &augs, (h, w), norm);
        assert_eq!(batch.size(), [augs.len() as i64, 3, h as i64, w as i64]);
        let mut worst = 0f32;
        for (i, a) in augs.iter().enumerate() {
            let mut one = vec![0f32; 3 * h * w];
            render(&img, h, w, a, norm, &mut one);
            let got = Vec::<f32>::try_from(batch.get(i as i64).flatten(0, -1)).unwrap();
            for (g, e) in got.iter().zip(&one) {
                worst = worst.max((g - e).abs());
            }
        }
        // the same values up to float32 rounding of the coordinates
        // (measured: 2e-5; a quarter-pixel shift of the grid gives differences above 1)
        assert!(worst < 1e-4, "largest difference {worst}");
    }
}
