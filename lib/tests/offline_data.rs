//! The offline Fashion-MNIST images `install.sh` writes: all 70,000, in the promised layout, as
//! real 28x28 grayscale PNGs. Needs `./install.sh` to have run.

use std::path::Path;

const CLASSES: [&str; 10] = [
    "tshirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
];

fn count_pngs(dir: &Path, class: &str) -> usize {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for e in entries {
        let name = e.unwrap().file_name().into_string().unwrap();
        // <class>_<index>.png: the lesson's regex r"/([^/]+)_\d+.png$" labels it by name too
        let stem = name
            .strip_suffix(".png")
            .unwrap_or_else(|| panic!("not a png: {name}"));
        let (label, index) = stem.rsplit_once('_').unwrap();
        assert_eq!(label, class, "{name} in folder {class}");
        index
            .parse::<u32>()
            .unwrap_or_else(|_| panic!("bad index in {name}"));
        n += 1;
    }
    n
}

#[test]
fn fashion_mnist_has_every_image_in_class_folders() {
    let root = fastai::config::fashion_mnist_dir();
    assert!(
        root.join("classes.txt").is_file(),
        "{} is missing or incomplete: run ./install.sh",
        root.display()
    );
    let listed = std::fs::read_to_string(root.join("classes.txt")).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), CLASSES);
    for (split, per_class) in [("train", 6000), ("test", 1000)] {
        for class in CLASSES {
            assert_eq!(
                count_pngs(&root.join(split).join(class), class),
                per_class,
                "{split}/{class}"
            );
        }
    }
}

#[test]
fn fashion_mnist_pngs_are_28x28_grayscale() {
    let dir = fastai::config::fashion_mnist_dir()
        .join("train")
        .join("ankle_boot");
    let first = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&first).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", first.display());
    // IHDR: width, height (big-endian u32), bit depth 8, colour type 0 (grayscale)
    assert_eq!(&bytes[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 28);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 28);
    assert_eq!(bytes[24], 8);
    assert_eq!(bytes[25], 0);
}
