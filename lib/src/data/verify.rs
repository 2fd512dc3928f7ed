//! `verify_images` (lesson 2): find the images in a folder that do not open, optionally delete
//! them, and shrink the ones larger than `max_size`.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use image::{imageops::FilterType, DynamicImage, ImageFormat};
use rayon::prelude::*;

use super::files::get_image_files;
use super::image::decode_image;
use super::DataError;

/// What `verify_images` found and did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct VerifyReport {
    /// Image files looked at.
    pub checked: usize,
    /// Files that could not be read as images, with the reason.
    pub broken: Vec<(PathBuf, String)>,
    /// How many of the broken files were deleted.
    pub deleted: usize,
    /// How many images were shrunk to `max_size`.
    pub resized: usize,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} images checked, {} unreadable",
            self.checked,
            self.broken.len()
        )?;
        if self.deleted > 0 {
            write!(f, " ({} deleted)", self.deleted)?;
        }
        if self.resized > 0 {
            write!(f, ", {} shrunk", self.resized)?;
        }
        Ok(())
    }
}

enum Outcome {
    Ok,
    Resized,
    Broken(String),
}

/// Checks every image file under `path` (recursively) in parallel. Unreadable files (empty,
/// truncated, not an image) are reported, and deleted when `delete` is true. With `max_size`,
/// images whose longer side exceeds it are shrunk to that size (aspect kept) in place: the new
/// file is written beside the old one and renamed over it, so an interruption loses nothing.
pub fn verify_images(
    path: impl AsRef<Path>,
    delete: bool,
    max_size: Option<u32>,
) -> Result<VerifyReport, DataError> {
    let files = get_image_files(path)?;
    let outcomes: Vec<(PathBuf, Outcome)> = files
        .par_iter()
        .map(|p| {
            let outcome = match std::fs::read(p) {
                Err(e) => Outcome::Broken(e.to_string()),
                Ok(bytes) => match decode_image(&bytes) {
                    Err(msg) => Outcome::Broken(msg),
                    Ok(img) => match max_size {
                        Some(m) if img.width().max(img.height()) > m => {
                            match shrink(p, DynamicImage::ImageRgb8(img), m) {
                                Ok(()) => Outcome::Resized,
                                Err(e) => Outcome::Broken(format!("could not shrink it: {e}")),
                            }
                        }
                        _ => Outcome::Ok,
                    },
                },
            };
            (p.clone(), outcome)
        })
        .collect();
    let mut report = VerifyReport {
        checked: files.len(),
        ..Default::default()
    };
    for (p, o) in outcomes {
        match o {
            Outcome::Ok => {}
            Outcome::Resized => report.resized += 1,
            Outcome::Broken(msg) => {
                if delete && std::fs::remove_file(&p).is_ok() {
                    report.deleted += 1;
                }
                report.broken.push((p, msg));
            }
        }
    }
    Ok(report)
}

fn shrink(path: &Path, img: DynamicImage, max_size: u32) -> Result<(), String> {
    let small = img.resize(max_size, max_size, FilterType::Triangle);
    let format = ImageFormat::from_path(path).unwrap_or(ImageFormat::Jpeg);
    crate::error::write_atomically(path, "shrinking the image", |tmp| {
        let encode = || -> Result<(), String> {
            let file = std::fs::File::create(tmp).map_err(|e| e.to_string())?;
            let mut w = BufWriter::new(file);
            if format == ImageFormat::Jpeg {
                let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, 90);
                small
                    .to_rgb8()
                    .write_with_encoder(enc)
                    .map_err(|e| e.to_string())?;
            } else {
                small.write_to(&mut w, format).map_err(|e| e.to_string())?;
            }
            w.into_inner().map_err(|e| e.to_string())?;
            Ok(())
        };
        encode().map_err(crate::error::Error::Msg)
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_deletes_and_shrinks() {
        let dir = std::env::temp_dir().join(format!("fastai-verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("cats")).unwrap();
        let big = image::RgbImage::from_pixel(800, 400, image::Rgb([9, 99, 199]));
        big.save(dir.join("cats/big.jpg")).unwrap();
        image::RgbImage::from_pixel(50, 40, image::Rgb([1, 2, 3]))
            .save(dir.join("cats/small.png"))
            .unwrap();
        std::fs::write(dir.join("cats/empty.jpg"), b"").unwrap();
        std::fs::write(dir.join("cats/html.jpg"), b"<html>404 not found</html>").unwrap();

        let report = verify_images(&dir, false, None).unwrap();
        assert_eq!(
            (report.checked, report.broken.len(), report.deleted),
            (4, 2, 0)
        );
        assert!(
            dir.join("cats/empty.jpg").exists(),
            "nothing deleted unless asked"
        );

        let report = verify_images(&dir, true, Some(200)).unwrap();
        assert_eq!(
            (report.broken.len(), report.deleted, report.resized),
            (2, 2, 1)
        );
        assert!(!dir.join("cats/empty.jpg").exists() && !dir.join("cats/html.jpg").exists());
        let shrunk = image::open(dir.join("cats/big.jpg")).unwrap();
        assert_eq!((shrunk.width(), shrunk.height()), (200, 100));
        assert_eq!(image::open(dir.join("cats/small.png")).unwrap().width(), 50);
        assert_eq!(
            std::fs::read_dir(dir.join("cats")).unwrap().count(),
            2,
            "no temporary files left"
        );
        assert!(report
            .to_string()
            .contains("2 unreadable (2 deleted), 1 shrunk"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
