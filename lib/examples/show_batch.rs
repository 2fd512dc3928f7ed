//! Draws `show_batch` to a PNG: the offline Fashion-MNIST images (installed by install.sh), or a
//! folder of JPEGs named like the Oxford pets (`Abyssinian_12.jpg`).
//!
//! cargo run --release --example show_batch -- [out.png] [pets folder]

use fastai::vision::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "show_batch.png".into());
    let data = match std::env::args().nth(2) {
        Some(dir) => {
            let fnames = get_image_files(&dir)?;
            let opts = DataOptions::default()
                .tfms(get_transforms())
                .size(224)
                .bs(16);
            ImageDataBunch::from_name_re(&dir, &fnames, r"/([^/]+)_\d+.jpg$", opts)?
        }
        None => {
            let opts = DataOptions::default()
                .folders("train", "test")
                .tfms(get_transforms())
                .size(64)
                .bs(16);
            ImageDataBunch::from_folder(fashion_mnist_dir(), opts)?
        }
    };
    let data = data.normalize(imagenet_stats());
    println!("{data}");
    let png = data.show_batch_png(3, (7.0, 6.0))?;
    std::fs::write(&out, png)?;
    println!("wrote {out}");
    Ok(())
}
