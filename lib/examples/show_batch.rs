//! Draws `show_batch` for the offline Fashion-MNIST images (installed by install.sh) to a PNG.
//!
//! cargo run --release --example show_batch -- [out.png]

use fastai::vision::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "show_batch.png".into());
    let path = fashion_mnist_dir();
    let mut data = ImageDataBunch::from_folder(
        &path,
        DataOptions::default()
            .folders("train", "test")
            .tfms(get_transforms())
            .size(64)
            .bs(16),
    )?
    .normalize(imagenet_stats());
    println!("{data}");
    let png = data.show_batch_png(3, (7.0, 6.0))?;
    std::fs::write(&out, png)?;
    println!("wrote {out}");
    Ok(())
}
