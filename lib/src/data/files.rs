//! Finding files: `get_image_files` and a `ls()` for paths, as in the lesson's `path.ls()`.

use std::path::{Path, PathBuf};

use super::DataError;

/// File extensions (lower case) that count as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff"];

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

/// All image files under `path`, in sub-folders too, sorted (so splits are reproducible).
///
/// ```no_run
/// # use fastai::data::get_image_files;
/// let fnames = get_image_files("/data/oxford-iiit-pet/images").unwrap();
/// println!("{} images, first {}", fnames.len(), fnames[0].display());
/// ```
pub fn get_image_files(path: impl AsRef<Path>) -> Result<Vec<PathBuf>, DataError> {
    get_files(path, IMAGE_EXTENSIONS, true)
}

/// Files under `path` whose extension is one of `extensions` (all files if it is empty), sorted.
/// Hidden files and folders (names starting with '.') are skipped.
pub fn get_files(
    path: impl AsRef<Path>,
    extensions: &[&str],
    recurse: bool,
) -> Result<Vec<PathBuf>, DataError> {
    let root = path.as_ref();
    if !root.is_dir() {
        return Err(DataError::Other(format!(
            "{} is not a folder{}",
            root.display(),
            if root.exists() {
                ""
            } else {
                " (it does not exist)"
            }
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| DataError::Io {
            op: "listing",
            path: dir.clone(),
            source: e,
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| DataError::Io {
                op: "listing",
                path: dir.clone(),
                source: e,
            })?;
            let p = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type().map_err(|e| DataError::Io {
                op: "inspecting",
                path: p.clone(),
                source: e,
            })?;
            // follow symlinks to files/folders like Python's os.walk(followlinks=False) would not;
            // we resolve them once, which is what datasets with linked images expect
            let is_dir = ft.is_dir() || (ft.is_symlink() && p.is_dir());
            if is_dir {
                if recurse {
                    stack.push(p);
                }
            } else if extensions.is_empty()
                || p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `path.ls()`: the entries of a folder, sorted.
pub trait PathExt {
    /// The folder's entries (files and folders), sorted by name; empty if it cannot be read.
    fn ls(&self) -> Vec<PathBuf>;
}

impl<P: AsRef<Path>> PathExt for P {
    fn ls(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(self.as_ref()) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_images_recursively_sorted_and_skips_others() {
        let dir = std::env::temp_dir().join(format!("fastai-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b/sub")).unwrap();
        std::fs::create_dir_all(dir.join(".hidden")).unwrap();
        for f in [
            "b/z.JPG",
            "a.png",
            "b/sub/c.jpeg",
            "notes.txt",
            ".hidden/x.jpg",
            "b/.y.png",
        ] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let found = get_image_files(&dir).unwrap();
        let rel: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(rel, vec!["a.png", "b/sub/c.jpeg", "b/z.JPG"]);
        assert_eq!(dir.ls().len(), 4); // a.png, b, notes.txt, .hidden
        assert!(get_image_files(dir.join("missing"))
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
