//! Uploaded images, judged by their bytes alone: which format they are (by magic bytes, never
//! by a file name), how large they claim to be, whether that is small enough to accept, and a
//! scaled-down thumbnail for the large ones.
//!
//! Everything here is a pure function over a byte slice. Size bounds are checked on the
//! decoded header before any pixel is decoded, and decoding itself runs under
//! [`image::Limits`], so a small file claiming huge dimensions (a decompression bomb) is
//! refused instead of allocated.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// The largest accepted width or height, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// The largest accepted pixel count (width × height): 40 megapixels.
pub const MAX_PIXELS: u64 = 40_000_000;

/// The most a decoder may allocate: the largest accepted image at 16-bit RGBA (8 bytes a
/// pixel), plus room for the decoder's own buffers.
pub const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 8 + 64 * 1024 * 1024;

/// The quality (1–100) JPEG thumbnails are encoded at.
const JPEG_THUMBNAIL_QUALITY: u8 = 85;

/// The PNG file signature.
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
/// A JPEG file's start-of-image marker followed by the first byte of the next marker.
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];

/// An image format natter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF or Exif).
    Jpeg,
    /// GIF, 87a or 89a (an animated one is thumbnailed from its first frame).
    Gif,
    /// WebP, lossy or lossless.
    Webp,
}

impl ImageFormat {
    /// The format's MIME type, e.g. `image/png`.
    pub fn content_type(&self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
        }
    }

    /// The usual file extension, without the dot, e.g. `png` or `jpg`.
    pub fn extension(&self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
        }
    }

    /// The format recognised from the leading magic bytes, or `None` when they match none.
    pub fn from_magic(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(PNG_MAGIC) {
            Some(ImageFormat::Png)
        } else if bytes.starts_with(JPEG_MAGIC) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageFormat::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(ImageFormat::Webp)
        } else {
            None
        }
    }

    /// The format [`thumbnail`] encodes an image of this format to: JPEG for JPEG, else PNG.
    pub fn thumbnail_format(&self) -> ImageFormat {
        match self {
            ImageFormat::Jpeg => ImageFormat::Jpeg,
            ImageFormat::Png | ImageFormat::Gif | ImageFormat::Webp => ImageFormat::Png,
        }
    }

    /// The `image` crate's name for this format.
    fn codec(self) -> image::ImageFormat {
        match self {
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Gif => image::ImageFormat::Gif,
            ImageFormat::Webp => image::ImageFormat::WebP,
        }
    }
}

/// What [`inspect`] learnt about an accepted image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format, recognised by magic bytes.
    pub format: ImageFormat,
    /// The width in pixels, from the decoded header.
    pub width: u32,
    /// The height in pixels, from the decoded header.
    pub height: u32,
    /// The bytes its decoded bitmap takes, from the header's size and colour type: what a
    /// decode allocates.
    pub bitmap_bytes: u64,
}

/// Why bytes were refused as an image, or could not be thumbnailed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The bytes start like none of PNG, JPEG, GIF or WebP.
    #[error("not a PNG, JPEG, GIF or WebP image")]
    NotAnImage,
    /// The bytes start like an image, but its header or pixels do not decode.
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
    /// The image is wider, taller or has more pixels than accepted.
    #[error(
        "the image is {width}x{height} pixels; at most {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all are accepted"
    )]
    TooLarge {
        /// The claimed width in pixels.
        width: u32,
        /// The claimed height in pixels.
        height: u32,
    },
    /// A decoded thumbnail could not be encoded (a server fault, not the upload's).
    #[error("the thumbnail could not be encoded: {0}")]
    Encode(String),
}

impl ImageError {
    /// The stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::NotAnImage => "unsupported_media_type",
            ImageError::Corrupt(_) => "corrupt_image",
            ImageError::TooLarge { .. } => "image_too_large",
            ImageError::Encode(_) => "internal",
        }
    }
}

/// Recognises `bytes` as a PNG, JPEG, GIF or WebP image by its magic bytes, decodes its header
/// for the dimensions, and refuses it unless they are within [`MAX_SIDE`] and [`MAX_PIXELS`].
///
/// Only the header is decoded: an image whose pixel data is damaged past the header passes
/// here and fails in [`thumbnail`].
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, ImageError> {
    let format = ImageFormat::from_magic(bytes).ok_or(ImageError::NotAnImage)?;
    // No strict size limits here: the claimed size is read and judged below, so that an
    // oversized image is reported as too large rather than as a decoder error.
    let decoder = open_decoder(bytes, format, Limits::default())?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    Ok(ImageInfo {
        format,
        width,
        height,
        bitmap_bytes: decoder.total_bytes(),
    })
}

/// A copy of the image scaled to fit a `max_side` × `max_side` square, keeping its aspect
/// ratio, or `None` when both sides already fit.
///
/// The copy is encoded in [`ImageFormat::thumbnail_format`] of `info.format`. `info` should
/// come from [`inspect`] on the same bytes; the bounds are checked again regardless, and the
/// decoder runs under [`image::Limits`] so it cannot allocate without bound. A `max_side` of
/// zero is taken as one.
pub fn thumbnail(
    bytes: &[u8],
    info: &ImageInfo,
    max_side: u32,
) -> Result<Option<Vec<u8>>, ImageError> {
    let max_side = max_side.max(1);
    if info.width <= max_side && info.height <= max_side {
        return Ok(None);
    }
    check_dimensions(info.width, info.height)?;

    // The header is judged first, so that bytes which do not match `info` are still refused
    // as too large with their real size; then the decoder gets strict limits for the pixels.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut decoder = open_decoder(bytes, info.format, limits.clone())?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    if width <= max_side && height <= max_side {
        // `info` described other bytes; these need no thumbnail.
        return Ok(None);
    }
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    let too_large = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge { width, height },
        other => corrupt(other),
    };
    limits.reserve(decoder.total_bytes()).map_err(too_large)?;
    decoder.set_limits(limits).map_err(too_large)?;
    let image = DynamicImage::from_decoder(decoder).map_err(too_large)?;

    let (new_width, new_height) = fit(width, height, max_side);
    let scaled = image.resize_exact(new_width, new_height, FilterType::Triangle);

    let mut out = Cursor::new(Vec::new());
    let written = match info.format.thumbnail_format() {
        ImageFormat::Jpeg => scaled.write_with_encoder(JpegEncoder::new_with_quality(
            &mut out,
            JPEG_THUMBNAIL_QUALITY,
        )),
        other => scaled.write_to(&mut out, other.codec()),
    };
    written.map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(Some(out.into_inner()))
}

/// A decoder for `bytes` in `format` that has read (and so validated) the image header.
fn open_decoder(
    bytes: &[u8],
    format: ImageFormat,
    limits: Limits,
) -> Result<impl ImageDecoder + '_, ImageError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.codec());
    reader.limits(limits);
    reader.into_decoder().map_err(corrupt)
}

/// Refuses empty dimensions as corrupt and dimensions past the bounds as too large.
fn check_dimensions(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt(format!(
            "the header claims an empty {width}x{height} image"
        )));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge { width, height });
    }
    Ok(())
}

/// The dimensions of `width` × `height` scaled so the longer side is `max_side`, the shorter
/// rounded to the nearest pixel (at least one).
fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let scale = |short: u32, long: u32| -> u32 {
        let (short, long, max) = (u64::from(short), u64::from(long), u64::from(max_side));
        let scaled = (short * max + long / 2) / long;
        // `scaled` ≤ `max_side` since `short` ≤ `long`, so the conversion cannot fail.
        u32::try_from(scaled).unwrap_or(max_side).max(1)
    };
    if width >= height {
        (max_side, scale(height, width))
    } else {
        (scale(width, height), max_side)
    }
}

/// An `image` decoding error as [`ImageError::Corrupt`].
fn corrupt(error: image::ImageError) -> ImageError {
    ImageError::Corrupt(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A `width` × `height` gradient encoded in `format` by the `image` crate's own encoders.
    fn encoded(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let pixels = RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(pixels)
            .write_to(&mut out, format.codec())
            .expect("encoding a test image");
        out.into_inner()
    }

    /// The CRC-32 (ISO-HDLC, as PNG uses) of `data`, bit by bit.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A PNG chunk: length, type, data, CRC over type and data.
    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(kind);
        chunk.extend_from_slice(data);
        let mut covered = kind.to_vec();
        covered.extend_from_slice(data);
        chunk.extend_from_slice(&crc32(&covered).to_be_bytes());
        chunk
    }

    /// A PNG whose IHDR claims `width` × `height` (8-bit RGB) and whose pixel data is empty.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = PNG_MAGIC.to_vec();
        png.extend(png_chunk(b"IHDR", &ihdr));
        png.extend(png_chunk(b"IDAT", &[]));
        png.extend(png_chunk(b"IEND", &[]));
        png
    }

    /// A GIF89a whose logical screen claims `width` × `height`, with a two-colour global
    /// palette and one 1x1 frame.
    fn gif_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&width.to_le_bytes());
        gif.extend_from_slice(&height.to_le_bytes());
        // Global palette of 2 entries, background 0, no aspect ratio; then the palette.
        gif.extend_from_slice(&[0x80, 0, 0, 0xFF, 0xFF, 0xFF, 0, 0, 0]);
        // A 1x1 frame at 0,0 without a local palette; LZW minimum code size 2, one data
        // sub-block (clear, index 0, end), the block terminator; then the trailer.
        gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]);
        gif
    }

    /// A lossless (VP8L) WebP of `width` × `height` (each 1 to 16383) pixels of one colour,
    /// built by hand.
    ///
    /// The bitstream, read least significant bit first: the signature byte 0x2F; 14 bits
    /// width-1 and 14 bits height-1, the alpha hint and a 3-bit version (both 0); then no
    /// transform, no colour cache and no meta prefix codes (three 0 bits), and five "simple"
    /// prefix codes (green, red, blue, alpha, distance) of one 1-bit symbol, 0, each written as
    /// the bits 1 (simple), 0 (one symbol), 0 (1-bit symbol), 0 (the symbol). One-symbol codes
    /// take no bits to read, so the pixels, all 0x00000000, need no more data.
    fn lossless_webp(width: u32, height: u32) -> Vec<u8> {
        let size = (width - 1) | ((height - 1) << 14);
        let mut bitstream = vec![0x2F];
        bitstream.extend_from_slice(&size.to_le_bytes());
        bitstream.extend_from_slice(&[0x88, 0x88, 0x08]);
        let mut chunk = b"VP8L".to_vec();
        chunk.extend_from_slice(&(bitstream.len() as u32).to_le_bytes());
        chunk.extend_from_slice(&bitstream);
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&(4 + chunk.len() as u32).to_le_bytes());
        webp.extend_from_slice(b"WEBP");
        webp.extend(chunk);
        webp
    }

    /// A JPEG made by the encoder whose frame header (SOF0) is patched to claim
    /// `width` × `height`.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut jpeg = encoded(ImageFormat::Jpeg, 16, 16);
        let sof = jpeg
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .expect("the encoder writes a baseline frame header");
        // Marker (2), length (2), precision (1), then height and width, big-endian.
        jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        jpeg
    }

    /// Decodes a thumbnail and returns its format and dimensions.
    fn decoded(bytes: &[u8]) -> (ImageFormat, u32, u32) {
        let format = ImageFormat::from_magic(bytes).expect("thumbnail has known magic");
        let image =
            image::load_from_memory_with_format(bytes, format.codec()).expect("thumbnail decodes");
        (format, image.width(), image.height())
    }

    #[test]
    fn images_inspect_recognises_each_format_and_size() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::Webp,
        ] {
            let bytes = encoded(format, 37, 21);
            let info = inspect(&bytes).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((info.format, info.width, info.height), (format, 37, 21));
            assert!(
                info.bitmap_bytes >= 37 * 21,
                "{format:?}: {}",
                info.bitmap_bytes
            );
        }
    }

    #[test]
    fn images_content_types_and_extensions() {
        let table = [
            (ImageFormat::Png, "image/png", "png"),
            (ImageFormat::Jpeg, "image/jpeg", "jpg"),
            (ImageFormat::Gif, "image/gif", "gif"),
            (ImageFormat::Webp, "image/webp", "webp"),
        ];
        for (format, content_type, extension) in table {
            assert_eq!(format.content_type(), content_type);
            assert_eq!(format.extension(), extension);
        }
        assert_eq!(ImageFormat::Jpeg.thumbnail_format(), ImageFormat::Jpeg);
        assert_eq!(ImageFormat::Webp.thumbnail_format(), ImageFormat::Png);
        assert_eq!(ImageFormat::Gif.thumbnail_format(), ImageFormat::Png);
        assert_eq!(ImageFormat::Png.thumbnail_format(), ImageFormat::Png);
    }

    #[test]
    fn images_hand_made_lossless_webp_is_recognised() {
        let webp = lossless_webp(1, 1);
        let pixels = image::load_from_memory_with_format(&webp, image::ImageFormat::WebP)
            .expect("hand-made WebP decodes")
            .to_rgba8();
        assert_eq!(pixels.dimensions(), (1, 1));
        // The header's alpha hint is 0, so the decoder reports the pixel as opaque.
        assert_eq!(pixels.get_pixel(0, 0).0, [0, 0, 0, 255]);
        let info = inspect(&webp).expect("hand-made WebP is accepted");
        assert_eq!(
            (info.format, info.width, info.height),
            (ImageFormat::Webp, 1, 1)
        );
    }

    #[test]
    fn images_png_behind_garbage_is_refused() {
        let mut bytes = b"GARBAGE!".to_vec();
        bytes.extend(encoded(ImageFormat::Png, 10, 10));
        assert!(matches!(inspect(&bytes), Err(ImageError::NotAnImage)));
    }

    #[test]
    fn images_magic_with_garbage_header_is_refused() {
        for magic in [
            PNG_MAGIC,
            JPEG_MAGIC,
            b"GIF89a".as_slice(),
            b"RIFF\x20\x00\x00\x00WEBP",
        ] {
            for fill in [0x00, 0x21, 0xFF] {
                let mut bytes = magic.to_vec();
                bytes.extend_from_slice(&[fill; 64]);
                match inspect(&bytes) {
                    Err(e @ ImageError::Corrupt(_)) => assert_eq!(e.code(), "corrupt_image"),
                    other => panic!("{magic:?} + {fill:#x}: expected corrupt, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn images_truncated_header_is_refused() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::Webp,
        ] {
            let bytes = encoded(format, 30, 20);
            // Long enough for the magic bytes, too short for the dimensions.
            let cut = &bytes[..12];
            assert_eq!(ImageFormat::from_magic(cut), Some(format));
            match inspect(cut) {
                Err(ImageError::Corrupt(_)) => {}
                other => panic!("{format:?}: expected corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn images_text_and_empty_input_are_refused() {
        let text = b"name,width,height\nphoto.png,1200,800\n";
        let error = inspect(text).expect_err("text is not an image");
        assert!(matches!(error, ImageError::NotAnImage));
        assert_eq!(error.code(), "unsupported_media_type");
        assert!(matches!(inspect(&[]), Err(ImageError::NotAnImage)));
        assert!(matches!(inspect(b"RIFF"), Err(ImageError::NotAnImage)));
        assert!(matches!(
            inspect(b"RIFF\0\0\0\0WAVEfmt "),
            Err(ImageError::NotAnImage)
        ));
    }

    #[test]
    fn images_huge_claimed_dimensions_are_refused() {
        let bomb = png_claiming(100_000, 100_000);
        let error = inspect(&bomb).expect_err("100000x100000 is too large");
        assert!(
            matches!(
                error,
                ImageError::TooLarge {
                    width: 100_000,
                    height: 100_000
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.code(), "image_too_large");

        // One side too long, and both sides within bounds but too many pixels in all.
        for (width, height) in [(MAX_SIDE + 1, 1), (8000, 6000)] {
            match inspect(&png_claiming(width, height)) {
                Err(ImageError::TooLarge {
                    width: w,
                    height: h,
                }) => {
                    assert_eq!((w, h), (width, height));
                }
                other => panic!("{width}x{height}: expected too large, got {other:?}"),
            }
        }

        let info = inspect(&gif_claiming(40, 30)).expect("the hand-made GIF is valid");
        assert_eq!((info.width, info.height), (40, 30));
        let gif = gif_claiming(65_535, 65_535);
        assert!(matches!(
            inspect(&gif),
            Err(ImageError::TooLarge {
                width: 65_535,
                height: 65_535
            })
        ));

        let jpeg = jpeg_claiming(60_000, 50_000);
        assert!(matches!(
            inspect(&jpeg),
            Err(ImageError::TooLarge {
                width: 60_000,
                height: 50_000
            })
        ));
        let info = inspect(&jpeg_claiming(40, 30)).expect("the patched JPEG is valid");
        assert_eq!((info.width, info.height), (40, 30));

        let webp = lossless_webp(10_000, 9_000);
        assert!(matches!(
            inspect(&webp),
            Err(ImageError::TooLarge {
                width: 10_000,
                height: 9_000
            })
        ));
        let info = inspect(&lossless_webp(300, 200)).expect("within bounds");
        assert_eq!((info.width, info.height), (300, 200));

        // Within bounds, the same hand-made header is accepted.
        let info = inspect(&png_claiming(MAX_SIDE, 4000)).expect("within bounds");
        assert_eq!((info.width, info.height), (MAX_SIDE, 4000));
    }

    #[test]
    fn images_thumbnail_refuses_oversized_info() {
        let bomb = png_claiming(100_000, 100_000);
        let info = ImageInfo {
            format: ImageFormat::Png,
            width: 100_000,
            height: 100_000,
            bitmap_bytes: 0,
        };
        assert!(matches!(
            thumbnail(&bomb, &info, 256),
            Err(ImageError::TooLarge { .. })
        ));
        // Info that lies about the bytes does not get past the decoder's own check.
        let lying = ImageInfo {
            format: ImageFormat::Png,
            width: 1000,
            height: 1000,
            bitmap_bytes: 0,
        };
        assert!(matches!(
            thumbnail(&bomb, &lying, 256),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn images_large_image_gets_a_thumbnail_keeping_aspect_ratio() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::Webp,
        ] {
            let bytes = encoded(format, 1200, 800);
            let info = inspect(&bytes).expect("accepted");
            let thumb = thumbnail(&bytes, &info, 320)
                .expect("thumbnails")
                .expect("1200x800 needs a thumbnail at 320");
            let (thumb_format, width, height) = decoded(&thumb);
            assert_eq!(thumb_format, format.thumbnail_format(), "{format:?}");
            assert_eq!((width, height), (320, 213), "{format:?}");
        }

        // A portrait image is bounded by its height.
        let bytes = encoded(ImageFormat::Png, 300, 900);
        let info = inspect(&bytes).expect("accepted");
        let thumb = thumbnail(&bytes, &info, 100)
            .expect("thumbnails")
            .expect("needs a thumbnail");
        assert_eq!(decoded(&thumb), (ImageFormat::Png, 33, 100));
    }

    #[test]
    fn images_small_image_gets_no_thumbnail() {
        let bytes = encoded(ImageFormat::Jpeg, 320, 200);
        let info = inspect(&bytes).expect("accepted");
        assert!(thumbnail(&bytes, &info, 320).expect("no error").is_none());
        assert!(thumbnail(&bytes, &info, 1024).expect("no error").is_none());
    }

    #[test]
    fn images_damaged_pixel_data_fails_the_thumbnail() {
        let bytes = encoded(ImageFormat::Png, 600, 400);
        // Keep the header and the start of the pixel data.
        let cut = &bytes[..bytes.len() / 2];
        let info = inspect(cut).expect("the header alone is intact");
        assert!(matches!(
            thumbnail(cut, &info, 100),
            Err(ImageError::Corrupt(_))
        ));
    }

    #[test]
    fn images_fit_keeps_aspect_ratio() {
        assert_eq!(fit(1200, 800, 320), (320, 213));
        assert_eq!(fit(800, 1200, 320), (213, 320));
        assert_eq!(fit(1000, 1000, 256), (256, 256));
        assert_eq!(fit(8192, 1, 100), (100, 1));
        assert_eq!(fit(1, 8192, 100), (1, 100));
    }
}
