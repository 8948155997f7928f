//! The self-contained HTML report (`--html FILE`): one file that opens
//! offline, with the summary, a sortable and filterable host table, per-host
//! connection timelines (inline SVG) and the servers' places.
//!
//! The page is a fixed template (`page.html`, `report.css`, `report.js`,
//! compiled in) plus the [`Report`] as JSON, which the script renders in the
//! browser. Every name in the report came from the wire and is hostile, so:
//! - the JSON sits in a `<script type="application/json">` data block with
//!   `<`, `>`, `&`, U+2028 and U+2029 written as `\uXXXX` escapes, so no
//!   value can close the block or open a tag ([`embed_json`]);
//! - the script builds the page with `createElement`/`textContent` only,
//!   never parsing data as HTML;
//! - a Content-Security-Policy allows nothing but the page's own script and
//!   style, by their SHA-256 computed here, so even a bug cannot load or
//!   run anything else.
//!
//! The script treats every report field as optional, so reports with more
//! (or fewer) fields than this version writes still render.

use super::Report;
use ring::digest;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use thiserror::Error;

const PAGE: &str = include_str!("page.html");
const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Why the HTML report could not be produced.
#[derive(Debug, Error)]
pub enum HtmlError {
    /// The report could not be serialised.
    #[error("cannot serialise the report: {0}")]
    Json(#[from] serde_json::Error),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// The whole page for `report`.
///
/// # Errors
/// When the report cannot be serialised (not expected for this model).
pub fn render(report: &Report) -> Result<String, HtmlError> {
    let json = serde_json::to_string(report)?;
    Ok(page(&json))
}

/// The page around an already serialised report (any JSON document).
pub fn page(report_json: &str) -> String {
    let csp = format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; img-src data:; \
         base-uri 'none'; form-action 'none'",
        csp_hash(JS),
        csp_hash(CSS)
    );
    let mut out = String::with_capacity(PAGE.len() + CSS.len() + JS.len() + report_json.len() + 64);
    let mut rest = PAGE;
    // The template's placeholders, in order; data is inserted, never scanned.
    for (mark, value) in [
        ("{{CSP}}", Part::Text(&csp)),
        ("{{VERSION}}", Part::Text(env!("CARGO_PKG_VERSION"))),
        ("{{CSS}}", Part::Text(CSS)),
        ("{{DATA}}", Part::Json(report_json)),
        ("{{JS}}", Part::Text(JS)),
    ] {
        let Some((head, tail)) = rest.split_once(mark) else {
            continue;
        };
        out.push_str(head);
        match value {
            Part::Text(t) => out.push_str(t),
            Part::Json(j) => embed_json(&mut out, j),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

enum Part<'a> {
    Text(&'a str),
    Json(&'a str),
}

/// Appends JSON text so that it can sit inside a `<script>` data block:
/// `<`, `>`, `&` and the JavaScript line separators U+2028/U+2029 become
/// `\uXXXX` escapes. They can only occur inside JSON strings, where the
/// escape means the same character, so the JSON value is unchanged.
pub fn embed_json(out: &mut String, json: &str) {
    let mut start = 0;
    for (i, ch) in json.char_indices() {
        let esc = match ch {
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            _ => continue,
        };
        out.push_str(json.get(start..i).unwrap_or_default());
        out.push_str(esc);
        start = i + ch.len_utf8();
    }
    out.push_str(json.get(start..).unwrap_or_default());
}

/// The CSP source expression allowing an inline element whose text is `body`.
fn csp_hash(body: &str) -> String {
    let d = digest::digest(&digest::SHA256, body.as_bytes());
    format!("sha256-{}", base64(d.as_ref()))
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(ALPHABET[(v & 63) as usize]);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
    out
}

/// Writes the page for `report` to `path` atomically: into a temporary file
/// in the same folder, then renamed over `path`, so a reader (a browser
/// reloading during `live`) never sees half a page.
///
/// # Errors
/// Serialisation or file errors.
pub fn write(report: &Report, path: &Path) -> Result<(), HtmlError> {
    let page = render(report)?;
    write_atomic(path, page.as_bytes()).map_err(|source| HtmlError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it to `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn csp_hash_is_sha256_base64() {
        // echo -n 'abc' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            csp_hash("abc"),
            "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn embedded_json_cannot_close_the_script_and_still_parses() {
        let hostile = serde_json::json!({
            "name": "</script><script>alert(1)</script>&amp;\u{2028}\u{2029}<!--"
        });
        let mut out = String::new();
        embed_json(&mut out, &hostile.to_string());
        for bad in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(!out.contains(bad), "{bad:?} left in {out}");
        }
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, hostile);
    }

    #[test]
    fn page_has_one_data_block_and_hashes_its_own_script_and_style() {
        let p = page(r#"{"summary":{},"hosts":[{"ip":"</script>"}]}"#);
        assert_eq!(p.matches("</script>").count(), 2, "data block + script");
        assert!(p.contains(&csp_hash(JS)) && p.contains(&csp_hash(CSS)));
        assert!(p.contains(&format!("<script>{JS}</script>")));
        assert!(p.contains(&format!("<style>{CSS}</style>")));
        assert!(!p.contains("{{"), "every placeholder filled");
    }

    #[test]
    fn write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomic(&dir.path().join("no/such/dir/r.html"), b"x").is_err());
    }
}
