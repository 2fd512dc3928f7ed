//! `download_images` (lesson 2): fetch the images listed in a file of URLs into a folder.
//!
//! ```no_run
//! use fastai::vision::*;
//! # fn main() -> Result<(), DataError> {
//! let path = fastai::data_dir().join("bears");
//! let report = download_images(path.join("urls_black.csv"), path.join("black"), 200)?;
//! for (url, reason) in &report.failed {
//!     println!("{url}: {reason}");
//! }
//! # Ok(()) }
//! ```
//!
//! The URL file has one image address per line (blank lines are ignored), as the lesson's
//! Google Images recipe writes it. A CSV works too, e.g. an export with a header row such as
//! `url,title,...`: when the first line has a comma and no address, every line is read as CSV
//! and its first `http://` or `https://` field is the URL. (Without a header, a line with
//! spaces, like `https://.../1.jpg, a bear`, is read as CSV too; a line without spaces is one
//! URL, commas included.)
//!
//! Item `i` of the list (counting every non-blank line after the header) becomes
//! `dest/0000000i.<ext>`, 8 digits, so the names follow the file's order and a URL that failed
//! leaves a gap. The extension comes from the URL's path, else from the server's content type,
//! else from the image's own bytes (`.jpg` if all else fails). Each image is written to a hidden
//! temporary file and renamed once complete, so a stopped download never leaves half an image
//! under a real name; running the same call again downloads only what is missing.
//!
//! A URL that fails - an HTTP error, a timeout, a refused connection, a page that is not an image,
//! an address that is not http(s) - is skipped and listed in the report with the reason. Only
//! the image's header is checked here; run [`verify_images`](super::verify_images) afterwards
//! to find files that are truncated or otherwise undecodable.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use image::{ImageFormat, ImageReader};

use super::files::IMAGE_EXTENSIONS;
use super::DataError;
use crate::display::progress::{BarState, ProgressBar};
use crate::learner::interrupt;

/// Options of [`download_images_with`]. `Default` gives fastai v1's defaults: at most 1000
/// images, 8 downloads at a time; each image gets 10 seconds at most.
#[derive(Debug, Clone)]
pub struct DownloadImagesOptions {
    /// Download at most the first `max_pics` URLs of the file.
    pub max_pics: usize,
    /// Downloads running at the same time (threads).
    pub max_workers: usize,
    /// The longest one image may take, from connecting to the last byte.
    pub timeout: Duration,
    /// Images larger than this many bytes are skipped (a guard against huge files).
    pub max_bytes: u64,
}

impl Default for DownloadImagesOptions {
    fn default() -> Self {
        DownloadImagesOptions {
            max_pics: 1000,
            max_workers: 8,
            timeout: Duration::from_secs(10),
            max_bytes: 50_000_000,
        }
    }
}

impl DownloadImagesOptions {
    pub fn max_pics(mut self, n: usize) -> Self {
        self.max_pics = n;
        self
    }
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n;
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }
}

/// What [`download_images`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownloadImagesReport {
    /// The folder the images went to.
    pub dest: PathBuf,
    /// URLs looked at (at most `max_pics`).
    pub urls: usize,
    /// Files written by this call, in URL order.
    pub downloaded: Vec<PathBuf>,
    /// Files that were already there from an earlier call (not downloaded again).
    pub existing: Vec<PathBuf>,
    /// `(url, reason)` of every URL that gave no image, in URL order.
    pub failed: Vec<(String, String)>,
    /// URLs not tried because the stop button (SIGINT) was pressed.
    pub not_tried: usize,
}

impl DownloadImagesReport {
    /// Every image of this list now in `dest` (downloaded now or before), sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self
            .downloaded
            .iter()
            .chain(&self.existing)
            .cloned()
            .collect();
        all.sort();
        all
    }
}

impl fmt::Display for DownloadImagesReport {
    /// One line: counts, where, and the failures grouped by reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} images downloaded to {}",
            self.downloaded.len(),
            self.urls,
            self.dest.display()
        )?;
        if !self.existing.is_empty() {
            write!(f, " ({} were already there)", self.existing.len())?;
        }
        if !self.failed.is_empty() {
            let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, reason) in &self.failed {
                *kinds.entry(reason_kind(reason)).or_default() += 1;
            }
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            write!(
                f,
                "; {} failed: {} (the list is in report.failed)",
                self.failed.len(),
                kinds.join(", ")
            )?;
        }
        if self.not_tried > 0 {
            write!(f, "; stopped, {} not tried", self.not_tried)?;
        }
        Ok(())
    }
}

/// The reason without its details: "HTTP 404 Not Found", "timed out", "not an image", ...
fn reason_kind(reason: &str) -> &str {
    reason.split(" (").next().unwrap_or(reason)
}

/// Downloads up to `max_pics` images listed in the file `urls` into the folder `dest` (fastai:
/// `download_images(path/file, dest, max_pics=200)`), 8 at a time, and prints a one-line
/// summary. See the [module documentation](self) for the file format and the file names.
///
/// Failed URLs are reported, not errors; an error means the URL file cannot be read, has no URL,
/// or `dest` cannot be written.
pub fn download_images(
    urls: impl AsRef<Path>,
    dest: impl AsRef<Path>,
    max_pics: usize,
) -> Result<DownloadImagesReport, DataError> {
    download_images_with(
        urls,
        dest,
        DownloadImagesOptions::default().max_pics(max_pics),
    )
}

/// [`download_images`] with options (workers, timeout, size limit).
pub fn download_images_with(
    urls: impl AsRef<Path>,
    dest: impl AsRef<Path>,
    opts: DownloadImagesOptions,
) -> Result<DownloadImagesReport, DataError> {
    let (urls, dest) = (urls.as_ref(), dest.as_ref());
    let mut entries = read_url_file(urls)?;
    entries.truncate(opts.max_pics);
    std::fs::create_dir_all(dest).map_err(DataError::io("creating folder", dest))?;
    let have = existing_images(dest)?;

    let mut report = DownloadImagesReport {
        dest: dest.to_path_buf(),
        urls: entries.len(),
        ..Default::default()
    };
    // What each entry needs: nothing (already there), a failure (not a URL), or a download.
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(entries.len());
    let mut jobs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        outcomes.push(if let Some(p) = have.get(&i) {
            Some(Outcome::Existing(p.clone()))
        } else {
            match entry {
                Entry::Url(url) => {
                    jobs.push((i, url.clone()));
                    None
                }
                Entry::NotHttp(_) => Some(Outcome::Failed(
                    "not an http(s) URL (only http:// and https:// addresses are downloaded)"
                        .into(),
                )),
            }
        });
    }

    if !jobs.is_empty() {
        interrupt::arm();
        run_jobs(&jobs, dest, &opts, &mut outcomes);
    }

    for (entry, outcome) in entries.iter().zip(outcomes) {
        match outcome {
            Some(Outcome::Existing(p)) => report.existing.push(p),
            Some(Outcome::Written(p)) => report.downloaded.push(p),
            Some(Outcome::Failed(reason)) => report.failed.push((entry.text().into(), reason)),
            None => report.not_tried += 1,
        }
    }
    println!("{report}");
    Ok(report)
}

/// One non-blank line of the URL file.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Url(String),
    /// A line without an http(s) address (kept so that the numbering follows the file).
    NotHttp(String),
}

impl Entry {
    fn text(&self) -> &str {
        match self {
            Entry::Url(s) | Entry::NotHttp(s) => s,
        }
    }
}

fn is_http(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    (lower.starts_with("http://") && s.len() > 7) || (lower.starts_with("https://") && s.len() > 8)
}

/// Reads the URL file: one URL per line, or CSV lines whose first http(s) field is the URL.
fn read_url_file(path: &Path) -> Result<Vec<Entry>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Other(format!(
                "the URL file {} does not exist. Make it first: one image address per line \
                 (in the lesson, from a Google Images search, saved with the browser's \
                 JavaScript console), then call download_images again",
                path.display()
            ))
        } else {
            DataError::io("reading", path)(e)
        }
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text
        .lines()
        .map(|l| l.trim().trim_start_matches('\u{feff}').trim())
        .filter(|l| !l.is_empty())
        .peekable();
    // A first line with a comma and no address is a CSV header: then every line is CSV.
    let csv = lines
        .peek()
        .is_some_and(|l| l.contains(',') && !l.contains("://"));
    if csv {
        lines.next();
    }
    let mut entries = Vec::new();
    for line in lines {
        let one_url = !csv && !line.contains(char::is_whitespace);
        let url = if one_url {
            is_http(line).then(|| line.to_string())
        } else {
            csv_fields(line).into_iter().find(|f| is_http(f))
        };
        entries.push(match url {
            Some(u) => Entry::Url(u),
            None => Entry::NotHttp(line.to_string()),
        });
    }
    if entries.is_empty() {
        return Err(DataError::Other(format!(
            "found no image URLs in {}: expected one http(s) address per line, or a CSV with \
             a header row and an address in each row",
            path.display()
        )));
    }
    Ok(entries)
}

/// The fields of one CSV line (quotes handled), trimmed.
fn csv_fields(line: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(rec)) => rec.iter().map(|f| f.trim().to_string()).collect(),
        _ => vec![line.to_string()],
    }
}

/// Images already in `dest` from an earlier call: index -> path (`00000012.png` -> 12).
/// Temporary files left by a call that was killed (`.00000012.png.<pid>.part`) are removed.
fn existing_images(dest: &Path) -> Result<BTreeMap<usize, PathBuf>, DataError> {
    let mut have = BTreeMap::new();
    for entry in std::fs::read_dir(dest).map_err(DataError::io("listing", dest))? {
        let p = entry.map_err(DataError::io("listing", dest))?.path();
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            let digits = name
                .get(1..9)
                .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
            if name.starts_with('.') && digits && name.ends_with(".part") && p.is_file() {
                let _ = std::fs::remove_file(&p);
                continue;
            }
        }
        let (Some(stem), Some(ext)) = (
            p.file_stem().and_then(|s| s.to_str()),
            p.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let image_ext = IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(ext));
        if stem.len() == 8 && stem.bytes().all(|b| b.is_ascii_digit()) && image_ext && p.is_file() {
            if let Ok(i) = stem.parse() {
                have.insert(i, p);
            }
        }
    }
    Ok(have)
}

enum Outcome {
    Existing(PathBuf),
    Written(PathBuf),
    Failed(String),
}

/// Runs the downloads on `opts.max_workers` threads (plain scoped threads: no pool that would
/// outlive a notebook cell), showing a live bar in the fastai kernel.
fn run_jobs(
    jobs: &[(usize, String)],
    dest: &Path,
    opts: &DownloadImagesOptions,
    outcomes: &mut [Option<Outcome>],
) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("fastai-rs/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(opts.timeout))
            .build(),
    );
    let label = dest
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut bar = ProgressBar::live(
        format!("downloading images to {label}"),
        Some(jobs.len() as u64),
    );
    let next = AtomicUsize::new(0);
    let workers = opts.max_workers.clamp(1, jobs.len());
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, next, agent) = (tx.clone(), &next, &agent);
            s.spawn(move || loop {
                if interrupt::requested() {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some((i, url)) = jobs.get(k) else { break };
                let outcome = match fetch_image(agent, url, *i, dest, opts) {
                    Ok(p) => Outcome::Written(p),
                    Err(reason) => Outcome::Failed(reason),
                };
                if tx.send((*i, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let (mut done, mut failed) = (0u64, 0usize);
        for (i, outcome) in rx {
            done += 1;
            failed += usize::from(matches!(outcome, Outcome::Failed(_)));
            outcomes[i] = Some(outcome);
            if let Some(bar) = &mut bar {
                bar.update(done, &format!("{failed} failed"));
            }
        }
        let stopped = interrupt::requested();
        if let Some(bar) = &mut bar {
            let state = if stopped {
                BarState::Interrupted
            } else {
                BarState::Done
            };
            bar.finish(done, &format!("{failed} failed"), state);
        }
    });
    if interrupt::requested() {
        interrupt::clear();
    }
}

/// Downloads one image to `dest/<i:08>.<ext>` (through a hidden temporary file). The error is
/// the short reason shown in the report.
fn fetch_image(
    agent: &ureq::Agent,
    url: &str,
    i: usize,
    dest: &Path,
    opts: &DownloadImagesOptions,
) -> Result<PathBuf, String> {
    let start = Instant::now();
    let failed = |e: ureq::Error| request_error(e, start.elapsed(), opts);
    let mut response = agent.get(url).call().map_err(failed)?;
    let status = response.status();
    if status.as_u16() != 200 {
        return Err(format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string());
    }
    let mime = response.body().mime_type().map(str::to_ascii_lowercase);
    let bytes = response
        .body_mut()
        .with_config()
        .limit(opts.max_bytes)
        .read_to_vec()
        .map_err(failed)?;
    let format = sniff(&bytes).map_err(|why| {
        let sent = mime.as_deref().unwrap_or("no content type");
        format!("not an image ({sent}, {} bytes: {why})", bytes.len())
    })?;
    let ext = ext_from_url(url)
        .or_else(|| mime.as_deref().and_then(ext_from_mime))
        .or_else(|| format.extensions_str().first().copied())
        .unwrap_or("jpg");
    let path = dest.join(format!("{i:08}.{ext}"));
    crate::error::write_atomically(&path, "saving the image", |tmp| {
        std::fs::write(tmp, &bytes).map_err(crate::error::Error::io("writing", tmp))
    })
    .map_err(|e| format!("cannot write {} ({e})", path.display()))?;
    Ok(path)
}

/// The short reason for a request that failed before a whole answer arrived.
fn request_error(e: ureq::Error, took: Duration, opts: &DownloadImagesOptions) -> String {
    let timed_out = matches!(e, ureq::Error::Timeout(_))
        || matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut);
    match e {
        _ if timed_out => format!(
            "timed out (no complete image after {:.1} s; the limit is {:.1} s)",
            took.as_secs_f64(),
            opts.timeout.as_secs_f64()
        ),
        ureq::Error::BodyExceedsLimit(n) => {
            format!("too large (more than {n} bytes; raise max_bytes to allow it)")
        }
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        ureq::Error::Io(io) => format!("connection failed ({io})"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        e => format!("request failed ({e})"),
    }
}

/// The format of an image by its first bytes, with a header our decoder can read.
fn sniff(bytes: &[u8]) -> Result<ImageFormat, String> {
    if bytes.is_empty() {
        return Err("empty".into());
    }
    let format = image::guess_format(bytes).map_err(|_| {
        let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(20)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("starts with {:?}", start.trim())
    })?;
    let supported = [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::WebP,
        ImageFormat::Tiff,
    ];
    if !supported.contains(&format) {
        return Err(format!("{format:?} images are not supported"));
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    match reader.into_dimensions() {
        Ok((w, h)) if w > 0 && h > 0 => Ok(format),
        Ok(_) => Err("the image is empty".into()),
        Err(e) => Err(format!("broken {format:?} header: {e}")),
    }
}

/// The image extension of a URL's path (`.../bear.JPG?w=300` -> `jpg`), if it has one.
fn ext_from_url(url: &str) -> Option<&'static str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next()?;
    let (_, path) = path.split_once('/')?;
    let name = path.rsplit('/').next()?;
    let (_, ext) = name.rsplit_once('.')?;
    IMAGE_EXTENSIONS
        .iter()
        .find(|x| x.eq_ignore_ascii_case(ext))
        .copied()
}

/// The file extension for an image content type.
fn ext_from_mime(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" | "image/x-ms-bmp" => "bmp",
        "image/tiff" => "tiff",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
