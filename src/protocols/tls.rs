//! TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): recognised by
//! content on any port, reassembled across TLS records, and parsed for the
//! server name, ALPN and ECH — the fields that say whom the client calls.
//!
//! A ClientHello is a handshake message that may be cut across several TLS
//! records (evasion tools split it on purpose) and several TCP segments
//! (post-quantum key shares make it ~1.8 kB). [`assemble`] works on the
//! contiguous client byte stream the flow stage hands it: it returns
//! [`Assembly::Need`] until the whole message is present, then the message
//! body — borrowed straight from the stream when one record holds it all,
//! otherwise copied once into a scratch buffer the caller reuses.
//!
//! Fields are kept as borrowed raw bytes (cipher and extension lists too) so
//! that fingerprints can be computed later without allocation, in the spirit
//! of tls-parser's "keep unknown values" rule.

use crate::bytes::Cursor;

/// Record content type: handshake.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake type: ClientHello.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Largest record payload allowed by RFC 8446 §5.1 (plus slack for TLS 1.2
/// compression/expansion, §6.2.3).
const MAX_RECORD: usize = 16_384 + 2048;
/// Largest ClientHello reassembled. Real ones are under 16 kB (the padding
/// extension grows some to 11 kB); the cap bounds buffering per connection.
pub const MAX_HELLO: usize = 64 * 1024;

/// Extension types read here.
pub mod ext {
    /// server_name (RFC 6066).
    pub const SERVER_NAME: u16 = 0;
    /// application_layer_protocol_negotiation (RFC 7301).
    pub const ALPN: u16 = 16;
    /// supported_versions (RFC 8446).
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// encrypted_client_hello (draft-ietf-tls-esni).
    pub const ECH: u16 = 0xfe0d;
}

/// A parsed ClientHello, borrowing from the handshake bytes.
#[derive(Debug, Clone, Copy)]
pub struct ClientHello<'a> {
    /// legacy_version (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The raw cipher_suites list.
    pub cipher_suites: &'a [u8],
    /// The raw extensions block (empty when absent).
    pub extensions: &'a [u8],
    /// The first host_name in server_name, raw.
    pub sni: Option<&'a [u8]>,
    /// The raw ALPN protocol_name_list.
    pub alpn: Option<&'a [u8]>,
    /// Whether encrypted_client_hello is present (the SNI is then the public name).
    pub ech: bool,
}

impl<'a> ClientHello<'a> {
    /// Iterates the ALPN protocol names.
    pub fn alpn_protocols(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut c = Cursor::new(self.alpn.unwrap_or(&[]));
        std::iter::from_fn(move || c.vec8())
    }
}

/// Why bytes are not a usable ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// Not a TLS handshake record starting with a ClientHello.
    NotClientHello,
    /// The message claims more than [`MAX_HELLO`] bytes or a record more than
    /// the protocol allows.
    TooLarge,
    /// A length inside the message runs past its end.
    Malformed,
}

/// Progress of reassembly on a stream prefix.
#[derive(Debug)]
pub enum Assembly<'a> {
    /// More stream bytes are needed.
    Need,
    /// The complete handshake message (type, length and body).
    Complete(&'a [u8]),
    /// The stream is not (or no longer) a ClientHello.
    Fail(HelloError),
}

/// Whether a stream prefix can be the start of a TLS ClientHello: `None`
/// when too few bytes are present to tell.
pub fn starts_client_hello(prefix: &[u8]) -> Option<bool> {
    match prefix {
        [t, 3, minor, _, _, hs, ..] => {
            Some(*t == CONTENT_HANDSHAKE && *minor <= 4 && *hs == HANDSHAKE_CLIENT_HELLO)
        }
        [t, ..] if *t != CONTENT_HANDSHAKE => Some(false),
        [_, v, ..] if *v != 3 => Some(false),
        _ => None,
    }
}

/// Reassembles the first handshake message from the records at the start of
/// `stream`. Uses `scratch` (cleared first) when the message spans records.
pub fn assemble<'a>(stream: &'a [u8], scratch: &'a mut Vec<u8>) -> Assembly<'a> {
    // First pass: find out whether the whole message is present.
    let mut c = Cursor::new(stream);
    let mut have = 0usize;
    let mut need: Option<usize> = None;
    let mut header = [0u8; 4];
    let mut records = 0usize;
    let mut single: Option<&'a [u8]> = None;
    while need.is_none_or(|n| have < n) {
        let Some(hdr) = c.bytes(5) else {
            return Assembly::Need;
        };
        if hdr[0] != CONTENT_HANDSHAKE || hdr[1] != 3 {
            return Assembly::Fail(HelloError::NotClientHello);
        }
        let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
        if len > MAX_RECORD {
            return Assembly::Fail(HelloError::TooLarge);
        }
        // Look at what is present of the record even when it is incomplete,
        // so an impossible message length is rejected without waiting.
        let present = c.rest().get(..len).unwrap_or(c.rest());
        records += 1;
        if records == 1 {
            single = Some(present);
        }
        // Only the first four bytes (type and length) need looking at.
        let head = present.len().min(4usize.saturating_sub(have));
        for &b in &present[..head] {
            header[have] = b;
            have += 1;
            if have == 4 {
                if header[0] != HANDSHAKE_CLIENT_HELLO {
                    return Assembly::Fail(HelloError::NotClientHello);
                }
                let body = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
                if body + 4 > MAX_HELLO {
                    return Assembly::Fail(HelloError::TooLarge);
                }
                need = Some(body + 4);
            }
        }
        have += present.len() - head;
        if c.skip(len).is_none() {
            // The record is cut: complete only if the message ends before the cut.
            if need.is_some_and(|n| have >= n) {
                break;
            }
            return Assembly::Need;
        }
    }
    let total = need.unwrap_or(0);
    if let Some(p) = single.filter(|p| p.len() >= total) {
        return Assembly::Complete(&p[..total]);
    }
    // Second pass: concatenate record payloads into the scratch buffer.
    scratch.clear();
    let mut c = Cursor::new(stream);
    while scratch.len() < total {
        let Some(hdr) = c.bytes(5) else { break };
        let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
        let payload = c.rest().get(..len).unwrap_or(c.rest());
        let take = payload.len().min(total - scratch.len());
        scratch.extend_from_slice(&payload[..take]);
        if c.skip(len).is_none() {
            break;
        }
    }
    Assembly::Complete(scratch.as_slice())
}

/// Parses a complete ClientHello handshake message (type, length, body).
pub fn parse_client_hello(msg: &[u8]) -> Result<ClientHello<'_>, HelloError> {
    let mut c = Cursor::new(msg);
    if c.u8() != Some(HANDSHAKE_CLIENT_HELLO) {
        return Err(HelloError::NotClientHello);
    }
    let len = c.u24().ok_or(HelloError::Malformed)? as usize;
    let body = c.bytes(len).ok_or(HelloError::Malformed)?;
    let mut c = Cursor::new(body);
    let legacy_version = c.u16().ok_or(HelloError::Malformed)?;
    c.skip(32).ok_or(HelloError::Malformed)?;
    c.vec8().ok_or(HelloError::Malformed)?;
    let cipher_suites = c.vec16().ok_or(HelloError::Malformed)?;
    c.vec8().ok_or(HelloError::Malformed)?;
    let extensions = if c.remaining() == 0 {
        &[][..]
    } else {
        c.vec16().ok_or(HelloError::Malformed)?
    };
    let mut hello = ClientHello {
        legacy_version,
        cipher_suites,
        extensions,
        sni: None,
        alpn: None,
        ech: false,
    };
    let mut e = Cursor::new(extensions);
    while e.remaining() > 0 {
        let ty = e.u16().ok_or(HelloError::Malformed)?;
        let data = e.vec16().ok_or(HelloError::Malformed)?;
        match ty {
            ext::SERVER_NAME => hello.sni = hello.sni.or_else(|| first_host_name(data)),
            ext::ALPN => hello.alpn = Cursor::new(data).vec16(),
            ext::ECH => hello.ech = true,
            _ => {}
        }
    }
    Ok(hello)
}

/// The first host_name entry of a server_name extension.
fn first_host_name(data: &[u8]) -> Option<&[u8]> {
    let list = Cursor::new(data).vec16()?;
    let mut c = Cursor::new(list);
    while c.remaining() > 0 {
        let kind = c.u8()?;
        let name = c.vec16()?;
        if kind == 0 && !name.is_empty() {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello with SNI "ab.example" and ALPN "h2".
    fn hello() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        let name = b"ab.example";
        let mut sni = vec![];
        sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        let alpn = [0u8, 3, 2, b'h', b'2'];
        let mut exts = vec![];
        exts.extend_from_slice(&[0, 0]);
        exts.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        exts.extend_from_slice(&sni);
        exts.extend_from_slice(&[0, 16]);
        exts.extend_from_slice(&(alpn.len() as u16).to_be_bytes());
        exts.extend_from_slice(&alpn);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    fn records(msg: &[u8], size: usize) -> Vec<u8> {
        let mut out = vec![];
        for chunk in msg.chunks(size) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn single_record_is_borrowed_and_parsed() {
        let msg = hello();
        let stream = records(&msg, 16384);
        let mut scratch = Vec::new();
        let Assembly::Complete(m) = assemble(&stream, &mut scratch) else {
            panic!("incomplete")
        };
        let h = parse_client_hello(m).unwrap();
        assert_eq!(h.sni, Some(&b"ab.example"[..]));
        assert_eq!(h.alpn_protocols().collect::<Vec<_>>(), vec![&b"h2"[..]]);
        assert!(scratch.is_empty(), "no copy for a single record");
    }

    #[test]
    fn message_split_over_tiny_records_and_any_prefix_needs_more() {
        let msg = hello();
        let stream = records(&msg, 3);
        for cut in 0..stream.len() {
            let mut scratch = Vec::new();
            assert!(
                matches!(assemble(&stream[..cut], &mut scratch), Assembly::Need),
                "cut {cut}"
            );
        }
        let mut scratch = Vec::new();
        let Assembly::Complete(m) = assemble(&stream, &mut scratch) else {
            panic!("incomplete")
        };
        assert_eq!(m, &msg[..]);
        assert_eq!(parse_client_hello(m).unwrap().sni, Some(&b"ab.example"[..]));
    }

    #[test]
    fn lengths_running_past_the_end_are_malformed_not_panics() {
        let msg = hello();
        for cut in 0..msg.len() {
            let mut m = msg[..cut].to_vec();
            if m.len() >= 4 {
                let l = (cut - 4) as u32;
                m[1..4].copy_from_slice(&l.to_be_bytes()[1..]);
            }
            let _ = parse_client_hello(&m);
        }
        assert_eq!(starts_client_hello(b"GET / HTTP/1.1"), Some(false));
        assert_eq!(starts_client_hello(&[22, 3]), None);
        let huge = [22u8, 3, 1, 0x40, 0, 1, 0xff, 0xff, 0xff];
        assert!(matches!(
            assemble(&huge, &mut Vec::new()),
            Assembly::Fail(HelloError::TooLarge)
        ));
    }
}
