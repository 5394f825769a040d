//! A minimal HTTP/1.1 client: one `GET` per connection, `Connection: close`.
//!
//! `reach` asks a handful of questions (status, one header, a short body) of servers it
//! knows; a full client (hyper, reqwest) would triple the build for that. Bodies are read
//! up to [`MAX_BODY`]; content length, chunked encoding and read-to-close are understood.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most of a response `reach` reads (Prometheus' target lists are the largest).
pub const MAX_BODY: usize = 8 << 20;

/// A parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Sends `GET path` with `Host: host` and reads the whole response.
pub async fn get<S>(stream: &mut S, host: &str, path: &str) -> io::Result<Response>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rampart-reach\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    // Read to close; a TLS peer that closes without close_notify still gave us the data.
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_BODY + 64 * 1024 {
                    return Err(invalid(format!("response larger than {MAX_BODY} bytes")));
                }
                if complete(&raw) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    parse(&raw)
}

/// Is a response with a known length fully read (so we need not wait for close)?
fn complete(raw: &[u8]) -> bool {
    let Ok((head_len, headers)) = head(raw) else {
        return false;
    };
    let body = &raw[head_len..];
    if let Some(len) = header_value(&headers, "content-length").and_then(|v| v.parse().ok()) {
        return body.len() >= len;
    }
    if header_value(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

type Head = (usize, Vec<(String, String)>);

/// Splits off the header block: (its length with the blank line, the header fields).
fn head(raw: &[u8]) -> io::Result<Head> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let text = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("headers are not UTF-8"))?;
    let headers = text
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((end + 4, headers))
}

/// Parses a complete response.
pub fn parse(raw: &[u8]) -> io::Result<Response> {
    if raw.is_empty() {
        return Err(invalid("empty response (the server closed the connection)"));
    }
    let (head_len, headers) = head(raw)?;
    let status_line = raw[..head_len]
        .split(|&b| b == b'\r')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| invalid(format!("not an HTTP/1.x status line: {status_line:?}")))?;
    let body = &raw[head_len..];
    let body = if header_value(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked"))
    {
        dechunk(body)?
    } else if let Some(len) = header_value(&headers, "content-length").and_then(|v| v.parse().ok())
    {
        body.get(..len)
            .ok_or_else(|| invalid("body shorter than its Content-Length"))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size"))?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or_else(|| invalid("truncated chunk"))?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

/// `GET` of a plain `http://` URL (Prometheus, exporters, HAProxy's stats page).
pub async fn get_url(url: &str, timeout: std::time::Duration) -> Result<Response, String> {
    let (tls, host, port, path) =
        split_url(url).ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
    if tls {
        return Err(format!("{url}: expected an http:// URL"));
    }
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        get(&mut tcp, &host, &path)
            .await
            .map_err(|e| format!("{url}: {e}"))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
}

/// `http://host[:port]/path` or `https://…` split into (tls, host, port, path).
pub fn split_url(url: &str) -> Option<(bool, String, u16, String)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port(tls),
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), default_port(tls)),
        }
    };
    (!host.is_empty()).then_some((tls, host, port, path))
}

fn default_port(tls: bool) -> u16 {
    if tls {
        443
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_chunked_and_close_delimited_bodies() {
        let r = parse(
            b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Length: 2\r\n\r\nokEXTRA",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.header("location"), r.text().as_str()),
            (301, Some("https://x/"), "ok")
        );
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nweb1\r\n3;x=y\r\n ok\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.text(), "web1 ok");
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\nuntil close").unwrap();
        assert_eq!(r.text(), "until close");
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"no end",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
    }

    #[test]
    fn urls_split_into_scheme_host_port_and_path() {
        assert_eq!(
            split_url("https://rampart.test/"),
            Some((true, "rampart.test".into(), 443, "/".into()))
        );
        assert_eq!(
            split_url("http://127.0.0.1:9090/api/v1/targets"),
            Some((false, "127.0.0.1".into(), 9090, "/api/v1/targets".into()))
        );
        assert_eq!(
            split_url("https://[::1]:8443"),
            Some((true, "::1".into(), 8443, "/".into()))
        );
        assert_eq!(split_url("ftp://x/"), None);
        assert_eq!(split_url("http://:80/"), None);
    }
}
