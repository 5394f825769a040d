//! The alert webhook receiver: a small HTTP/1.1 server that Alertmanager posts to, and
//! that appends every delivery to a file as one JSON line.
//!
//! Each line of the deliveries file is:
//!
//! ```json
//! { "type": "delivery", "receivedMs": 1732450000123, "path": "/alerts",
//!   "body": { "status": "firing", "alerts": [ { "status": "firing",
//!             "labels": { "alertname": "HighQPS", … }, … } ], … } }
//! ```
//!
//! `receivedMs` is milliseconds since the Unix epoch; `body` is Alertmanager's webhook
//! payload as sent (or a string when it was not JSON). New fields may be added.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{io, Result};

/// Largest request body accepted; Alertmanager's payloads are a few KiB.
const MAX_BODY: usize = 4 << 20;

/// Serves forever on `listener`, appending each POST to `out`.
pub fn serve(listener: TcpListener, out: &Path) -> Result<()> {
    let out = Arc::new(Mutex::new(out.to_path_buf()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let out = Arc::clone(&out);
        std::thread::spawn(move || {
            // A broken client only ends its own connection.
            let _ = connection(stream, &out);
        });
    }
    Ok(())
}

fn connection(stream: TcpStream, out: &Mutex<PathBuf>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut length = 0usize;
        let mut chunked = false;
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let body = if chunked {
            read_chunked(&mut reader)?
        } else {
            let mut body = vec![0; length.min(MAX_BODY)];
            reader.read_exact(&mut body)?;
            body
        };
        let status = if method == "POST" {
            record(out, &path, &body)?;
            "200 OK"
        } else if method == "GET" {
            "200 OK"
        } else {
            "405 Method Not Allowed"
        };
        write!(
            writer,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        )?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 || body.len() + size > MAX_BODY {
            let mut trailer = String::new();
            reader.read_line(&mut trailer)?;
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn record(out: &Mutex<PathBuf>, path: &str, body: &[u8]) -> std::io::Result<()> {
    let body: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let line = json!({"type": "delivery", "receivedMs": now_ms(), "path": path, "body": body});
    let out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut file = OpenOptions::new().create(true).append(true).open(&*out)?;
    writeln!(file, "{line}")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// One alert as delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveredAlert {
    pub received_ms: u64,
    pub name: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: serde_json::Map<String, Value>,
}

/// Every alert in the deliveries file, in arrival order (an absent file has none).
pub fn delivered(path: &Path) -> Result<Vec<DeliveredAlert>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(doc) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let received_ms = doc["receivedMs"].as_u64().unwrap_or_default();
        for alert in doc["body"]["alerts"].as_array().into_iter().flatten() {
            let labels = alert["labels"].as_object().cloned().unwrap_or_default();
            out.push(DeliveredAlert {
                received_ms,
                name: labels
                    .get("alertname")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                status: alert["status"].as_str().unwrap_or_default().to_string(),
                labels,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_is_recorded_and_answered_over_keep_alive() {
        let dir = std::env::temp_dir().join(format!("rampart-webhook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("deliveries.jsonl");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let served = out.clone();
        std::thread::spawn(move || serve(listener, &served));

        let body = r#"{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighQPS","severity":"warning"}}]}"#;
        let mut client = TcpStream::connect(address).unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        for _ in 0..2 {
            write!(
                client,
                "POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut status = String::new();
            reader.read_line(&mut status).unwrap();
            assert_eq!(status, "HTTP/1.1 200 OK\r\n");
            let mut blank = String::new();
            while blank != "\r\n" {
                blank.clear();
                reader.read_line(&mut blank).unwrap();
            }
        }
        // Chunked bodies too (Go's client uses them for bodies of unknown length).
        write!(client, "POST /alerts HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert!(rest.starts_with("HTTP/1.1 200 OK"), "{rest}");

        let alerts = delivered(&out).unwrap();
        assert_eq!(alerts.len(), 3);
        assert_eq!(alerts[0].name, "HighQPS");
        assert_eq!(alerts[2].status, "firing");
        assert!(alerts[0].received_ms > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_has_no_deliveries() {
        assert!(delivered(Path::new("/nonexistent/deliveries.jsonl"))
            .unwrap()
            .is_empty());
    }
}
