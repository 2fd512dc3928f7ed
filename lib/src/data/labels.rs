//! Labelling items and splitting them into training and validation sets.
//!
//! Labels come from a regex on the file's full path (group 1 is the label, as fastai's
//! `label_from_re`), from a function of the path, from the parent folder's name, or from a list.
//! Classes are the sorted distinct labels; the random split is reproducible from its seed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use regex::Regex;

use super::DataError;

/// The targets of a list of items, one per item, of one kind.
///
/// | kind | one item's target | batch `y` | default loss |
/// | --- | --- | --- | --- |
/// | `Category` | a class index | `(N,)` Int64 | cross-entropy |
/// | `MultiCategory` | the indices of the classes present | `(N, C)` Float multi-hot | BCE with logits |
/// | `Mask` | the path of a mask image of class ids (`codes`) | `(N, H, W)` Int64 | per-pixel cross-entropy |
/// | `Points` | points `[y, x]` in the image's pixels | `(N, P, 2)` Float in [-1, 1] | MSE |
/// | `Float` | numbers | `(N, K)` Float | MSE |
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    Category(Vec<usize>),
    MultiCategory(Vec<Vec<usize>>),
    Mask(Vec<PathBuf>),
    /// `[y, x]` in continuous pixel coordinates of the source image (the image spans
    /// `[0, height) x [0, width)`), as fastai's `ImagePoints`.
    Points(Vec<Vec<[f32; 2]>>),
    Float(Vec<Vec<f32>>),
}

impl Labels {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            Labels::Category(v) => v.len(),
            Labels::MultiCategory(v) => v.len(),
            Labels::Mask(v) => v.len(),
            Labels::Points(v) => v.len(),
            Labels::Float(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The kind's name, for messages: "category", "multi-category", "mask", "points", "float".
    pub fn kind(&self) -> &'static str {
        match self {
            Labels::Category(_) => "category",
            Labels::MultiCategory(_) => "multi-category",
            Labels::Mask(_) => "mask",
            Labels::Points(_) => "points",
            Labels::Float(_) => "float",
        }
    }
    /// The same kind of targets for the items at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Labels {
        fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
            idx.iter().map(|&i| v[i].clone()).collect()
        }
        match self {
            Labels::Category(v) => Labels::Category(pick(v, indices)),
            Labels::MultiCategory(v) => Labels::MultiCategory(pick(v, indices)),
            Labels::Mask(v) => Labels::Mask(pick(v, indices)),
            Labels::Points(v) => Labels::Points(pick(v, indices)),
            Labels::Float(v) => Labels::Float(pick(v, indices)),
        }
    }
}

/// Items with their targets, and the class names (the segmentation codes for masks).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelList {
    pub items: Vec<PathBuf>,
    /// One target per item.
    pub y: Labels,
    /// Class names (`Category`, `MultiCategory`) or codes (`Mask`); empty otherwise.
    pub classes: Vec<String>,
}

impl LabelList {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Item `i`'s target as text: the class name; the class names joined by `;` (as fastai
    /// shows multi-labels); the mask file's name; the points; the numbers.
    pub fn label(&self, i: usize) -> String {
        match &self.y {
            Labels::Category(v) => self.classes[v[i]].clone(),
            Labels::MultiCategory(v) => v[i]
                .iter()
                .map(|&c| self.classes[c].as_str())
                .collect::<Vec<_>>()
                .join(";"),
            Labels::Mask(v) => v[i]
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Labels::Points(v) => v[i]
                .iter()
                .map(|p| format!("({:.1}, {:.1})", p[0], p[1]))
                .collect::<Vec<_>>()
                .join(" "),
            Labels::Float(v) => v[i]
                .iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
    /// The class index of every item, for single-label data (`None` for other targets).
    pub fn categories(&self) -> Option<&[usize]> {
        match &self.y {
            Labels::Category(v) => Some(v),
            _ => None,
        }
    }
    /// Keeps the items at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> LabelList {
        LabelList {
            items: indices.iter().map(|&i| self.items[i].clone()).collect(),
            y: self.y.subset(indices),
            classes: self.classes.clone(),
        }
    }
}

/// Builds a single-label [`LabelList`] from items and their label strings; classes sorted.
pub fn label_list(items: Vec<PathBuf>, names: Vec<String>) -> LabelList {
    let classes: Vec<String> = names
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let labels = names
        .iter()
        .map(|n| classes.binary_search(n).expect("class present"))
        .collect();
    LabelList {
        items,
        y: Labels::Category(labels),
        classes,
    }
}

/// Labels each file by `pat` searched on its full path (group 1, or the whole match).
///
/// Files the pattern does not match are an error listing a few of them, unless `skip_unmatched`:
/// then they are dropped with one warning that counts them.
pub fn label_from_re(
    fnames: &[PathBuf],
    pat: &str,
    skip_unmatched: bool,
) -> Result<(Vec<PathBuf>, Vec<String>), DataError> {
    let re = Regex::new(pat).map_err(|e| {
        DataError::Label(format!("the pattern r\"{pat}\" is not a valid regex: {e}"))
    })?;
    label_from_func_inner(
        fnames,
        |p| {
            let s = path_str(p);
            re.captures(&s).map(|c| {
                c.get(1)
                    .or_else(|| c.get(0))
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default()
            })
        },
        skip_unmatched,
        &format!("the pattern r\"{pat}\""),
    )
}

/// Labels each file by `f(path)`; `None` means "no label" (an error unless `skip_unmatched`).
pub fn label_from_func(
    fnames: &[PathBuf],
    f: impl Fn(&Path) -> Option<String>,
    skip_unmatched: bool,
) -> Result<(Vec<PathBuf>, Vec<String>), DataError> {
    label_from_func_inner(fnames, f, skip_unmatched, "the labelling function")
}

/// Labels each file by the name of the folder it is in (ImageNet style: `train/dog/1.jpg` -> dog).
pub fn label_from_folder(fnames: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<String>), DataError> {
    label_from_func_inner(
        fnames,
        |p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        },
        false,
        "the parent folder",
    )
}

fn label_from_func_inner(
    fnames: &[PathBuf],
    f: impl Fn(&Path) -> Option<String>,
    skip_unmatched: bool,
    what: &str,
) -> Result<(Vec<PathBuf>, Vec<String>), DataError> {
    if fnames.is_empty() {
        return Err(DataError::Label(
            "there are no files to label (the list is empty)".into(),
        ));
    }
    let mut items = Vec::with_capacity(fnames.len());
    let mut names = Vec::with_capacity(fnames.len());
    let mut missed = Vec::new();
    for p in fnames {
        match f(p).filter(|s| !s.is_empty()) {
            Some(name) => {
                items.push(p.clone());
                names.push(name);
            }
            None => missed.push(p),
        }
    }
    if items.is_empty() {
        return Err(DataError::Label(format!(
            "{what} matched none of {} files; first file: {}",
            fnames.len(),
            fnames[0].display()
        )));
    }
    if !missed.is_empty() {
        let examples: Vec<String> = missed
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        let more = if missed.len() > 3 {
            format!(" (and {} more)", missed.len() - 3)
        } else {
            String::new()
        };
        if !skip_unmatched {
            return Err(DataError::Label(format!(
                "{what} matched {} of {} files; these did not: {}{more}. Fix the pattern, or pass \
                 skip_unmatched(true) to leave them out",
                items.len(),
                fnames.len(),
                examples.join(", ")
            )));
        }
        eprintln!(
            "warning: {what} did not match {} of {} files, left out: {}{more}",
            missed.len(),
            fnames.len(),
            examples.join(", ")
        );
    }
    Ok((items, names))
}

/// The path as a string with '/' separators (patterns are written that way).
fn path_str(p: &Path) -> String {
    let s = p.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

/// Splits `0..n` at random into (train, valid) indices, `valid_pct` of them for validation,
/// reproducibly from `seed`. Both lists are sorted.
pub fn split_by_rand_pct(
    n: usize,
    valid_pct: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if !(0.0..1.0).contains(&valid_pct) {
        return Err(DataError::Label(format!(
            "valid_pct must be in [0, 1), got {valid_pct}"
        )));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n_valid = (n as f64 * valid_pct).round() as usize;
    let mut valid = idx[..n_valid].to_vec();
    let mut train = idx[n_valid..].to_vec();
    valid.sort_unstable();
    train.sort_unstable();
    Ok((train, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pets() -> Vec<PathBuf> {
        [
            "Abyssinian_12.jpg",
            "american_bulldog_3.jpg",
            "Abyssinian_1.jpg",
            "great_pyrenees_110.jpg",
        ]
        .iter()
        .map(|n| PathBuf::from(format!("/data/oxford-iiit-pet/images/{n}")))
        .collect()
    }

    #[test]
    fn lesson_pattern_labels_pets() {
        let (items, names) = label_from_re(&pets(), r"/([^/]+)_\d+.jpg$", false).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(
            names,
            vec![
                "Abyssinian",
                "american_bulldog",
                "Abyssinian",
                "great_pyrenees"
            ]
        );
        let ll = label_list(items, names);
        assert_eq!(
            ll.classes,
            vec!["Abyssinian", "american_bulldog", "great_pyrenees"]
        );
        assert_eq!(ll.categories().unwrap(), [0, 1, 0, 2]);
    }

    #[test]
    fn pattern_errors_show_the_pattern_and_files() {
        let err = label_from_re(&pets(), r"/(\d+)_cat.png$", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r"/(\d+)_cat.png$")
                && err.contains("none of 4 files")
                && err.contains("Abyssinian_12.jpg"),
            "{err}"
        );
        let mut files = pets();
        files.push(PathBuf::from("/data/images/readme.txt"));
        let err = label_from_re(&files, r"/([^/]+)_\d+.jpg$", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("matched 4 of 5") && err.contains("readme.txt"),
            "{err}"
        );
        let (items, _) = label_from_re(&files, r"/([^/]+)_\d+.jpg$", true).unwrap();
        assert_eq!(items.len(), 4);
        assert!(label_from_re(&files, r"([", false)
            .unwrap_err()
            .to_string()
            .contains("not a valid regex"));
    }

    #[test]
    fn folder_labels() {
        let files = vec![
            PathBuf::from("/d/train/3/a.png"),
            PathBuf::from("/d/train/7/b.png"),
        ];
        assert_eq!(label_from_folder(&files).unwrap().1, vec!["3", "7"]);
    }

    #[test]
    fn split_is_deterministic_and_complete() {
        let (t1, v1) = split_by_rand_pct(100, 0.2, 42).unwrap();
        let (t2, v2) = split_by_rand_pct(100, 0.2, 42).unwrap();
        assert_eq!((&t1, &v1), (&t2, &v2));
        assert_eq!(v1.len(), 20);
        let mut all: Vec<usize> = t1.iter().chain(&v1).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let (_, v3) = split_by_rand_pct(100, 0.2, 43).unwrap();
        assert_ne!(v1, v3, "another seed, another split");
        assert!(split_by_rand_pct(10, 1.5, 0).is_err());
    }
}
