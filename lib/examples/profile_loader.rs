//! Where the loader's time goes, single-threaded: decode vs augment+resample (development aid).
//! cargo run --release --example profile_loader -- DIR
use std::time::Instant;

use fastai::data::image::open_image;
use fastai::data::transforms::{get_transforms, render};
use fastai::vision::*;
use rand::SeedableRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: profile_loader DIR")?;
    let files = get_image_files(&dir)?;
    let t0 = Instant::now();
    let imgs: Vec<_> = files
        .iter()
        .map(|f| open_image(f))
        .collect::<Result<_, _>>()?;
    let decode = t0.elapsed().as_secs_f64() / files.len() as f64;
    let tfms = get_transforms();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut out = vec![0f32; 3 * 224 * 224];
    let t1 = Instant::now();
    for img in &imgs {
        let aug = tfms.sample(&mut rng);
        render(img, 224, 224, &aug, None, &mut out);
    }
    let render_t = t1.elapsed().as_secs_f64() / files.len() as f64;
    println!(
        "per image: decode {:.2} ms, augment+resample {:.2} ms",
        decode * 1e3,
        render_t * 1e3
    );
    Ok(())
}
