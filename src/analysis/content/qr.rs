//! QR codes in images (rqrr), with the image size bounded before decoding:
//! the pixel count is read from the header, and decoding allocates at most
//! `limits.max_image_pixels` pixels, which also bounds the time.

use super::Limits;

#[derive(Debug, Clone, PartialEq)]
pub enum Skipped {
    /// Width × height above `limits.max_image_pixels`.
    TooLarge(u64),
    /// Not a PNG, JPEG or GIF image we can read.
    Unreadable,
}

/// The texts of the QR codes in an image (at most four).
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Vec<String>, Skipped> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|_| Skipped::Unreadable)?;
    let (w, h) = reader.into_dimensions().map_err(|_| Skipped::Unreadable)?;
    let px = w as u64 * h as u64;
    if px > limits.max_image_pixels {
        return Err(Skipped::TooLarge(px));
    }
    if w < 21 || h < 21 {
        return Ok(Vec::new());
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|_| Skipped::Unreadable)?;
    let mut l = image::Limits::default();
    l.max_image_width = Some(w);
    l.max_image_height = Some(h);
    l.max_alloc = Some(px.saturating_mul(8).max(1 << 20));
    reader.limits(l);
    let img = reader.decode().map_err(|_| Skipped::Unreadable)?.to_luma8();
    let (w, h) = img.dimensions();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| img.get_pixel(x as u32, y as u32)[0]);
    let mut out = Vec::new();
    for grid in prepared.detect_grids().into_iter().take(4) {
        if let Ok((_, text)) = grid.decode() {
            out.push(text);
        }
    }
    Ok(out)
}
