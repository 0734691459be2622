//! A minimal HTTP/1.1 client for talking to the local endpoint.
//!
//! The harness needs a handful of plain requests (create a bucket, read the
//! call statistics, fire twenty racing conditional PUTs) against a server on
//! 127.0.0.1. A blocking client over `std::net` does that without a runtime
//! or another dependency, and works both from plain `#[test]`s and from
//! inside `#[tokio::test]`s.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one request may take before the harness gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A complete HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code, e.g. 200 or 412.
    pub status: u16,
    /// Headers in the order received; names as sent by the server.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An `Authorization` header that looks like a SigV4 signature for `service`.
///
/// moto never verifies signatures, but it does look at the credential scope
/// to route a request to a service, and S3 treats requests without any
/// `Authorization` as anonymous (403 on private objects).
pub fn fake_authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000"
    )
}

/// Send one request to `127.0.0.1:port` and read the whole response.
///
/// `target` is the path plus query string, already percent-encoded.
pub(crate) fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;

    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    // A caller may address another virtual host (IMDS is `169.254.169.254`).
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Host"))
    {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    read_response(BufReader::new(stream), method == "HEAD")
}

fn read_response(mut reader: impl BufRead, head_only: bool) -> io::Result<HttpResponse> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;

    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut response = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only {
        return Ok(response);
    }
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    let length = response
        .header("Content-Length")
        .and_then(|value| value.parse::<u64>().ok());
    response.body = match (chunked, length) {
        (true, _) => read_chunked(&mut reader)?,
        (false, Some(length)) => {
            let mut body = Vec::new();
            reader.take(length).read_to_end(&mut body)?;
            body
        }
        // `Connection: close`: the body runs until the server hangs up.
        (false, None) => {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            body
        }
    };
    Ok(response)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Percent-encode one URL component; `/` is kept when `keep_slash` (object
/// keys in a path-style S3 URL).
pub(crate) fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte);
        if unreserved || (keep_slash && byte == b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = read_response(&raw[..], false).expect("parses");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"abcde");
    }

    #[test]
    fn content_length_bounds_the_body() {
        let raw = b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 2\r\n\r\nokEXTRA";
        let response = read_response(&raw[..], false).expect("parses");
        assert_eq!(response.status, 412);
        assert_eq!(response.text(), "ok");
    }

    #[test]
    fn percent_encoding_keeps_slashes_only_in_keys() {
        assert_eq!(percent_encode("a b/c+d", true), "a%20b/c%2Bd");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
    }
}
