//! A small HTTP/1.1 server on 127.0.0.1 for download tests: GET, Content-Length, Range (206/416),
//! and per-path failure modes (404, truncation, ignoring Range, stalling).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use fastai::data::{URLs, UntarOptions};

use super::tmp::TempDir;

// ---------------------------------------------------------------- the test server

/// How the server answers for one path.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    /// 200, or 206 for `Range: bytes=N-`.
    Normal,
    /// Ignores Range headers: always 200 with the whole file.
    NoRange,
    /// Announces the whole length but closes after this many bytes.
    Truncate(usize),
    /// Sends this many bytes, then holds the connection silent for 3 s.
    Stall(usize),
}

pub type Files = Arc<Mutex<HashMap<String, (Vec<u8>, Mode)>>>;
/// (path, Range header) of every request.
pub type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct Server {
    pub port: u16,
    pub files: Files,
    pub log: Log,
    pub stop: Arc<AtomicBool>,
    pub thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Files = Default::default();
        let log: Log = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, l, s) = (files.clone(), log.clone(), stop.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (f, l) = (f.clone(), l.clone());
                thread::spawn(move || {
                    let _ = handle(stream, &f, &l);
                });
            }
        });
        Server {
            port,
            files,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL that replaces `https://s3.amazonaws.com/`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn serve(&self, path: &str, body: Vec<u8>, mode: Mode) {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.files.lock().unwrap().insert(path, (body, mode));
    }

    pub fn set_mode(&self, path: &str, mode: Mode) {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.files.lock().unwrap().get_mut(&path).unwrap().1 = mode;
    }

    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn handle(stream: TcpStream, files: &Files, log: &Log) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("").to_string(),
    );
    log.lock().unwrap().push((path.clone(), range.clone()));
    let entry = files.lock().unwrap().get(&path).cloned();
    let Some((body, mode)) = entry.filter(|_| method == "GET") else {
        let msg = "not found";
        return write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        );
    };
    let len = body.len();
    let start = range.filter(|_| mode != Mode::NoRange).and_then(|r| {
        r.strip_prefix("bytes=")?
            .strip_suffix('-')?
            .parse::<usize>()
            .ok()
    });
    let (status, from) = match start {
        Some(s) if s >= len => {
            return write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        Some(s) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}",
                len - 1
            ),
            s,
        ),
        None => ("200 OK\r\nAccept-Ranges: bytes".to_string(), 0),
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\
         Connection: close\r\n\r\n",
        len - from
    )?;
    let body = &body[from..];
    match mode {
        Mode::Normal | Mode::NoRange => out.write_all(body)?,
        Mode::Truncate(n) => out.write_all(&body[..n.min(body.len())])?,
        Mode::Stall(n) => {
            out.write_all(&body[..n.min(body.len())])?;
            out.flush()?;
            thread::sleep(Duration::from_secs(3));
        }
    }
    out.flush()
}

// ---------------------------------------------------------------- folders and archives

/// A fresh folder under the system temp dir (a [`TempDir`]) with `data/` and `archive/` below;
/// removed on drop.
pub struct Dirs {
    pub root: PathBuf,
    _dir: TempDir,
}

impl Dirs {
    pub fn new(tag: &str) -> Dirs {
        let dir = TempDir::new(&format!("untar-{tag}"));
        Dirs {
            root: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn archive(&self) -> PathBuf {
        self.root.join("archive")
    }

    pub fn opts<'a>(&self, base: &str) -> UntarOptions<'a> {
        UntarOptions {
            dest: Some(self.data()),
            archive_dir: Some(self.archive()),
            base_url: Some(base.to_string()),
            stall_timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        }
    }

    /// Every path below the root, relative, sorted.
    pub fn listing(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(root).unwrap().display().to_string());
                if p.symlink_metadata().unwrap().is_dir() {
                    walk(&p, root, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }
}

/// The canonical URL of a test dataset file, e.g. `https://s3.amazonaws.com/fast-ai-sample/x.tgz`.
pub fn url(file: &str) -> String {
    format!("{}fast-ai-sample/{file}", URLs::S3)
}

/// The server path for the same file.
pub fn server_path(file: &str) -> String {
    format!("fast-ai-sample/{file}")
}
