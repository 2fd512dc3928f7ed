//! A quick lesson-1-style run on a slice of the offline Fashion-MNIST images (development aid).
//! cargo run --release --example fashion_quick -- [n_per_class] [size] [arch] [workers|device]
//!
//! The last argument says where the augmentation runs (`AugmentOn`; default: workers on CPU).
use fastai::vision::*;

fn main() -> fastai::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let per: usize = args.get(1).map_or(100, |s| s.parse().unwrap());
    let size: usize = args.get(2).map_or(64, |s| s.parse().unwrap());
    let arch = Arch::from_name(args.get(3).map_or("mobilenet_v2", |s| s.as_str())).unwrap();
    let on = match args.get(4).map(String::as_str) {
        None | Some("workers") => AugmentOn::Workers,
        Some("device") => AugmentOn::Device,
        Some(o) => panic!("augment on `workers` or `device`, not `{o}`"),
    };
    let root = fashion_mnist_dir();
    let mut files = Vec::new();
    for class in std::fs::read_to_string(root.join("classes.txt"))?.lines() {
        let mut f = get_image_files(root.join("train").join(class))?;
        f.truncate(per);
        files.extend(f);
    }
    let labels = files
        .iter()
        .map(|p| {
            p.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let opts = DataOptions::default()
        .tfms(get_transforms().do_flip(true))
        .size(size)
        .augment_on(on)
        .bs(32);
    let data = ImageDataBunch::from_lists(&root, files, labels, opts)?.normalize(imagenet_stats());
    println!("{data}");
    let mut learn = cnn_learner(data, arch, &[error_rate])?;
    let t = std::time::Instant::now();
    learn.fit_one_cycle(2, None)?;
    println!(
        "frozen fit: {:.1} s, augment on {on:?}",
        t.elapsed().as_secs_f64()
    );
    let lr = learn.lr_find()?;
    println!(
        "lr_find: steep {:.2e}, min/10 {:.2e}",
        lr.lr_steep, lr.lr_min
    );
    learn.unfreeze();
    learn.fit_one_cycle(1, Some(slice(1e-5, 1e-3)))?;
    Ok(())
}
