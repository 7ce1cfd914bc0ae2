//! QR codes in images (rqrr), with the work bounded before and while decoding:
//!
//! * the pixel count is read from the header, and decoding allocates at most
//!   `limits.max_image_pixels` pixels;
//! * rqrr groups the finder patterns it finds ("capstones", a real QR code
//!   has three) three by three: for every capstone it tries every pair of
//!   neighbours, each try on a copy of the whole image, about N³ tries for N
//!   capstones. A 314-byte PNG tiled with finder patterns took minutes. So the
//!   candidates are counted first, the way rqrr finds them
//!   ([`finder_candidates`]), and an image with more than
//!   `limits.max_qr_finders` is not decoded;
//! * the deadline (`limits.max_qr_time` per message, set by the caller) is
//!   checked between the steps. It cannot interrupt rqrr's detection, whose
//!   cost the finder cap bounds.

use super::Limits;
use std::time::Instant;

/// QR codes decoded per image.
const MAX_CODES: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub enum Skipped {
    /// Width × height above `limits.max_image_pixels`.
    TooLarge(u64),
    /// More QR finder pattern candidates than `limits.max_qr_finders` (the count).
    TooManyFinders(usize),
    /// The deadline passed before a QR code was decoded (when: `"after thresholding"` …).
    OutOfTime(&'static str),
    /// Not a PNG, JPEG or GIF image we can read.
    Unreadable,
}

/// The texts of the QR codes in an image (at most four). `deadline` is
/// checked between the steps; codes decoded before it passed are kept.
pub fn decode(bytes: &[u8], limits: &Limits, deadline: Instant) -> Result<Vec<String>, Skipped> {
    let late = |step| if Instant::now() >= deadline { Err(Skipped::OutOfTime(step)) } else { Ok(()) };
    late("before decoding")?;
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
    late("after decoding the pixels")?;
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| img.get_pixel(x as u32, y as u32)[0]);
    drop(img);
    late("after thresholding")?;
    // rqrr's thresholded pixels: 0 is light
    let finders = finder_candidates(w as usize, h as usize, |x, y| prepared.get_pixel_at(x, y) != 0u8);
    if finders > limits.max_qr_finders {
        return Err(Skipped::TooManyFinders(finders));
    }
    let mut out = Vec::new();
    let grids = prepared.detect_grids();
    for grid in grids.into_iter().take(MAX_CODES) {
        if Instant::now() >= deadline {
            return if out.is_empty() { Err(Skipped::OutOfTime("after locating the QR codes")) } else { Ok(out) };
        }
        if let Ok((_, text)) = grid.decode() {
            out.push(text);
        }
    }
    Ok(out)
}

/// How many finder patterns ("capstones") rqrr can find in a thresholded
/// `w`×`h` image, at most; `dark(x, y)` reads a pixel. One pass over the pixels.
///
/// rqrr 0.11 (`detect::capstones_from_image`, not public) scans each row for
/// dark, light, dark, light, dark runs in the ratio 1:1:3:1:1 followed by a
/// light pixel (`LineScanner`, copied in [`ratio_1_1_3_1_1`]), and keeps a
/// hit whose outer runs are one region (4-connected dark pixels), whose core
/// is another, with the core's area 10–70% of the ring's; it then claims the
/// ring, so a ring gives at most one capstone. Here the same runs are found
/// on the same pixels (rqrr repaints dark regions while it scans, but never
/// lights a dark pixel or darkens a light one, so its runs and regions are
/// these), the regions are labelled with a union-find over the dark runs,
/// and the distinct rings of the hits that pass are counted. rqrr finds
/// fewer when a region it claimed as a ring is later some hit's core.
pub fn finder_candidates(w: usize, h: usize, dark: impl Fn(usize, usize) -> bool) -> usize {
    if w == 0 {
        return 0;
    }
    // dark runs of every row: [start, end), and the union-find parent of each
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut parent: Vec<u32> = Vec::new();
    // hits: (left ring, core, right ring), as indices into `runs`
    let mut hits: Vec<[u32; 3]> = Vec::new();
    let mut prev = 0..0;
    // the row's runs, dark and light, as (start, end, index in `runs` if dark)
    let mut row: Vec<(usize, usize, Option<u32>)> = Vec::new();
    for y in 0..h {
        row.clear();
        let first = runs.len();
        let mut start = 0;
        let mut is_dark = dark(0, y);
        for x in 1..=w {
            let d = x < w && dark(x, y);
            if x < w && d == is_dark {
                continue;
            }
            let id = is_dark.then(|| {
                runs.push((start as u32, x as u32));
                parent.push((runs.len() - 1) as u32);
                (runs.len() - 1) as u32
            });
            row.push((start, x, id));
            // a dark run that a light pixel (or the row's end) closes: rqrr's scanner tests the last five runs
            if let (Some(_), true) = (id, row.len() >= 5) {
                let r = &row[row.len() - 5..];
                let len: [usize; 5] = std::array::from_fn(|i| r[i].1 - r[i].0);
                if let (true, Some(a), Some(b), Some(c)) = (ratio_1_1_3_1_1(&len), r[0].2, r[2].2, r[4].2) {
                    hits.push([a, b, c]);
                }
            }
            start = x;
            is_dark = d;
        }
        // join each dark run to the overlapping dark runs of the row above (both lists are in order)
        let mut p = prev.start;
        for i in first..runs.len() {
            let (a0, a1) = runs[i];
            while p < prev.end && runs[p].1 <= a0 {
                p += 1;
            }
            let mut q = p;
            while q < prev.end && runs[q].0 < a1 {
                union(&mut parent, i as u32, q as u32);
                q += 1;
            }
        }
        prev = first..runs.len();
    }
    let mut area = vec![0u32; runs.len()];
    for (i, run) in runs.iter().enumerate() {
        let r = find(&mut parent, i as u32) as usize;
        area[r] += run.1 - run.0;
    }
    let mut rings: Vec<u32> = Vec::new();
    for [l, c, r] in hits {
        let (l, c, r) = (find(&mut parent, l), find(&mut parent, c), find(&mut parent, r));
        let ratio = area[c as usize] as u64 * 100 / area[r as usize] as u64;
        if l == r && c != r && 10 < ratio && ratio < 70 {
            rings.push(r);
        }
    }
    rings.sort_unstable();
    rings.dedup();
    rings.len()
}

/// rqrr's `LineScanner::test_for_capstone`: five runs in the ratio 1:1:3:1:1,
/// each within ±75% of the mean of the four outer ones.
fn ratio_1_1_3_1_1(r: &[usize; 5]) -> bool {
    const CHECK: [usize; 5] = [1, 1, 3, 1, 1];
    let avg = (r[0] + r[1] + r[3] + r[4]) / 4;
    let err = avg * 3 / 4;
    (0..5).all(|i| r[i] >= CHECK[i] * avg - err && r[i] <= CHECK[i] * avg + err)
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        // path halving
        parent[i as usize] = parent[parent[i as usize] as usize];
        i = parent[i as usize];
    }
    i
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (a, b) = (find(parent, a), find(parent, b));
    if a != b {
        parent[a.max(b) as usize] = a.min(b);
    }
}
