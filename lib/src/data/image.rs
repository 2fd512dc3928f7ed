//! Opening image files as 8-bit RGB, whatever they were stored as.
//!
//! Grayscale, grayscale+alpha, RGBA, palette and 16-bit images all become RGB (alpha is dropped, as
//! PIL's `convert('RGB')` does). An empty, truncated or corrupt file is an error naming the file.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageReader, RgbImage};

use super::DataError;

/// Opens `path` as an RGB image.
pub fn open_image(path: &Path) -> Result<RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Io {
        op: "reading",
        path: path.to_path_buf(),
        source: e,
    })?;
    decode_image(&bytes).map_err(|msg| DataError::BadImage {
        path: path.to_path_buf(),
        msg,
    })
}

/// Opens a segmentation mask: one 8-bit class id per pixel. Grayscale and palette files give
/// their stored values (a palette PNG's indices, as PIL's mode "P"); colour files are an error,
/// since their pixels are colours, not ids.
pub fn open_mask(path: &Path) -> Result<GrayImage, DataError> {
    let bytes = std::fs::read(path).map_err(DataError::io("reading", path))?;
    let bad = |msg: String| DataError::BadImage {
        path: path.to_path_buf(),
        msg,
    };
    if bytes.is_empty() {
        return Err(bad("the mask file is empty".into()));
    }
    if let Some(ids) = palette_indices(&bytes) {
        return ids.map_err(bad);
    }
    let img = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?
        .decode()
        .map_err(|e| bad(e.to_string()))?;
    match img {
        DynamicImage::ImageLuma8(g) => Ok(g),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) => Ok(img.to_luma8()),
        other => Err(bad(format!(
            "a mask must hold one class id per pixel (8-bit grayscale or palette), this file \
             is {:?}",
            other.color()
        ))),
    }
}

/// A palette PNG's raw indices (the `image` crate would expand them to colours).
fn palette_indices(bytes: &[u8]) -> Option<Result<GrayImage, String>> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().ok()?;
    let info = reader.info();
    if info.color_type != png::ColorType::Indexed {
        return None;
    }
    let (w, h, depth) = (info.width, info.height, info.bit_depth as u8);
    let mut buf = vec![0; reader.output_buffer_size()?];
    let frame = match reader.next_frame(&mut buf) {
        Ok(f) => f,
        Err(e) => return Some(Err(e.to_string())),
    };
    let per_row = frame.line_size;
    let mut ids = Vec::with_capacity((w * h) as usize);
    for row in buf.chunks(per_row).take(h as usize) {
        for x in 0..w as usize {
            let bit = x * depth as usize;
            let byte = row[bit / 8];
            let shift = 8 - depth as usize - bit % 8;
            ids.push((byte >> shift) & ((1u16 << depth) - 1) as u8);
        }
    }
    Some(GrayImage::from_raw(w, h, ids).ok_or_else(|| "bad palette image".to_string()))
}

/// Decodes image bytes (format guessed from the content, not the name) to RGB.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("not an image format we can read (jpeg, png, gif, bmp, webp, tiff)".into());
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        // The decoder fills the missing rows with grey without a word; PIL calls this
        // "image file is truncated".
        return Err(
            "the JPEG file is truncated: it ends before its end-of-image marker \
                    (an interrupted download?); download it again or delete it"
                .into(),
        );
    }
    let img = reader.decode().map_err(|e| e.to_string())?;
    if img.width() == 0 || img.height() == 0 {
        return Err("the image has no pixels".into());
    }
    Ok(img.into_rgb8()) // (no copy when the picture already is 8-bit RGB)
}

/// Whether a JPEG stream reaches its end-of-image marker (FF D9) after its last scan (FF DA).
/// Inside the compressed data a literal FF byte is always followed by 00, so a marker found there
/// is real; an EOI inside an embedded thumbnail comes before the main image's scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    match (marker(0xDA), marker(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

/// Width and height of an image file, read from its header only (fast).
pub fn image_size(path: &Path) -> Result<(u32, u32), DataError> {
    let reader = ImageReader::open(path)
        .map_err(|e| DataError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source: e,
        })?
        .with_guessed_format()
        .map_err(|e| DataError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source: e,
        })?;
    reader.into_dimensions().map_err(|e| DataError::BadImage {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgba};

    fn encode(img: DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    #[test]
    fn odd_pixel_formats_become_rgb() {
        let gray = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(3, 2, Luma([200u8])));
        let rgb = decode_image(&encode(gray, ImageFormat::Png)).unwrap();
        assert_eq!(rgb.dimensions(), (3, 2));
        assert_eq!(rgb.get_pixel(0, 0).0, [200, 200, 200]);

        let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(2, 2, Rgba([10u8, 20, 30, 0])));
        assert_eq!(
            decode_image(&encode(rgba, ImageFormat::Png))
                .unwrap()
                .get_pixel(1, 1)
                .0,
            [10, 20, 30]
        );

        let g16 = DynamicImage::ImageLuma16(ImageBuffer::from_pixel(2, 2, Luma([65535u16])));
        assert_eq!(
            decode_image(&encode(g16, ImageFormat::Png))
                .unwrap()
                .get_pixel(0, 0)
                .0,
            [255, 255, 255]
        );
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(decode_image(b"").unwrap_err().contains("empty"));
        assert!(decode_image(b"this is text, not a picture").is_err());
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(64, 64, image::Rgb([1u8, 2, 3])));
        let jpg = encode(rgb, ImageFormat::Jpeg);
        assert!(
            decode_image(&jpg[..jpg.len() / 3]).is_err(),
            "a truncated jpeg must not decode silently"
        );
    }

    #[test]
    fn a_jpeg_cut_anywhere_is_reported_as_truncated() {
        // a detailed picture, so that the compressed data is long
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(160, 120, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        }));
        let jpg = encode(rgb, ImageFormat::Jpeg);
        assert!(decode_image(&jpg).is_ok());
        for cut in [jpg.len() / 2, jpg.len() * 9 / 10, jpg.len() - 2] {
            let err = decode_image(&jpg[..cut]).unwrap_err();
            assert!(
                err.contains("truncated"),
                "cut at {cut} of {}: {err}",
                jpg.len()
            );
        }
        // bytes after the end marker (some cameras and servers add them) are fine
        let mut padded = jpg.clone();
        padded.extend_from_slice(&[0, 0, 0, 0x42]);
        assert!(decode_image(&padded).is_ok());
    }
}
