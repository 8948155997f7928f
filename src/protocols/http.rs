//! HTTP/1.x request and response heads (RFC 9112), on any port, parsed with
//! `httparse` (zero-copy, no allocation) and a fixed header array.
//!
//! From requests: method, path, Host and User-Agent — an update client that
//! fetches by address carries no name, so its path and User-Agent are the
//! evidence. From responses: status and Content-Type. Message framing
//! (Content-Length, chunked) is reported so the flow stage can skip bodies and
//! read every request of a keep-alive connection.

/// Largest request or response head buffered (bytes).
pub const MAX_HEAD: usize = 16 * 1024;
/// Headers read per message; more makes the message unparsable.
const MAX_HEADERS: usize = 96;

/// Methods that start a request (RFC 9110 §9 plus WebDAV's common ones).
const METHODS: [&[u8]; 13] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
    b"PROPFIND ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
];

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes.
    UntilClose,
}

/// A request head.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Method token.
    pub method: &'a str,
    /// Request target as sent (path and query, or absolute form).
    pub path: &'a str,
    /// Host header, raw.
    pub host: Option<&'a [u8]>,
    /// User-Agent header, raw.
    pub user_agent: Option<&'a [u8]>,
    /// Body framing.
    pub body: Body,
    /// Bytes of the head.
    pub head_len: usize,
}

/// A response head.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// Status code.
    pub status: u16,
    /// Content-Type header, raw.
    pub content_type: Option<&'a [u8]>,
    /// Body framing (given the request method).
    pub body: Body,
    /// Bytes of the head.
    pub head_len: usize,
}

/// Progress of a parse over a stream prefix.
#[derive(Debug)]
pub enum Parsed<T> {
    /// More bytes are needed.
    Need,
    /// Parsed.
    Done(T),
    /// Not HTTP, or broken beyond recovery.
    Fail,
}

/// Whether a prefix can start a request: `None` when too short to tell.
/// Common methods are recognised from their first bytes; any other method
/// token (UPnP's SUBSCRIBE, WebDAV's REPORT, ...) once the request line is
/// complete and ends in `HTTP/1.x`.
pub fn starts_request(prefix: &[u8]) -> Option<bool> {
    let mut undecided = false;
    for m in METHODS {
        let n = m.len().min(prefix.len());
        if prefix[..n] == m[..n] {
            if n == m.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided {
        return None;
    }
    let token = prefix
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-')
        .count();
    if token == 0 || token > 20 {
        return Some(false);
    }
    match prefix.get(token) {
        None => return None,
        Some(b' ') => {}
        Some(_) => return Some(false),
    }
    match prefix
        .iter()
        .take(MAX_REQUEST_LINE)
        .position(|&b| b == b'\n')
    {
        Some(end) => {
            let line = prefix[..end].strip_suffix(b"\r").unwrap_or(&prefix[..end]);
            Some(line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0"))
        }
        None if prefix.len() < MAX_REQUEST_LINE => None,
        None => Some(false),
    }
}

/// How far a request line is searched for its end when the method is not a
/// common one.
const MAX_REQUEST_LINE: usize = 2048;

/// Whether a prefix can start a response (`HTTP/1.`).
pub fn starts_response(prefix: &[u8]) -> Option<bool> {
    let m = b"HTTP/1.";
    let n = m.len().min(prefix.len());
    if prefix[..n] != m[..n] {
        Some(false)
    } else if n == m.len() {
        Some(true)
    } else {
        None
    }
}

fn header<'a>(headers: &[httparse::Header<'a>], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

fn framing(headers: &[httparse::Header<'_>]) -> Option<Body> {
    if let Some(te) = header(headers, "transfer-encoding") {
        let chunked = te
            .split(|&b| b == b',')
            .next_back()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Some(if chunked {
            Body::Chunked
        } else {
            Body::UntilClose
        });
    }
    match header(headers, "content-length") {
        Some(v) => {
            let n = std::str::from_utf8(v.trim_ascii())
                .ok()?
                .parse::<u64>()
                .ok()?;
            Some(if n == 0 { Body::Empty } else { Body::Length(n) })
        }
        None => None,
    }
}

/// Parses a request head at the start of `prefix`.
pub fn parse_request(prefix: &[u8]) -> Parsed<Request<'_>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let config = {
        let mut c = httparse::ParserConfig::default();
        c.allow_multiple_spaces_in_request_line_delimiters(true)
            .ignore_invalid_headers_in_requests(true);
        c
    };
    match config.parse_request(&mut req, prefix) {
        Ok(httparse::Status::Complete(head_len)) => {
            let hs = req.headers;
            // A request without framing headers has no body (RFC 9112 §6.3).
            let body = match framing(hs) {
                Some(b) => b,
                None if header(hs, "content-length").is_some() => return Parsed::Fail,
                None => Body::Empty,
            };
            Parsed::Done(Request {
                method: req.method.unwrap_or(""),
                path: req.path.unwrap_or(""),
                host: header(hs, "host"),
                user_agent: header(hs, "user-agent"),
                body,
                head_len,
            })
        }
        Ok(httparse::Status::Partial) if prefix.len() < MAX_HEAD => Parsed::Need,
        _ => Parsed::Fail,
    }
}

/// Parses a response head at the start of `prefix`; `head_request` says
/// whether it answers a HEAD (which has no body whatever the headers say).
pub fn parse_response(prefix: &[u8], head_request: bool) -> Parsed<Response<'_>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let config = {
        let mut c = httparse::ParserConfig::default();
        c.allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_multiple_spaces_in_response_status_delimiters(true);
        c
    };
    match config.parse_response(&mut resp, prefix) {
        Ok(httparse::Status::Complete(head_len)) => {
            let status = resp.code.unwrap_or(0);
            let hs = resp.headers;
            let body =
                if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
                    Body::Empty
                } else {
                    framing(hs).unwrap_or(Body::UntilClose)
                };
            Parsed::Done(Response {
                status,
                content_type: header(hs, "content-type"),
                body,
                head_len,
            })
        }
        Ok(httparse::Status::Partial) if prefix.len() < MAX_HEAD => Parsed::Need,
        _ => Parsed::Fail,
    }
}

/// Parses a chunk-size line; gives the chunk size and the line length.
pub fn parse_chunk_size(prefix: &[u8]) -> Parsed<(u64, usize)> {
    match httparse::parse_chunk_size(prefix) {
        Ok(httparse::Status::Complete((len, size))) => Parsed::Done((size, len)),
        Ok(httparse::Status::Partial) if prefix.len() < 1024 => Parsed::Need,
        _ => Parsed::Fail,
    }
}

/// Length of the next line including its CRLF (for chunk trailers).
pub fn line_len(prefix: &[u8]) -> Parsed<usize> {
    match prefix.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Parsed::Done(i + 2),
        None if prefix.len() < MAX_HEAD => Parsed::Need,
        None => Parsed::Fail,
    }
}

/// The media type of a Content-Type value: lowercase, parameters and
/// whitespace removed (`Text/HTML; charset=x` → `text/html`), written into
/// `out` (no allocation once `out` has capacity).
pub fn media_type(value: &[u8], out: &mut String) {
    out.clear();
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or(&[])
        .trim_ascii();
    for &b in essence {
        if b.is_ascii_graphic() {
            out.push(char::from(b.to_ascii_lowercase()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fields_and_framing() {
        let raw = b"GET /updaters/updater.xml.dif HTTP/1.1\r\nHost: 37.48.82.67\r\nUser-Agent: KL\r\n\r\nGET /x";
        let Parsed::Done(r) = parse_request(raw) else {
            panic!()
        };
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/updaters/updater.xml.dif");
        assert_eq!(r.host, Some(&b"37.48.82.67"[..]));
        assert_eq!(r.user_agent, Some(&b"KL"[..]));
        assert_eq!(r.body, Body::Empty);
        assert_eq!(&raw[r.head_len..], b"GET /x");
        assert!(matches!(parse_request(&raw[..20]), Parsed::Need));
        assert!(matches!(
            parse_request(b"\x16\x03\x01\x02\x00\x01"),
            Parsed::Fail
        ));
    }

    #[test]
    fn response_framing_and_media_type() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: Application/X-KaspAVUpdate; x=1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let Parsed::Done(r) = parse_response(raw, false) else {
            panic!()
        };
        assert_eq!(r.body, Body::Chunked);
        let mut m = String::new();
        media_type(r.content_type.unwrap(), &mut m);
        assert_eq!(m, "application/x-kaspavupdate");
        let Parsed::Done(r) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
        else {
            panic!()
        };
        assert_eq!(r.body, Body::Empty, "a HEAD response has no body");
    }

    #[test]
    fn starts() {
        assert_eq!(starts_request(b"GE"), None);
        assert_eq!(starts_request(b"GET /"), Some(true));
        assert_eq!(starts_request(b"HTTP/1.1"), Some(false));
        assert_eq!(starts_request(b"SUBSCRIBE /evt HT"), None);
        assert_eq!(
            starts_request(b"SUBSCRIBE /evt HTTP/1.1\r\nHost: x\r\n"),
            Some(true)
        );
        assert_eq!(starts_request(b"EHLO mail.example\r\n"), Some(false));
        assert_eq!(starts_request(b"SSH-2.0-OpenSSH"), Some(false));
        assert_eq!(starts_response(b"HTTP/1.0 200"), Some(true));
        assert_eq!(starts_response(b"HTT"), None);
    }
}
