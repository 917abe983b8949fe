//! A minimal HTTP/1.1 client for tests: enough for GETs and their JSON.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status code and body parsed as JSON.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub json: serde_json::Value,
}

/// `GET path` on `addr`, with the connection closed after the response.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Response { status, json: serde_json::from_str(body).unwrap_or(serde_json::Value::Null) }
}
