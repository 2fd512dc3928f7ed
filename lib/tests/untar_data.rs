//! `untar_data` and `download_url` against a small HTTP/1.1 server on 127.0.0.1 (no internet):
//! download + extract, the offline second call, resuming a `.part` with a Range request, the
//! failure modes (404, truncated, stalled, wrong size or md5, unreachable), and archives that try
//! to write outside their folder. Every test has its own server and folders and passes explicit
//! options, so tests run in parallel; only `env_defaults` touches environment variables.

use std::io::{Cursor, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use fastai::data::{
    download_url_with, known_checksum, untar_data, untar_data_with, Checksum, DataError,
    DownloadOptions, URLs, UntarOptions,
};
use md5::{Digest, Md5};

mod common;
use common::http::*;
use common::tmp::TempDir;

/// A gzipped tar of regular files.
fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A gzipped tar with one good file, then `entries` written raw (no path checks), each
/// (name, type, link target).
fn evil_tgz(entries: &[(&str, tar::EntryType, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "evil/ok.txt", &b"ok"[..]).unwrap();
    for (name, kind, link) in entries {
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"pwned"
        } else {
            b""
        };
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(data: &[u8]) -> String {
    format!("{:x}", Md5::digest(data))
}

fn dataset() -> Vec<u8> {
    // incompressible and big enough for several 64 KiB chunks, so truncation and resuming are real
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    tgz(&[
        ("tiny_ds/train/3/a.txt", b"three"),
        ("tiny_ds/valid/7/b.txt", b"seven"),
        ("tiny_ds/big.bin", &big),
    ])
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap()
}

// ---------------------------------------------------------------- tests

#[test]
fn downloads_extracts_and_then_works_offline() {
    let mut server = Server::start();
    let dirs = Dirs::new("basic");
    let archive = dataset();
    server.serve(&server_path("tiny_ds.tgz"), archive.clone(), Mode::Normal);

    let mut calls = Vec::new();
    let mut record = |done: u64, total: Option<u64>| calls.push((done, total));
    let opts = UntarOptions {
        progress: Some(&mut record),
        ..dirs.opts(&server.base())
    };
    let path = untar_data_with(&url("tiny_ds.tgz"), opts).unwrap();
    assert_eq!(path, dirs.data().join("tiny_ds"));
    assert_eq!(read(path.join("train/3/a.txt")), "three"); // not tiny_ds/tiny_ds/...
    assert_eq!(read(path.join("valid/7/b.txt")), "seven");
    assert_eq!(
        std::fs::read(dirs.archive().join("tiny_ds.tgz")).unwrap(),
        archive
    );
    let n = archive.len() as u64;
    assert_eq!(
        calls.last(),
        Some(&(n, Some(n))),
        "progress ends at the total"
    );
    assert!(calls.len() > 2, "progress is reported per chunk: {calls:?}");
    assert_eq!(
        dirs.listing()
            .iter()
            .filter(|p| p.ends_with(".part") || p.contains("extracting"))
            .count(),
        0,
        "{:?}",
        dirs.listing()
    );
    assert_eq!(server.requests().len(), 1);

    // no network from now on: the folder and its marker answer
    server.stop();
    assert_eq!(
        untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&server.base())).unwrap(),
        path
    );

    // the folder gone but the archive kept: extracted again, still without the network
    std::fs::remove_dir_all(&path).unwrap();
    assert_eq!(
        untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&server.base())).unwrap(),
        path
    );
    assert_eq!(read(path.join("train/3/a.txt")), "three");

    // a URL without suffix means .tgz (fastai v1 style)
    assert_eq!(
        untar_data_with(&url("tiny_ds"), dirs.opts(&server.base())).unwrap(),
        path
    );
}

#[test]
fn folder_without_marker_is_replaced_and_force_download_refetches() {
    let server = Server::start();
    let dirs = Dirs::new("marker");
    server.serve(&server_path("tiny_ds.tgz"), dataset(), Mode::Normal);
    // a half folder from elsewhere (no completion marker)
    std::fs::create_dir_all(dirs.data().join("tiny_ds/train")).unwrap();
    std::fs::write(dirs.data().join("tiny_ds/stale.txt"), "old").unwrap();
    let path = untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&server.base())).unwrap();
    assert!(!path.join("stale.txt").exists());
    assert_eq!(read(path.join("train/3/a.txt")), "three");

    let opts = UntarOptions {
        force_download: true,
        ..dirs.opts(&server.base())
    };
    untar_data_with(&url("tiny_ds.tgz"), opts).unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn archives_without_a_dataset_folder_and_zips() {
    let server = Server::start();
    let dirs = Dirs::new("layouts");
    server.serve(
        &server_path("flat.tgz"),
        tgz(&[("a.txt", b"a"), ("sub/b.txt", b"b")]),
        Mode::Normal,
    );
    let flat = untar_data_with(&url("flat.tgz"), dirs.opts(&server.base())).unwrap();
    assert_eq!(read(flat.join("a.txt")), "a");
    assert_eq!(read(flat.join("sub/b.txt")), "b");

    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    w.add_directory("zipped/", o).unwrap();
    w.start_file("zipped/x.txt", o).unwrap();
    w.write_all(b"x from zip").unwrap();
    w.start_file("zipped/sub/y.txt", o).unwrap();
    w.write_all(&vec![b'y'; 100_000]).unwrap();
    w.add_symlink("zipped/link.txt", "x.txt", o).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    server.serve(&server_path("zipped.zip"), bytes, Mode::Normal);
    let z = untar_data_with(&url("zipped.zip"), dirs.opts(&server.base())).unwrap();
    assert_eq!(z, dirs.data().join("zipped"));
    assert_eq!(read(z.join("x.txt")), "x from zip");
    assert_eq!(std::fs::read(z.join("sub/y.txt")).unwrap().len(), 100_000);
    assert_eq!(
        read(z.join("link.txt")),
        "x from zip",
        "a symlink inside is fine"
    );
}

#[test]
fn http_404_is_a_clear_error() {
    let server = Server::start();
    let dirs = Dirs::new("404");
    let err = untar_data_with(&url("missing.tgz"), dirs.opts(&server.base())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Download { .. }), "{msg}");
    assert!(
        msg.contains("404") && msg.contains("fast-ai-sample/missing.tgz"),
        "{msg}"
    );
    assert!(!dirs.data().join("missing").exists());
    assert!(!dirs.archive().join("missing.tgz").exists());
}

#[test]
fn truncated_transfer_errors_then_resumes_with_range() {
    let server = Server::start();
    let dirs = Dirs::new("resume");
    let archive = dataset();
    let half = archive.len() / 2;
    let p = server_path("tiny_ds.tgz");
    server.serve(&p, archive.clone(), Mode::Truncate(half));

    let err = untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&server.base())).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    assert!(err.to_string().contains("resumes"), "{err}");
    assert!(
        !dirs.archive().join("tiny_ds.tgz").exists(),
        "no final file"
    );
    assert!(!dirs.data().join("tiny_ds").exists());
    let part = dirs.archive().join("tiny_ds.tgz.part");
    assert_eq!(
        std::fs::metadata(&part).unwrap().len(),
        half as u64,
        "the part is kept"
    );

    server.set_mode(&p, Mode::Normal);
    let path = untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&server.base())).unwrap();
    assert_eq!(read(path.join("valid/7/b.txt")), "seven");
    assert_eq!(
        std::fs::read(dirs.archive().join("tiny_ds.tgz")).unwrap(),
        archive
    );
    assert!(!part.exists());
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].1, None);
    assert_eq!(
        reqs[1].1.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
}

#[test]
fn part_files_that_cannot_be_resumed_are_restarted() {
    let server = Server::start();
    let dirs = Dirs::new("restart");
    let archive = dataset();
    std::fs::create_dir_all(dirs.archive()).unwrap();
    let part = dirs.archive().join("tiny_ds.tgz.part");

    // a server without ranges answers 200 with everything: the garbage part is replaced
    server.serve(&server_path("tiny_ds.tgz"), archive.clone(), Mode::NoRange);
    std::fs::write(&part, vec![0xAB; 1000]).unwrap();
    let path = untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&server.base())).unwrap();
    assert_eq!(read(path.join("train/3/a.txt")), "three");
    assert_eq!(server.requests()[0].1.as_deref(), Some("bytes=1000-"));

    // a part longer than the file: 416, then a clean download
    server.serve(
        &server_path("other.tgz"),
        tgz(&[("x.txt", b"x")]),
        Mode::Normal,
    );
    std::fs::write(dirs.archive().join("other.tgz.part"), vec![0; 5000]).unwrap();
    let other = untar_data_with(&url("other.tgz"), dirs.opts(&server.base())).unwrap();
    assert_eq!(read(other.join("x.txt")), "x");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn stalled_transfer_times_out_and_keeps_the_part() {
    let server = Server::start();
    let dirs = Dirs::new("stall");
    server.serve(&server_path("tiny_ds.tgz"), dataset(), Mode::Stall(70_000));
    let t = Instant::now();
    let err = untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&server.base())).unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the 1 s stall timeout applied"
    );
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    assert!(!dirs.archive().join("tiny_ds.tgz").exists());
    assert!(dirs.archive().join("tiny_ds.tgz.part").exists());
}

/// fastai's known checks hash the first MiB of an archive only: a file whose first MiB matches
/// passes whatever follows; one whose first MiB differs is refused and deleted.
#[test]
fn known_checks_cover_the_first_mib_as_fastai_computes_them() {
    let server = Server::start();
    let dirs = Dirs::new("md5-head");
    let body: Vec<u8> = (0..(3u32 << 19))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let head = md5_hex(&body[..1 << 20]);
    assert_ne!(head, md5_hex(&body), "the first MiB is not the whole file");
    server.serve("big.bin", body.clone(), Mode::Normal);
    std::fs::create_dir_all(dirs.archive()).unwrap();
    let get = |name: &str, head: &str| {
        let opts = DownloadOptions {
            checksum: Some(Checksum {
                size: Some(body.len() as u64),
                md5_head: Some(head.to_string()),
                ..Default::default()
            }),
            progress: Some(&mut |_, _| {}),
            ..Default::default()
        };
        let dest = dirs.archive().join(name);
        (
            download_url_with(&format!("{}big.bin", server.base()), &dest, opts),
            dest,
        )
    };
    let (ok, dest) = get("good.bin", &head);
    ok.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let (err, dest) = get("bad.bin", &md5_hex(&body));
    let err = err.unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Checksum {
                what: "md5 of the first MiB",
                ..
            }
        ),
        "{err}"
    );
    assert!(!dest.exists(), "the wrong file is deleted");
}

#[test]
fn wrong_checksums_delete_the_file() {
    let server = Server::start();
    let dirs = Dirs::new("checksum");
    let archive = dataset();
    let real_md5 = md5_hex(&archive);
    server.serve(&server_path("tiny_ds.tgz"), archive.clone(), Mode::Normal);
    let with = |c: Checksum| UntarOptions {
        checksum: Some(c),
        ..dirs.opts(&server.base())
    };

    let bad_md5 = Checksum {
        size: Some(archive.len() as u64),
        md5: Some("0123456789abcdef0123456789abcdef".into()),
        ..Default::default()
    };
    let err = untar_data_with(&url("tiny_ds.tgz"), with(bad_md5)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DataError::Checksum { what: "md5", .. }),
        "{msg}"
    );
    assert!(
        msg.contains("0123456789abcdef0123456789abcdef") && msg.contains(&real_md5),
        "{msg}"
    );
    assert!(msg.contains("deleted"), "{msg}");
    assert!(
        dirs.listing().iter().all(|p| !p.contains("tiny_ds")),
        "{:?}",
        dirs.listing()
    );

    // a size that differs from the server's: refused before downloading
    let bad_size = Checksum {
        size: Some(12345),
        ..Default::default()
    };
    let err = untar_data_with(&url("tiny_ds.tgz"), with(bad_size)).unwrap_err();
    assert!(err.to_string().contains("12345"), "{err}");
    assert!(
        dirs.listing().iter().all(|p| !p.contains("tiny_ds")),
        "{:?}",
        dirs.listing()
    );

    // the right ones pass; a damaged archive already on disk is replaced
    std::fs::create_dir_all(dirs.archive()).unwrap();
    std::fs::write(dirs.archive().join("tiny_ds.tgz"), b"damaged").unwrap();
    let good = Checksum {
        size: Some(archive.len() as u64),
        md5: Some(real_md5.to_uppercase()),
        sha256: Some(format!("{:x}", sha2::Sha256::digest(&archive))),
        md5_head: None,
    };
    let path = untar_data_with(&url("tiny_ds.tgz"), with(good)).unwrap();
    assert_eq!(read(path.join("train/3/a.txt")), "three");
}

#[test]
fn wrong_content_is_an_error_and_leaves_no_folder() {
    let server = Server::start();
    let dirs = Dirs::new("garbage");
    server.serve(
        &server_path("junk.tgz"),
        b"<html>not a tarball</html>".to_vec(),
        Mode::Normal,
    );
    let err = untar_data_with(&url("junk.tgz"), dirs.opts(&server.base())).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(dirs.listing(), ["archive", "archive/junk.tgz", "data"]);
}

#[test]
fn offline_error_names_the_url_and_where_to_put_the_file() {
    let dirs = Dirs::new("offline");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed now
    let base = format!("http://127.0.0.1:{port}/");
    let err = untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&base)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Offline { .. }), "{msg}");
    let place = dirs.archive().join("tiny_ds.tgz");
    assert!(
        msg.contains(&format!("{base}fast-ai-sample/tiny_ds.tgz")),
        "{msg}"
    );
    assert!(msg.contains(&place.display().to_string()), "{msg}");

    // a folder made some other way (no completion marker) is used when the server is unreachable
    std::fs::create_dir_all(dirs.data().join("by_hand")).unwrap();
    std::fs::write(dirs.data().join("by_hand/f.txt"), "f").unwrap();
    let by_hand = untar_data_with(&url("by_hand.tgz"), dirs.opts(&base)).unwrap();
    assert_eq!(read(by_hand.join("f.txt")), "f");

    // placed by hand: extracted without the network
    std::fs::write(&place, dataset()).unwrap();
    let path = untar_data_with(&url("tiny_ds.tgz"), dirs.opts(&base)).unwrap();
    assert_eq!(read(path.join("train/3/a.txt")), "three");
}

#[test]
fn download_url_keeps_an_existing_file() {
    let dirs = Dirs::new("download_url");
    let dest = dirs.root.join("sub/file.bin");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, b"cached").unwrap();
    let mut silent = |_, _| {};
    let opts = DownloadOptions {
        progress: Some(&mut silent),
        ..Default::default()
    };
    download_url_with("http://127.0.0.1:9/never", &dest, opts).unwrap();
    assert_eq!(read(&dest), "cached");
}

#[test]
fn malicious_archives_are_refused_and_write_nothing_outside() {
    use tar::EntryType as T;
    let dirs = Dirs::new("evil");
    // an absolute path the archives aim at, outside the data folder
    let outside_dir = TempDir::new("untar-outside");
    let outside = outside_dir.join("evil.txt");
    let outside_s = outside.display().to_string();
    type Entries<'a> = Vec<(&'a str, T, Option<&'a str>)>;
    let cases: Vec<(&str, Entries)> = vec![
        ("absolute path", vec![(&outside_s, T::Regular, None)]),
        ("dot-dot path", vec![("../evil.txt", T::Regular, None)]),
        (
            "nested dot-dot",
            vec![("evil/a/../../../evil.txt", T::Regular, None)],
        ),
        (
            "symlink to /etc/passwd",
            vec![("evil/passwd", T::Symlink, Some("/etc/passwd"))],
        ),
        ("symlink up", vec![("evil/up", T::Symlink, Some("../../x"))]),
        (
            "hardlink up",
            vec![("evil/h", T::Link, Some("../outside.txt"))],
        ),
        (
            "hardlink absolute",
            vec![("evil/h", T::Link, Some("/etc/passwd"))],
        ),
        ("fifo", vec![("evil/fifo", T::Fifo, None)]),
        ("char device", vec![("evil/null", T::Char, None)]),
        (
            "symlink escaping through another symlink",
            vec![
                ("evil/x/y/d", T::Symlink, Some("../..")),
                ("evil/x/y/e", T::Symlink, Some("d/../../..")),
            ],
        ),
        (
            "a symlink over a folder (to write through it)",
            vec![
                ("evil/dir/f.txt", T::Regular, None),
                ("evil/dir", T::Symlink, Some("..")),
            ],
        ),
    ];
    let base = "http://127.0.0.1:9/"; // never reached: the archives are placed by hand
    std::fs::create_dir_all(dirs.archive()).unwrap();
    for (what, entries) in cases {
        std::fs::write(dirs.archive().join("evil.tgz"), evil_tgz(&entries)).unwrap();
        let err = untar_data_with(&url("evil.tgz"), dirs.opts(base)).unwrap_err();
        assert!(
            matches!(err, DataError::UnsafeArchive { .. }),
            "{what}: {err}"
        );
        assert!(err.to_string().contains("refusing"), "{what}: {err}");
        assert_eq!(
            dirs.listing(),
            ["archive", "archive/evil.tgz", "data"],
            "{what}: nothing extracted, nothing left behind"
        );
        assert!(!outside.exists(), "{what}");
        assert!(!dirs.root.join("evil.txt").exists() && !dirs.root.join("x").exists());
    }

    // the same in a zip
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    w.start_file("../evil.txt", o).unwrap();
    w.write_all(b"pwned").unwrap();
    let bytes = w.finish().unwrap().into_inner();
    std::fs::write(dirs.archive().join("evilzip.zip"), bytes).unwrap();
    let err = untar_data_with(&url("evilzip.zip"), dirs.opts(base)).unwrap_err();
    assert!(matches!(err, DataError::UnsafeArchive { .. }), "{err}");
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_symlink("evilzip/passwd", "/etc/passwd", o).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    std::fs::write(dirs.archive().join("evilzip.zip"), bytes).unwrap();
    let err = untar_data_with(&url("evilzip.zip"), dirs.opts(base)).unwrap_err();
    assert!(matches!(err, DataError::UnsafeArchive { .. }), "{err}");
    assert!(!dirs.root.join("evil.txt").exists() && !dirs.data().join("evilzip").exists());
}

#[test]
fn urls_and_known_checksums() {
    assert_eq!(
        URLs::PETS,
        "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz"
    );
    assert_eq!(
        URLs::MNIST_SAMPLE,
        "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz"
    );
    assert!(URLs::IMAGENETTE_160.ends_with("fast-ai-imageclas/imagenette2-160.tgz"));
    let pets = known_checksum(URLs::PETS).unwrap();
    assert_eq!(pets.size, Some(811_706_944));
    assert_eq!(
        pets.md5_head.as_deref(),
        Some("e4db5c768afd933bb91f5f594d7417a4")
    );
    assert_eq!(
        known_checksum("https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet"),
        Some(pets)
    );
    assert_eq!(known_checksum(URLs::MNIST_SAMPLE), None);
    assert_eq!(
        fastai::data::external::resolve_url(URLs::PETS, Some("http://mirror:8765")),
        "http://mirror:8765/fast-ai-imageclas/oxford-iiit-pet.tgz"
    );
    assert_eq!(
        fastai::data::external::resolve_url("http://elsewhere/x.tgz", Some("http://mirror/")),
        "http://elsewhere/x.tgz"
    );
}

/// The known size and md5 of the pets archive describe the file at its original address: they
/// apply there, not to a mirror (which may repackage); an explicit checksum applies everywhere.
#[test]
fn known_checksums_apply_at_the_original_address_only() {
    use fastai::data::external::{expected_checksum, resolve_url};
    let pets = known_checksum(URLs::PETS).unwrap();
    let mirror = resolve_url(URLs::PETS, Some("http://127.0.0.1:1/"));
    assert_eq!(
        expected_checksum(URLs::PETS, URLs::PETS, None),
        Some(pets.clone())
    );
    // fastai v1 spelling without the suffix: the same archive, the same address
    let bare = URLs::PETS.trim_end_matches(".tgz");
    assert_eq!(
        expected_checksum(bare, URLs::PETS, None),
        Some(pets.clone())
    );
    assert_eq!(expected_checksum(URLs::PETS, &mirror, None), None);
    let mine = Checksum {
        md5: Some("0123456789abcdef0123456789abcdef".into()),
        ..Default::default()
    };
    assert_eq!(
        expected_checksum(URLs::PETS, &mirror, Some(mine.clone())),
        Some(mine.clone())
    );
    assert_eq!(
        expected_checksum(URLs::PETS, URLs::PETS, Some(mine.clone())),
        Some(mine.clone())
    );
    assert_eq!(
        expected_checksum(URLs::MNIST_SAMPLE, URLs::MNIST_SAMPLE, None),
        None
    );

    // a small stand-in for the 812 MB archive, served by a mirror: accepted
    let server = Server::start();
    let dirs = Dirs::new("pets-mirror");
    let stand_in = tgz(&[
        (
            "oxford-iiit-pet/images/Abyssinian_1.jpg",
            b"not really a jpeg",
        ),
        (
            "oxford-iiit-pet/annotations/list.txt",
            b"Abyssinian_1 1 1 1",
        ),
    ]);
    assert_ne!(stand_in.len() as u64, pets.size.unwrap());
    server.serve(
        "fast-ai-imageclas/oxford-iiit-pet.tgz",
        stand_in.clone(),
        Mode::Normal,
    );
    let path = untar_data_with(URLs::PETS, dirs.opts(&server.base())).unwrap();
    assert_eq!(path, dirs.data().join("oxford-iiit-pet"));
    assert_eq!(
        read(path.join("annotations/list.txt")),
        "Abyssinian_1 1 1 1"
    );

    // ...but a checksum the caller passes is enforced on the mirror too
    let dirs = Dirs::new("pets-mirror-explicit");
    let opts = UntarOptions {
        checksum: Some(mine),
        ..dirs.opts(&server.base())
    };
    let err = untar_data_with(URLs::PETS, opts).unwrap_err();
    assert!(
        matches!(err, DataError::Checksum { what: "md5", .. }),
        "{err}"
    );
    assert!(!dirs.data().join("oxford-iiit-pet").exists());
    let right = Checksum {
        size: Some(stand_in.len() as u64),
        md5: Some(md5_hex(&stand_in)),
        ..Default::default()
    };
    let opts = UntarOptions {
        checksum: Some(right),
        ..dirs.opts(&server.base())
    };
    untar_data_with(URLs::PETS, opts).unwrap();
}

/// The only test that sets environment variables: `FASTAI_HOME` and `FASTAI_URL_BASE` are
/// the defaults of the plain `untar_data`.
#[test]
fn env_defaults() {
    let server = Server::start();
    let dirs = Dirs::new("env");
    server.serve(&server_path("tiny_ds.tgz"), dataset(), Mode::Normal);
    std::env::set_var("FASTAI_HOME", &dirs.root);
    std::env::set_var("FASTAI_URL_BASE", server.base());
    let r = untar_data(&url("tiny_ds.tgz"));
    std::env::remove_var("FASTAI_URL_BASE");
    std::env::remove_var("FASTAI_HOME");
    let path = r.unwrap();
    assert_eq!(path, dirs.root.join("data/tiny_ds"));
    assert!(dirs.root.join("archive/tiny_ds.tgz").is_file());
    assert_eq!(read(path.join("train/3/a.txt")), "three");
}
