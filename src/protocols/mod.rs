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
/// `keep` must accept only ASCII (a kept byte is written as one char).
/// Runs of kept bytes are copied at once: names are almost always clean,
/// and this is on the path of every DNS question.
pub(crate) fn push_escaped(out: &mut String, raw: &[u8], keep: impl Fn(u8) -> bool) {
    let mut rest = raw;
    loop {
        let run = rest
            .iter()
            .position(|&b| !(b.is_ascii() && keep(b)))
            .unwrap_or(rest.len());
        let (clean, tail) = rest.split_at(run);
        out.extend(clean.iter().map(|&b| char::from(b)));
        let Some((&b, tail)) = tail.split_first() else {
            return;
        };
        out.push('\\');
        out.push(char::from(b'0' + b / 100));
        out.push(char::from(b'0' + (b / 10) % 10));
        out.push(char::from(b'0' + b % 10));
        rest = tail;
    }
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
