//! Unit tests of URL-file parsing, extensions and image sniffing.
use super::*;

#[test]
fn url_lines_and_csv_rows() {
    let dir = std::env::temp_dir().join(format!("fastai-urlfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("urls.csv");
    // plain lines (the lesson's recipe): commas belong to the URL
    std::fs::write(
        &f,
        "https://a.example/1.jpg\n\
         \n\
         https://cdn.example/w_300,h_200/2.png\n\
         ftp://c.example/2.jpg\n\
         data:image/jpeg;base64,AAAA\n\
         \t HTTP://E.EXAMPLE/3.JPG  \n\
         https://d.example/4.jpg, a bear\n",
    )
    .unwrap();
    let e = read_url_file(&f).unwrap();
    assert_eq!(
        e,
        vec![
            Entry::Url("https://a.example/1.jpg".into()),
            Entry::Url("https://cdn.example/w_300,h_200/2.png".into()),
            Entry::NotHttp("ftp://c.example/2.jpg".into()),
            Entry::NotHttp("data:image/jpeg;base64,AAAA".into()),
            Entry::Url("HTTP://E.EXAMPLE/3.JPG".into()),
            Entry::Url("https://d.example/4.jpg".into()),
        ]
    );
    // a CSV export with a header: the first http(s) field of each row
    std::fs::write(
        &f,
        "\u{feff}id,url,title\n\
         1,https://a.example/1.jpg,black bear\n\
         2,\"http://b.example/x,y.png\",\"a, bear\"\n\
         3,ftp://c.example/2.jpg,x\n",
    )
    .unwrap();
    let e = read_url_file(&f).unwrap();
    assert_eq!(
        e,
        vec![
            Entry::Url("https://a.example/1.jpg".into()),
            Entry::Url("http://b.example/x,y.png".into()),
            Entry::NotHttp("3,ftp://c.example/2.jpg,x".into()),
        ]
    );
    std::fs::write(&f, "\n\n").unwrap();
    let err = read_url_file(&f).unwrap_err().to_string();
    assert!(err.contains("found no image URLs"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn extensions_from_url_then_content_type() {
    assert_eq!(ext_from_url("https://x.org/a/b.JPG?w=2"), Some("jpg"));
    assert_eq!(ext_from_url("https://x.org/a/b.jpeg#top"), Some("jpeg"));
    assert_eq!(ext_from_url("https://x.org/a/b.html"), None);
    assert_eq!(
        ext_from_url("https://x.png/photo"),
        None,
        "host is not a path"
    );
    assert_eq!(ext_from_url("https://x.org/"), None);
    assert_eq!(ext_from_mime("image/png"), Some("png"));
    assert_eq!(ext_from_mime("text/html"), None);
    assert_eq!(
        reason_kind("not an image (text/html, 9 bytes)"),
        "not an image"
    );
}

#[test]
fn sniffing_rejects_pages_and_broken_headers() {
    assert!(sniff(b"<html>nope</html>").unwrap_err().contains("<html>"));
    assert!(sniff(b"").is_err());
    let mut png = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(5, 4, image::Rgb([1, 2, 3]))
        .write_to(&mut png, ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    assert_eq!(sniff(&png), Ok(ImageFormat::Png));
    assert!(
        sniff(&png[..10]).is_err(),
        "magic bytes alone are not enough"
    );
}
