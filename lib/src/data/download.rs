//! `download_url`: one file over HTTP(S), written to a `.part` file beside the destination,
//! resumed with a `Range` request after an interruption, verified, then renamed into place - so
//! the destination either does not exist or is the complete, checked file.

use crate::display::progress::{BarState, ProgressBar};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use sha2::Sha256;

use super::DataError;

/// What a downloaded file must be; `None` fields are not checked. Without a size, the length the
/// server announced (`Content-Length`) is still checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checksum {
    pub size: Option<u64>,
    /// Lower-case hex.
    pub md5: Option<String>,
    /// Lower-case hex.
    pub sha256: Option<String>,
    /// The md5 of the file's first MiB only, lower-case hex: what fastai's own dataset list
    /// records (its `_check_file` hashes `f.read(2**20)`), so the known archives are checked
    /// the way fastai checks them.
    pub md5_head: Option<String>,
}

/// How much of a file [`Checksum::md5_head`] covers: fastai's 1 MiB.
pub const MD5_HEAD_BYTES: u64 = 1 << 20;

/// Options for [`download_url_with`]. `Default` gives: no checksum, keep an existing file, text
/// progress on stderr, give up after 60 s without data.
#[derive(Default)]
pub struct DownloadOptions<'a> {
    /// What the file must be (size, md5, sha256).
    pub checksum: Option<Checksum>,
    /// Download again even if the destination exists.
    pub force: bool,
    /// Called with (bytes so far, total if known) after every chunk. `None`: a throttled text
    /// line on stderr every 5% (at most twice a second). `Some(&mut |_, _| {})` is silent.
    pub progress: Option<&'a mut dyn FnMut(u64, Option<u64>)>,
    /// Give up when no data arrives for this long (default 60 s); the `.part` file is kept.
    pub stall_timeout: Option<Duration>,
}

/// Downloads `url` to `dest` with the default [`DownloadOptions`].
///
/// An existing `dest` is kept (it was only ever renamed into place complete).
pub fn download_url(url: &str, dest: &Path) -> Result<(), DataError> {
    download_url_with(url, dest, DownloadOptions::default())
}

/// Downloads `url` to `dest`: to `dest.part` first, resuming it with an HTTP `Range` request
/// when it exists and the server supports ranges (otherwise starting over), then checks the
/// length against the server's and `opts.checksum`, and renames it to `dest`. A wrong file is
/// deleted; an interrupted transfer keeps `dest.part` for the next call to resume.
pub fn download_url_with(
    url: &str,
    dest: &Path,
    opts: DownloadOptions<'_>,
) -> Result<(), DataError> {
    if dest.is_file() {
        if opts.force {
            fs::remove_file(dest).map_err(DataError::io("removing", dest))?;
        } else {
            match &opts.checksum {
                None => return Ok(()),
                Some(c) => match verify(url, dest, c) {
                    Ok(()) => return Ok(()),
                    Err(DataError::Checksum { what, .. }) => eprintln!(
                        "{} has the wrong {what}; deleted it, downloading it again",
                        dest.display()
                    ),
                    Err(e) => return Err(e),
                },
            }
        }
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(DataError::io("creating folder", dir))?;
    }
    let part = part_path(dest);
    let label = dest
        .file_name()
        .map_or_else(|| url.to_string(), |n| n.to_string_lossy().into_owned());
    let mut progress = match opts.progress {
        Some(f) => Reporter::Custom(f),
        None => Reporter::Text(TextProgress::new(label)),
    };
    let stall = opts.stall_timeout.unwrap_or(Duration::from_secs(60));
    fetch(
        url,
        dest,
        &part,
        opts.checksum.as_ref(),
        stall,
        &mut progress,
    )?;
    if let Some(c) = &opts.checksum {
        verify(url, &part, c).map_err(|e| match e {
            DataError::Checksum {
                url,
                what,
                expected,
                found,
                ..
            } => DataError::Checksum {
                url,
                path: dest.to_path_buf(),
                what,
                expected,
                found,
            },
            e => e,
        })?;
    }
    fs::rename(&part, dest).map_err(DataError::io("renaming into place", dest))
}

/// `dest` with `.part` appended to its file name.
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Brings `part` up to the whole file (as far as the server's length says).
fn fetch(
    url: &str,
    dest: &Path,
    part: &Path,
    checksum: Option<&Checksum>,
    stall: Duration,
    progress: &mut Reporter<'_>,
) -> Result<(), DataError> {
    let expected_size = checksum.and_then(|c| c.size);
    let mut offset = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if expected_size.is_some_and(|s| offset > s) {
        offset = restart(part)?;
    }
    if offset > 0 && expected_size == Some(offset) {
        return Ok(()); // a complete .part from a run that stopped before the rename
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .accept_encoding("") // the bytes as stored: lengths and ranges refer to them
            .user_agent(concat!("fastai-rs/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(stall))
            .build(),
    );
    let download_err = |msg: String| DataError::Download {
        url: url.to_string(),
        msg,
    };
    let (response, total) = loop {
        let mut request = agent.get(url);
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
        }
        let response = request.call().map_err(|e| unreachable(url, dest, e))?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        match response.status().as_u16() {
            200 => {
                offset = 0; // no range support (or no range asked): start over
                let total = response.body().content_length();
                break (response, total);
            }
            206 if offset > 0 => match header("content-range").as_deref().and_then(content_range) {
                Some((start, total)) if start == offset => break (response, total),
                _ => offset = restart(part)?,
            },
            416 if offset > 0 => offset = restart(part)?,
            status => {
                let reason = response.status().canonical_reason().unwrap_or("");
                return Err(download_err(format!(
                    "the server answered HTTP {status} {reason} instead of the file; check the \
                     URL (a mirror set with FASTAI_URL_BASE must serve the same paths)"
                )));
            }
        }
    };
    if let (Some(expected), Some(total)) = (expected_size, total) {
        if expected != total {
            return Err(download_err(format!(
                "the server offers {total} bytes, but the file should have {expected}; \
                 not downloading it (is the URL or the mirror right?)"
            )));
        }
    }
    let mut file = if offset > 0 {
        OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    }
    .map_err(DataError::io("writing", part))?;
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = offset;
    progress.update(done, total);
    let of_total = |done: u64| match total {
        Some(t) => format!("{done} of {t} bytes"),
        None => format!("{done} bytes"),
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(download_err(format!(
                "the transfer broke off after {} ({e}); {} is kept and the next call resumes it",
                of_total(done),
                part.display()
            )))
            }
        };
        file.write_all(&buf[..n])
            .map_err(DataError::io("writing", part))?;
        done += n as u64;
        progress.update(done, total);
    }
    file.sync_all().map_err(DataError::io("writing", part))?;
    if let Some(t) = total.filter(|&t| t != done) {
        restart(part)?;
        return Err(download_err(format!(
            "the server announced {t} bytes but sent {}; the partial file was deleted, run again",
            of_total(done)
        )));
    }
    progress.finish(done);
    Ok(())
}

/// Deletes a `.part` that cannot be resumed; the new offset is 0.
fn restart(part: &Path) -> Result<u64, DataError> {
    match fs::remove_file(part) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(DataError::io("removing", part)(e))
        }
        _ => Ok(0),
    }
}

/// `Content-Range: bytes 100-999/1000` -> (100, Some(1000)); `.../*` -> (100, None).
fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// A request that got no HTTP answer: offline, unknown host, refused, TLS failure.
fn unreachable(url: &str, dest: &Path, e: ureq::Error) -> DataError {
    match e {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            DataError::Download {
                url: url.to_string(),
                msg: e.to_string(),
            }
        }
        e => DataError::Offline {
            url: url.to_string(),
            file: dest
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            place_at: dest.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

/// Checks `path` against `expected`; a mismatching file is deleted.
pub(crate) fn verify(url: &str, path: &Path, expected: &Checksum) -> Result<(), DataError> {
    let size = fs::metadata(path)
        .map_err(DataError::io("reading", path))?
        .len();
    let mut found = vec![(
        "size",
        expected.size.map(|s| s.to_string()),
        size.to_string(),
    )];
    if expected.md5.is_some() || expected.sha256.is_some() || expected.md5_head.is_some() {
        let mut file = BufReader::new(File::open(path).map_err(DataError::io("reading", path))?);
        let (mut md5, mut sha256, mut head) = (Md5::new(), Sha256::new(), Md5::new());
        let mut buf = vec![0u8; 1 << 16];
        let mut at = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(DataError::io("reading", path))?;
            if n == 0 {
                break;
            }
            md5.update(&buf[..n]);
            sha256.update(&buf[..n]);
            let in_head = (MD5_HEAD_BYTES.saturating_sub(at) as usize).min(n);
            head.update(&buf[..in_head]);
            at += n as u64;
        }
        found.push((
            "md5 of the first MiB",
            expected.md5_head.clone(),
            format!("{:x}", head.finalize()),
        ));
        found.push(("md5", expected.md5.clone(), format!("{:x}", md5.finalize())));
        let sha = format!("{:x}", sha256.finalize());
        found.push(("sha256", expected.sha256.clone(), sha));
    }
    for (what, expected, found) in found {
        if let Some(expected) = expected.filter(|e| !e.eq_ignore_ascii_case(&found)) {
            fs::remove_file(path).map_err(DataError::io("removing", path))?;
            return Err(DataError::Checksum {
                url: url.to_string(),
                path: path.to_path_buf(),
                what,
                expected,
                found,
            });
        }
    }
    Ok(())
}

enum Reporter<'a> {
    Text(TextProgress),
    Custom(&'a mut dyn FnMut(u64, Option<u64>)),
}

impl Reporter<'_> {
    fn update(&mut self, done: u64, total: Option<u64>) {
        match self {
            Reporter::Text(t) => t.update(done, total),
            Reporter::Custom(f) => f(done, total),
        }
    }

    fn finish(&mut self, done: u64) {
        if let Reporter::Text(t) = self {
            t.finish(done)
        }
    }
}

/// One plain line per step (notebook outputs do not redraw `\r` lines): every 5% of the file
/// but at most every 0.5 s, and at least every 10 s.
struct TextProgress {
    label: String,
    /// In the fastai kernel: a bar redrawn in place instead of the lines.
    live: Option<ProgressBar>,
    start: Instant,
    last: Option<(Instant, u64)>,
    first_done: u64,
}

impl TextProgress {
    fn new(label: String) -> Self {
        TextProgress {
            live: ProgressBar::live(format!("downloading {label}"), None),
            label,
            start: Instant::now(),
            last: None,
            first_done: 0,
        }
    }

    fn update(&mut self, done: u64, total: Option<u64>) {
        let now = Instant::now();
        if self.live.is_some() {
            let comment = format!("{} {}", mb(done), self.rate(done, now));
            if let Some(bar) = &mut self.live {
                bar.set_total(total);
                bar.update(done, &comment);
            }
            return;
        }
        let Some((at, at_done)) = self.last else {
            let of = total.map_or(String::new(), |t| format!(" ({})", mb(t)));
            let from = if done > 0 {
                format!(", resuming at {}", mb(done))
            } else {
                String::new()
            };
            eprintln!("downloading {}{of}{from}", self.label);
            (self.last, self.first_done) = (Some((now, done)), done);
            return;
        };
        let since = now - at;
        let step = total.is_some_and(|t| (done - at_done) * 20 >= t);
        if since >= Duration::from_secs(10) || (step && since >= Duration::from_millis(500)) {
            let rate = self.rate(done, now);
            match total {
                Some(t) if t > 0 => eprintln!(
                    "{}: {} of {} ({}%), {rate}",
                    self.label,
                    mb(done),
                    mb(t),
                    done * 100 / t
                ),
                _ => eprintln!("{}: {}, {rate}", self.label, mb(done)),
            }
            self.last = Some((now, done));
        }
    }

    fn finish(&mut self, done: u64) {
        let secs = self.start.elapsed().as_secs_f64();
        let rate = self.rate(done, Instant::now());
        if let Some(bar) = &mut self.live {
            bar.finish(
                done,
                &format!("{} {rate} in {secs:.1} s", mb(done)),
                BarState::Done,
            );
            return;
        }
        eprintln!(
            "downloaded {}: {} in {secs:.1} s, {rate}",
            self.label,
            mb(done)
        );
    }

    fn rate(&self, done: u64, now: Instant) -> String {
        let secs = (now - self.start).as_secs_f64().max(1e-3);
        format!("{}/s", mb(((done - self.first_done) as f64 / secs) as u64))
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
