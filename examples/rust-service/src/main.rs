//! A tiny HTTP server that answers every request with a greeting.
use std::io::{Read, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_owned());
    let listener = TcpListener::bind("0.0.0.0:8080")?;
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request)?;
        let body = format!("{greeting}, world\n");
        write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len())?;
    }
    Ok(())
}
