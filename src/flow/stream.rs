//! Application parsing over one direction of a TCP connection.
//!
//! [`AppStream`] receives the direction's bytes in order (from
//! [`super::tcp`]) and runs the protocol parsers over them: it recognises TLS
//! and HTTP by content on any port, reads DNS over TCP on port 53, and emits
//! [`Observation`]s. Bytes are parsed straight from the segment whenever a
//! message is complete in it; only an incomplete message is copied into the
//! stream's buffer, which is capped per protocol. Bodies are skipped, not
//! buffered, so every request of a keep-alive connection is seen.

use crate::protocols::{dns, http, tls};

/// What one direction's bytes turned out to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// TLS (a ClientHello was recognised).
    Tls,
    /// HTTP/1.x.
    Http,
    /// DNS over TCP.
    Dns,
}

/// A parsed application record, borrowed from the stream or scratch space.
#[derive(Debug)]
pub enum Observation<'a> {
    /// A TLS ClientHello.
    ClientHello(tls::ClientHello<'a>),
    /// A ClientHello from QUIC Initial packets.
    QuicClientHello {
        /// The hello.
        hello: tls::ClientHello<'a>,
        /// The QUIC version of the Initial packets.
        version: crate::protocols::quic::Version,
    },
    /// An HTTP request head.
    HttpRequest(http::Request<'a>),
    /// An HTTP response head.
    HttpResponse(http::Response<'a>),
    /// A DNS message (over TCP or UDP).
    Dns(&'a dns::DnsMessage),
}

/// Reusable buffers for parsing, one set per worker.
#[derive(Debug, Default)]
pub struct Scratch {
    /// ClientHellos spread over several records are concatenated here.
    pub tls: Vec<u8>,
    /// DNS messages are decoded into this.
    pub dns: dns::DnsMessage,
    /// QUIC Initial decryption buffers and key cache.
    pub quic: super::quic::QuicScratch,
    /// Emptied stream buffers, for the next message that spans segments.
    spare: SpareBuffers,
}

/// Stream buffers given back once their message was parsed, kept for the
/// next incomplete message: most messages that span segments (a
/// ClientHello in two, an HTTP head cut by the MSS) need a few KiB, and
/// taking a buffer from here saves an allocation, a reallocation and a
/// free per such message. At most [`SpareBuffers::MAX`] buffers of up to
/// [`SpareBuffers::LARGEST`] bytes each are kept (larger ones are freed):
/// 64 KiB per worker.
#[derive(Debug, Default)]
struct SpareBuffers(Vec<Vec<u8>>);

impl SpareBuffers {
    const MAX: usize = 16;
    const LARGEST: usize = 4096;

    /// A spare buffer of at least `len` bytes' capacity, else an empty one.
    fn take(&mut self, len: usize) -> Vec<u8> {
        match self.0.iter().rposition(|b| b.capacity() >= len) {
            Some(i) => self.0.swap_remove(i),
            None => Vec::new(),
        }
    }

    /// Keeps `buf` (emptied) if it is small enough and there is room.
    fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && buf.capacity() <= Self::LARGEST && self.0.len() < Self::MAX {
            buf.clear();
            self.0.push(buf);
        }
    }
}

/// HEAD requests awaiting their response (so a response's body framing is
/// known): a FIFO of up to 64 flags in a bit mask.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pipeline {
    bits: u64,
    len: u8,
}

impl Pipeline {
    fn push(&mut self, head: bool) {
        if self.len < 64 {
            self.bits |= u64::from(head) << self.len;
            self.len += 1;
        }
    }

    fn pop(&mut self) -> bool {
        if self.len == 0 {
            return false;
        }
        let head = self.bits & 1 != 0;
        self.bits >>= 1;
        self.len -= 1;
        head
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client side, protocol not yet known; `tries` segments may still fail
    /// detection (a connection picked up mid-stream).
    Detect {
        tries: u8,
    },
    /// Waiting for the other direction to say what this one carries.
    Idle,
    Tls,
    HttpRequests,
    HttpResponses,
    Dns,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    Off,
    Size,
    /// The chunk data and its CRLF are being skipped.
    Trailer,
}

/// Parser state of one direction.
#[derive(Debug)]
pub struct AppStream {
    state: State,
    chunked: Chunked,
    /// After a gap, HTTP waits for a segment that starts a new message.
    resync: bool,
    skip: u64,
    buf: Vec<u8>,
}

/// Segments of undetected data tolerated before a direction is given up.
const DETECT_TRIES: u8 = 3;

impl AppStream {
    /// A client-side stream that recognises its protocol by content.
    pub fn client() -> Self {
        Self::with_state(State::Detect {
            tries: DETECT_TRIES,
        })
    }

    /// A server-side stream that waits for the client side's protocol.
    pub fn server() -> Self {
        Self::with_state(State::Idle)
    }

    /// A stream of DNS messages with 2-byte length prefixes (RFC 7766).
    pub fn dns() -> Self {
        Self::with_state(State::Dns)
    }

    fn with_state(state: State) -> Self {
        AppStream {
            state,
            chunked: Chunked::Off,
            resync: false,
            skip: 0,
            buf: Vec::new(),
        }
    }

    /// Whether this direction needs no more bytes.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether this direction would use bytes handed to it now.
    pub fn wants_data(&self) -> bool {
        !matches!(self.state, State::Done | State::Idle)
    }

    /// The protocol recognised, once known.
    pub fn kind(&self) -> Option<AppKind> {
        match self.state {
            State::Tls => Some(AppKind::Tls),
            State::HttpRequests | State::HttpResponses => Some(AppKind::Http),
            State::Dns => Some(AppKind::Dns),
            _ => None,
        }
    }

    /// Tells a waiting server side what the client side carries.
    pub fn follow(&mut self, client: AppKind) {
        if self.state == State::Idle {
            self.state = match client {
                AppKind::Http => State::HttpResponses,
                AppKind::Dns => State::Dns,
                AppKind::Tls => State::Done,
            };
        }
    }

    /// Stops parsing this direction and frees its buffer.
    pub fn stop(&mut self) {
        self.state = State::Done;
        self.buf = Vec::new();
    }

    /// Bytes held in the stream's buffer (for the global memory cap).
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes are missing from the stream: messages in progress are lost.
    pub fn gap(&mut self) {
        self.buf.clear();
        self.skip = 0;
        self.chunked = Chunked::Off;
        match self.state {
            State::HttpRequests | State::HttpResponses => self.resync = true,
            State::Idle | State::Done => {}
            _ => self.stop(),
        }
    }

    /// The most this direction buffers while a message is incomplete.
    fn cap(&self) -> usize {
        match self.state {
            State::Tls | State::Detect { .. } => tls::MAX_HELLO + 4096,
            State::Dns => 2 + usize::from(u16::MAX),
            _ => http::MAX_HEAD,
        }
    }

    /// Feeds the next in-order bytes of this direction.
    pub fn push(
        &mut self,
        mut data: &[u8],
        pipeline: &mut Pipeline,
        scratch: &mut Scratch,
        emit: &mut dyn FnMut(Observation<'_>),
    ) {
        if self.skip > 0 {
            let n = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(data.len());
            self.skip -= n as u64;
            data = &data[n..];
        }
        if data.is_empty() || !self.wants_data() {
            return;
        }
        if self.resync {
            if http::starts_request(data) == Some(true) || http::starts_response(data) == Some(true)
            {
                self.resync = false;
            } else {
                return;
            }
        }
        if self.buf.is_empty() {
            let used = self.run(data, pipeline, scratch, emit);
            self.keep(data.get(used..).unwrap_or(&[]), &mut scratch.spare);
        } else {
            self.keep(data, &mut scratch.spare);
            let buf = std::mem::take(&mut self.buf);
            let used = self.run(&buf, pipeline, scratch, emit);
            self.buf = buf;
            if self.wants_data() {
                self.buf.drain(..used.min(self.buf.len()));
            }
            if self.buf.is_empty() || !self.wants_data() {
                // Nothing waits in it (or nothing will): the next message
                // that spans segments, on any connection, takes it.
                scratch.spare.give(std::mem::take(&mut self.buf));
            }
        }
    }

    /// Buffers bytes an incomplete message needs, within the cap.
    fn keep(&mut self, rest: &[u8], spare: &mut SpareBuffers) {
        if rest.is_empty() || !self.wants_data() {
            return;
        }
        if self.buf.len() + rest.len() > self.cap() {
            self.stop();
            return;
        }
        if self.buf.capacity() == 0 {
            self.buf = spare.take(rest.len());
        }
        self.buf.extend_from_slice(rest);
    }

    /// Parses as many complete messages as `input` holds; returns the bytes used.
    fn run(
        &mut self,
        input: &[u8],
        pipeline: &mut Pipeline,
        scratch: &mut Scratch,
        emit: &mut dyn FnMut(Observation<'_>),
    ) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let step = match self.state {
                State::Detect { tries } => {
                    match (tls::starts_client_hello(rest), http::starts_request(rest)) {
                        (Some(true), _) => self.state = State::Tls,
                        (_, Some(true)) => self.state = State::HttpRequests,
                        (Some(false), Some(false)) if tries > 1 => {
                            self.state = State::Detect { tries: tries - 1 };
                            return input.len();
                        }
                        (Some(false), Some(false)) => self.state = State::Done,
                        _ => return pos,
                    }
                    continue;
                }
                State::Tls => match tls::assemble(rest, &mut scratch.tls) {
                    tls::Assembly::Need => return pos,
                    tls::Assembly::Complete(msg) => {
                        if let Ok(hello) = tls::parse_client_hello(msg) {
                            emit(Observation::ClientHello(hello));
                        }
                        self.state = State::Done;
                        return input.len();
                    }
                    tls::Assembly::Fail(_) => {
                        self.state = State::Done;
                        return input.len();
                    }
                },
                State::HttpRequests | State::HttpResponses if self.chunked != Chunked::Off => {
                    self.chunk_step(rest)
                }
                State::HttpRequests => match http::parse_request(rest) {
                    http::Parsed::Need => return pos,
                    http::Parsed::Done(req) => {
                        pipeline.push(req.method.eq_ignore_ascii_case("HEAD"));
                        emit(Observation::HttpRequest(req));
                        self.body(req.head_len, req.body, rest.len())
                    }
                    http::Parsed::Fail => {
                        self.resync = true;
                        return input.len();
                    }
                },
                State::HttpResponses => {
                    if http::starts_response(rest) == Some(false) {
                        self.resync = true;
                        return input.len();
                    }
                    match http::parse_response(rest, false) {
                        http::Parsed::Need => return pos,
                        http::Parsed::Done(_) => {
                            let head = pipeline.pop();
                            // Parse again knowing the method (HEAD has no body).
                            let http::Parsed::Done(resp) = http::parse_response(rest, head) else {
                                return input.len();
                            };
                            emit(Observation::HttpResponse(resp));
                            self.body(resp.head_len, resp.body, rest.len())
                        }
                        http::Parsed::Fail => {
                            self.resync = true;
                            return input.len();
                        }
                    }
                }
                State::Dns => {
                    let Some(len) = crate::bytes::be16(rest, 0) else {
                        return pos;
                    };
                    let Some(msg) = rest.get(2..2 + usize::from(len)) else {
                        return pos;
                    };
                    if scratch.dns.parse(msg) {
                        emit(Observation::Dns(&scratch.dns));
                    }
                    2 + usize::from(len)
                }
                State::Idle | State::Done => return input.len(),
            };
            if step == 0 {
                return pos;
            }
            pos += step;
            if self.skip > 0 {
                return input.len();
            }
        }
        pos
    }

    /// Moves past a message head and arranges for its body to be skipped.
    /// Returns the bytes consumed from `available`.
    fn body(&mut self, head_len: usize, body: http::Body, available: usize) -> usize {
        match body {
            http::Body::Empty => head_len,
            http::Body::Length(n) => {
                let in_view = (available - head_len) as u64;
                if n <= in_view {
                    head_len + n as usize
                } else {
                    self.skip = n - in_view;
                    available
                }
            }
            http::Body::Chunked => {
                self.chunked = Chunked::Size;
                head_len
            }
            http::Body::UntilClose => {
                self.state = State::Done;
                available
            }
        }
    }

    /// One step through a chunked body: a size line, its data, or trailers.
    fn chunk_step(&mut self, rest: &[u8]) -> usize {
        match self.chunked {
            Chunked::Size => match http::parse_chunk_size(rest) {
                http::Parsed::Need => 0,
                http::Parsed::Done((0, line)) => {
                    self.chunked = Chunked::Trailer;
                    line
                }
                http::Parsed::Done((size, line)) => {
                    let total = size.saturating_add(2); // data + CRLF
                    let in_view = (rest.len() - line) as u64;
                    if total <= in_view {
                        line + total as usize
                    } else {
                        self.skip = total - in_view;
                        rest.len()
                    }
                }
                http::Parsed::Fail => {
                    self.chunked = Chunked::Off;
                    self.resync = true;
                    rest.len()
                }
            },
            Chunked::Trailer => match http::line_len(rest) {
                http::Parsed::Need => 0,
                http::Parsed::Done(2) => {
                    self.chunked = Chunked::Off;
                    2
                }
                http::Parsed::Done(n) => n,
                http::Parsed::Fail => {
                    self.chunked = Chunked::Off;
                    self.resync = true;
                    rest.len()
                }
            },
            Chunked::Off => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(stream: &mut AppStream, pieces: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut pipeline = Pipeline::default();
        let mut scratch = Scratch::default();
        for p in pieces {
            stream.push(p, &mut pipeline, &mut scratch, &mut |o| {
                out.push(match o {
                    Observation::HttpRequest(r) => format!("req {} {}", r.method, r.path),
                    Observation::HttpResponse(r) => format!("resp {}", r.status),
                    Observation::ClientHello(h) => format!("hello {:?}", h.sni),
                    Observation::Dns(d) => format!("dns {:?}", d.qname()),
                    Observation::QuicClientHello { hello, .. } => {
                        format!("quic hello {:?}", hello.sni)
                    }
                })
            });
        }
        out
    }

    #[test]
    fn keep_alive_requests_with_bodies_split_anywhere() {
        let wire: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789GET /b HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        for cut1 in 1..wire.len() {
            let cut2 = (cut1 + 7).min(wire.len());
            let mut s = AppStream::client();
            let got = collect(&mut s, &[&wire[..cut1], &wire[cut1..cut2], &wire[cut2..]]);
            assert_eq!(
                got,
                ["req POST /a", "req GET /b", "req GET /c"],
                "cut at {cut1}"
            );
        }
    }

    #[test]
    fn a_buffer_freed_by_a_complete_message_serves_the_next_connection() {
        let head: &[u8] = b"GET /update HTTP/1.1\r\nHost: dnl-01.geo.kaspersky.com\r\n\r\n";
        let (first, rest) = head.split_at(20);
        let mut pipeline = Pipeline::default();
        let mut scratch = Scratch::default();
        let mut seen = Vec::new();
        let mut emit = |o: Observation<'_>| {
            if let Observation::HttpRequest(r) = o {
                seen.push(r.host.map(<[u8]>::to_vec));
            }
        };
        // Connection 1: the head in two segments is buffered, then parsed;
        // its buffer is emptied and kept.
        let mut one = AppStream::client();
        one.push(first, &mut pipeline, &mut scratch, &mut emit);
        assert_eq!(one.buffered(), first.len());
        one.push(rest, &mut pipeline, &mut scratch, &mut emit);
        assert_eq!(scratch.spare.0.len(), 1);
        let kept = scratch.spare.0[0].capacity();
        assert!(kept >= head.len());
        // Connection 2 (another flow, same worker) buffers into it.
        let mut two = AppStream::client();
        two.push(first, &mut pipeline, &mut scratch, &mut emit);
        assert!(scratch.spare.0.is_empty());
        assert_eq!(two.buffered(), kept);
        two.push(rest, &mut pipeline, &mut scratch, &mut emit);
        let host = Some(b"dnl-01.geo.kaspersky.com".to_vec());
        assert_eq!(seen, [host.clone(), host]);
        // Too large to keep: freed.
        scratch
            .spare
            .give(Vec::with_capacity(SpareBuffers::LARGEST + 1));
        assert_eq!(scratch.spare.0.len(), 1);
    }

    #[test]
    fn dns_over_tcp_several_messages_and_split_prefix() {
        let q = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";
        let mut wire = Vec::new();
        for _ in 0..3 {
            wire.extend_from_slice(&(q.len() as u16).to_be_bytes());
            wire.extend_from_slice(q);
        }
        let mut s = AppStream::dns();
        let got = collect(&mut s, &[&wire[..1], &wire[1..30], &wire[30..]]);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|g| g == "dns Some(\"a\")"));
    }

    #[test]
    fn unknown_protocols_are_given_up_after_a_few_segments() {
        let mut s = AppStream::client();
        collect(&mut s, &[b"SSH-2.0-OpenSSH\r\n", b"xx", b"yy"]);
        assert!(s.done());
        assert_eq!(s.buffered(), 0);
    }
}
