//! HTTP/1.1 request and response builders. Values are written verbatim
//! (no escaping), so tests can also craft odd or hostile headers.

/// Builds `METHOD PATH HTTP/1.1`, then `Host`, `User-Agent` (each only when
/// given) and `extra_headers` in order, then the blank line. No body.
pub fn request(
    method: &str,
    path: &str,
    host: Option<&str>,
    user_agent: Option<&str>,
    extra_headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    let named = [("Host", host), ("User-Agent", user_agent)];
    let headers = named.iter().filter_map(|(k, v)| v.map(|v| (*k, v)));
    for (name, value) in headers.chain(extra_headers.iter().copied()) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Builds an `HTTP/1.1` response with optional `Content-Type`, a correct
/// `Content-Length` and `body`.
pub fn response(status: u16, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let r = request("GET", "/a", Some("h.example"), None, &[("Accept", "*/*")]);
        assert_eq!(
            r,
            b"GET /a HTTP/1.1\r\nHost: h.example\r\nAccept: */*\r\n\r\n"
        );
        assert_eq!(
            request("GET", "/", None, None, &[]),
            b"GET / HTTP/1.1\r\n\r\n"
        );
    }

    #[test]
    fn response_layout() {
        let r = response(200, Some("text/plain"), b"hi");
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        assert!(response(599, None, b"").starts_with(b"HTTP/1.1 599 Unknown\r\nContent-Length: 0"));
    }
}
