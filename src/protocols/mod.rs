//! Protocols: pure parsers from bytes to records — DNS messages, TLS
//! ClientHellos, HTTP/1.x heads, QUIC Initial packets. No state and no I/O here: the flow stage
//! decides which bytes to hand over (a UDP payload, a reassembled TCP stream
//! prefix), and the analysis stage decides what the records mean.
//!
//! Every parser takes untrusted bytes, never panics, caps every length it
//! reads (the caps are constants next to the code that uses them), and
//! allocates nothing per message beyond reusable scratch space.

pub mod dns;
pub mod fingerprint;
pub mod http;
pub mod quic;
pub mod tls;

/// Writes `raw` (a name from the wire) into `out` as printable text: ASCII
/// graphic characters are kept, anything else becomes `\DDD`. Names reach
/// terminals, logs and SIEMs, so control bytes must never pass through.
pub fn escape_name(raw: &[u8], out: &mut String) {
    escape(raw, out, false);
}

/// Like [`escape_name`], but keeps spaces: for free text such as a
/// User-Agent.
pub fn escape_text(raw: &[u8], out: &mut String) {
    escape(raw, out, true);
}

fn escape(raw: &[u8], out: &mut String, spaces: bool) {
    out.clear();
    push_escaped(out, raw, |b| {
        (b.is_ascii_graphic() || (spaces && b == b' ')) && b != b'\\'
    });
}

/// Appends `raw` to `out`, keeping the bytes `keep` accepts and writing
/// every other byte as `\DDD` (decimal, the RFC 1035 master-file form).
/// `keep` must accept only ASCII, so the result is ASCII (valid UTF-8).
/// Runs of kept bytes are copied at once: names are almost always clean,
/// and this is on the path of every DNS name.
pub(crate) fn push_escaped_bytes(out: &mut Vec<u8>, raw: &[u8], keep: impl Fn(u8) -> bool) {
    let mut rest = raw;
    loop {
        let run = rest
            .iter()
            .position(|&b| !(b.is_ascii() && keep(b)))
            .unwrap_or(rest.len());
        let (clean, tail) = rest.split_at(run);
        out.extend_from_slice(clean);
        let Some((&b, tail)) = tail.split_first() else {
            return;
        };
        out.extend_from_slice(&[b'\\', b'0' + b / 100, b'0' + (b / 10) % 10, b'0' + b % 10]);
        rest = tail;
    }
}

/// [`push_escaped_bytes`] into a `String`.
pub(crate) fn push_escaped(out: &mut String, raw: &[u8], keep: impl Fn(u8) -> bool) {
    let mut bytes = std::mem::take(out).into_bytes();
    push_escaped_bytes(&mut bytes, raw, keep);
    // Only ASCII was added, so this cannot fail; keep what is there if it did.
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_keeps_names_and_neutralises_control_bytes() {
        let mut s = String::new();
        super::escape_name(b"ds.kaspersky.com", &mut s);
        assert_eq!(s, "ds.kaspersky.com");
        super::escape_name(b"a\x1b[31m b\\", &mut s);
        assert_eq!(s, "a\\027[31m\\032b\\092");
        super::escape_text(b"Mozilla/5.0 (X11)\n", &mut s);
        assert_eq!(s, "Mozilla/5.0 (X11)\\010");
    }
}
