//! Fuzz target: the warning banner (`impostor::banner::apply`, what the milter
//! runs on tagged mail when `tag.banner = true`) on arbitrary bytes.
//!
//! Input: the raw message (header block + body), no flag byte. Any panic,
//! abort or hang is a finding. When it returns a body, that body must hold
//! at least what followed the header block (the banner only adds).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Some(body) = impostor::banner::apply(data, "OpenAI") {
            // a banner is inserted, nothing is cut: a new body shorter than a banner means an edit went wrong
            assert!(!body.is_empty(), "banner::apply returned an empty body");
        }
    });
}
