//! `download_images` against the local test server: good images (names, extensions, contents), a
//! 404, a page that is not an image, a stalled server hitting the timeout, a refused connection
//! and a non-http line, all reported and skipped; `max_pics`; parallel downloads; a second run
//! that downloads nothing; the stop button (SIGINT) ends it early with a report; a missing URL
//! file is a clear error.
//!
//! The tests take turns (`SERIAL`): the interrupt flag is one per process.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::http::{Mode, Server};
use common::tmp::TempDir;
use fastai::learner::interrupt;
use fastai::vision::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn encode(w: u32, h: u32, colour: [u8; 3], format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(w, h, image::Rgb(colour))
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

/// Every file name in `dir`, hidden ones included, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn opts() -> DownloadImagesOptions {
    DownloadImagesOptions::default()
        .timeout(Duration::from_secs(1))
        .max_workers(4)
}

#[test]
fn good_images_are_saved_and_bad_urls_reported() {
    let _turn = serial();
    let server = Server::start();
    let base = server.base();
    let jpg = encode(40, 30, [200, 10, 10], image::ImageFormat::Jpeg);
    let png = encode(20, 20, [10, 200, 10], image::ImageFormat::Png);
    server.serve("bears/1.jpg", jpg.clone(), Mode::Normal);
    server.serve("bears/2.PNG?size=large", png.clone(), Mode::Normal); // the test server matches queries too
    server.serve("photo", png.clone(), Mode::Normal); // no extension: from the bytes
    server.serve(
        "page.jpg",
        b"<html><body>Not here</body></html>".to_vec(),
        Mode::Normal,
    );
    server.serve("slow.jpg", jpg.clone(), Mode::Stall(100));
    let dir = TempDir::new("dlimg-mixed");
    let urls = dir.join("urls_black.csv");
    // a closed port: bind one, note it, drop it
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        &urls,
        format!(
            "{base}bears/1.jpg\n\n{base}missing.jpg\n{base}bears/2.PNG?size=large\n\
             {base}page.jpg\nftp://example.com/bear.jpg\n{base}slow.jpg\n\
             http://127.0.0.1:{refused}/x.jpg\n  {base}photo  \n"
        ),
    )
    .unwrap();
    let dest = dir.join("black");
    let t0 = Instant::now();
    let report = download_images_with(&urls, &dest, opts()).unwrap();
    let took = t0.elapsed();

    assert_eq!(report.urls, 8);
    assert_eq!(
        report.downloaded,
        vec![
            dest.join("00000000.jpg"),
            dest.join("00000002.png"),
            dest.join("00000007.png")
        ]
    );
    assert!(report.existing.is_empty() && report.not_tried == 0);
    assert_eq!(std::fs::read(dest.join("00000000.jpg")).unwrap(), jpg);
    assert_eq!(std::fs::read(dest.join("00000002.png")).unwrap(), png);
    assert_eq!(std::fs::read(dest.join("00000007.png")).unwrap(), png);

    let failed: Vec<(&str, &str)> = report
        .failed
        .iter()
        .map(|(u, r)| (u.as_str(), r.as_str()))
        .collect();
    assert_eq!(failed.len(), 5, "{failed:#?}");
    assert_eq!(failed[0].0, format!("{base}missing.jpg"));
    assert_eq!(failed[0].1, "HTTP 404 Not Found");
    assert_eq!(failed[1].0, format!("{base}page.jpg"));
    assert!(
        failed[1]
            .1
            .starts_with("not an image (application/octet-stream")
            && failed[1].1.contains("<html>"),
        "{}",
        failed[1].1
    );
    assert_eq!(failed[2].0, "ftp://example.com/bear.jpg");
    assert!(failed[2].1.starts_with("not an http(s) URL"));
    assert_eq!(failed[3].0, format!("{base}slow.jpg"));
    assert!(failed[3].1.starts_with("timed out"), "{}", failed[3].1);
    assert!(failed[4].1.starts_with("connection"), "{}", failed[4].1);
    // the stalled server holds its connection for 3 s: the 1 s timeout cut it short
    assert!(took < Duration::from_millis(2800), "took {took:?}");

    // only the three images: no half file, no temporary file
    assert_eq!(
        listing(&dest),
        ["00000000.jpg", "00000002.png", "00000007.png"]
    );
    let summary = report.to_string();
    assert!(
        summary.starts_with(&format!("3 of 8 images downloaded to {}", dest.display())),
        "{summary}"
    );
    assert!(
        summary.contains("5 failed: 1 HTTP 404 Not Found, 1 connection refused, 1 not an http(s) URL, 1 not an image, 1 timed out"),
        "{summary}"
    );
    assert_eq!(report.files().len(), 3);
    // what download_images wrote, verify_images accepts
    let v = verify_images(&dest, false, None).unwrap();
    assert_eq!((v.checked, v.broken.len()), (3, 0));
}

#[test]
fn max_pics_and_a_second_run_downloads_only_what_is_missing() {
    let _turn = serial();
    let server = Server::start();
    let base = server.base();
    let mut lines = String::new();
    for k in 0..6 {
        let name = format!("b{k}.png");
        server.serve(
            &name,
            encode(8, 8, [k * 40, 0, 0], image::ImageFormat::Png),
            Mode::Normal,
        );
        lines.push_str(&format!("{base}{name}\n"));
    }
    lines.push_str(&format!("{base}gone.png\n"));
    let dir = TempDir::new("dlimg-rerun");
    let urls = dir.join("urls.txt");
    std::fs::write(&urls, &lines).unwrap();
    let dest = dir.join("grizzly");
    // what a killed earlier call leaves behind: a hidden temporary file (and a file of the user's)
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join(".00000002.png.999999.part"), b"half an ima").unwrap();
    std::fs::write(dest.join("notes.txt"), b"mine").unwrap();

    let first = download_images_with(&urls, &dest, opts().max_pics(4)).unwrap();
    assert_eq!(first.urls, 4);
    assert_eq!(first.downloaded.len(), 4);
    let asked: Vec<String> = server.requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(asked.len(), 4, "only the first max_pics URLs: {asked:?}");
    assert!(!asked.contains(&"/b4.png".to_string()));

    // the same call again: nothing requested, everything already there
    let again = download_images_with(&urls, &dest, opts().max_pics(4)).unwrap();
    assert!(again.downloaded.is_empty() && again.failed.is_empty());
    assert_eq!(again.existing, first.downloaded);
    assert_eq!(server.requests().len(), 4, "no new requests");
    assert!(again.to_string().contains("(4 were already there)"));

    // more pictures, one file removed meanwhile: only the missing ones are fetched
    std::fs::remove_file(dest.join("00000001.png")).unwrap();
    let more = download_images(&urls, &dest, 100).unwrap();
    assert_eq!(more.urls, 7);
    assert_eq!(
        more.downloaded,
        vec![
            dest.join("00000001.png"),
            dest.join("00000004.png"),
            dest.join("00000005.png")
        ]
    );
    assert_eq!(more.existing.len(), 3);
    assert_eq!(
        more.failed,
        vec![(format!("{base}gone.png"), "HTTP 404 Not Found".to_string())]
    );
    assert_eq!(server.requests().len(), 8);
    assert_eq!(
        listing(&dest).len(),
        7,
        "6 images and notes.txt, no temporary file"
    );
    assert!(dest.join("notes.txt").is_file());
}

#[test]
fn downloads_run_in_parallel() {
    let _turn = serial();
    let server = Server::start();
    let base = server.base();
    let jpg = encode(16, 16, [1, 2, 3], image::ImageFormat::Jpeg);
    let mut lines = String::new();
    for k in 0..4 {
        server.serve(&format!("s{k}.jpg"), jpg.clone(), Mode::Stall(10));
        lines.push_str(&format!("{base}s{k}.jpg\n"));
    }
    let dir = TempDir::new("dlimg-parallel");
    let urls = dir.join("urls.txt");
    std::fs::write(&urls, lines).unwrap();
    let t0 = Instant::now();
    let report = download_images_with(&urls, dir.join("out"), opts()).unwrap();
    let took = t0.elapsed();
    assert_eq!(report.failed.len(), 4);
    assert!(report
        .failed
        .iter()
        .all(|(_, r)| r.starts_with("timed out")));
    // four 1 s timeouts one after another would take 4 s
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(listing(&dir.join("out")).is_empty(), "no partial files");
}

#[test]
fn a_missing_or_empty_url_file_is_a_clear_error() {
    let _turn = serial();
    let dir = TempDir::new("dlimg-missing");
    let err = download_images(dir.join("urls_teddys.csv"), dir.join("teddys"), 200)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("urls_teddys.csv does not exist")
            && err.contains("one image address per line"),
        "{err}"
    );
    assert!(!dir.join("teddys").exists(), "nothing created");
    std::fs::write(dir.join("empty.csv"), "\n  \n").unwrap();
    let err = download_images(dir.join("empty.csv"), dir.join("teddys"), 200)
        .unwrap_err()
        .to_string();
    assert!(err.contains("found no image URLs"), "{err}");
}

#[test]
fn the_stop_button_ends_it_with_a_report() {
    let _turn = serial();
    let server = Server::start();
    let base = server.base();
    let jpg = encode(16, 16, [1, 2, 3], image::ImageFormat::Jpeg);
    server.serve("ok.jpg", jpg.clone(), Mode::Normal);
    let mut lines = format!("{base}ok.jpg\n");
    for k in 0..8 {
        server.serve(&format!("s{k}.jpg"), jpg.clone(), Mode::Stall(10));
        lines.push_str(&format!("{base}s{k}.jpg\n"));
    }
    let dir = TempDir::new("dlimg-stop");
    let urls = dir.join("urls.txt");
    std::fs::write(&urls, lines).unwrap();
    let presser = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        interrupt::request();
    });
    let t0 = Instant::now();
    let report = download_images_with(&urls, dir.join("out"), opts().max_workers(1)).unwrap();
    let took = t0.elapsed();
    presser.join().unwrap();
    // the image before the press, at most the one download in flight when it came (it times
    // out), nothing after it
    assert_eq!(report.downloaded, vec![dir.join("out/00000000.jpg")]);
    let in_flight = report.failed.len();
    assert!(in_flight <= 1, "{:?}", report.failed);
    assert_eq!(report.not_tried, 8 - in_flight);
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let summary = report.to_string();
    assert!(
        summary.ends_with(&format!("; stopped, {} not tried", 8 - in_flight)),
        "{summary}"
    );
    assert!(
        !interrupt::requested(),
        "the flag is cleared for the next cell"
    );
    assert_eq!(listing(&dir.join("out")), ["00000000.jpg"]);
    // running it again carries on where it stopped
    let again = download_images_with(&urls, dir.join("out"), opts().max_workers(8)).unwrap();
    assert_eq!(again.existing.len(), 1);
    assert_eq!((again.failed.len(), again.not_tried), (8, 0));
}
