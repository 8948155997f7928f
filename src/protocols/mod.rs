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
    push_escaped(out, raw, if spaces { &TEXT_KEPT } else { &NAME_KEPT });
}

/// Which bytes escaping keeps as they are, by value: an array lookup per
/// byte is half the work of the comparisons it stands for, on the path of
/// every DNS name.
pub(crate) type Kept = [bool; 256];

/// ASCII graphic characters but the backslash (which starts an escape).
const NAME_KEPT: Kept = kept(b"\\", false);
/// [`NAME_KEPT`] and the space: free text such as a User-Agent.
const TEXT_KEPT: Kept = kept(b"\\", true);
/// [`NAME_KEPT`] but the dot: one DNS label, whose dots would change the
/// name's meaning.
pub(crate) const LABEL_KEPT: Kept = kept(b"\\.", false);

/// ASCII graphic characters (and the space, if `space`) except `except`.
const fn kept(except: &[u8], space: bool) -> Kept {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_graphic() || (space && b == 0x20);
        b += 1;
    }
    let mut i = 0;
    while i < except.len() {
        t[except[i] as usize] = false;
        i += 1;
    }
    t
}

/// Appends `raw` to `out`, keeping the bytes `keep` marks and writing every
/// other byte as `\\DDD` (decimal, the RFC 1035 master-file form). Every
/// table keeps ASCII only, so what is appended is ASCII (valid UTF-8).
/// Runs of kept bytes are copied at once: names are almost always clean.
#[inline]
pub(crate) fn push_escaped_bytes(out: &mut Vec<u8>, raw: &[u8], keep: &Kept) {
    let mut rest = raw;
    loop {
        let run = rest
            .iter()
            .position(|&b| !keep[usize::from(b)])
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
pub(crate) fn push_escaped(out: &mut String, raw: &[u8], keep: &Kept) {
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
