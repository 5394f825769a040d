//! A minimal plain-HTTP client that runs inside a lab namespace, for the monitoring APIs
//! (Prometheus, Alertmanager, exporters). HTTPS goes through `curl`, which verifies
//! certificates the way a user's client does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{netns, LabError, Result};

/// A response: status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET path` on `address`, from inside namespace `namespace`. HTTP/1.0, so the server
/// closes the connection and never uses chunked encoding.
pub fn get(namespace: &str, address: SocketAddr, path: &str) -> Result<Response> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nAccept: */*\r\n\r\n");
    let what = format!("GET http://{address}{path} from {namespace}");
    let raw = netns::run_in(namespace, move || exchange(address, &request))?
        .map_err(|e| LabError::Invalid(format!("{what} failed: {e}")))?;
    parse(&raw).ok_or_else(|| {
        LabError::Invalid(format!(
            "{what}: the answer is not HTTP (got {:?})",
            raw.chars().take(80).collect::<String>()
        ))
    })
}

fn exchange(address: SocketAddr, request: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn parse(raw: &str) -> Option<Response> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(Response {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_body_are_split_at_the_blank_line() {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nup 1\r\n").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "up 1\r\n");
        assert_eq!(parse("garbage"), None);
    }
}
