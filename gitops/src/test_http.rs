//! What the loopback HTTP servers of this crate's tests share: reading one request.

use tokio::io::AsyncReadExt;

/// Reads one HTTP request (head and, by its Content-Length, body) from `socket`; returns what
/// arrived as text (all of it when the peer closes early).
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                return text;
            }
        }
    }
    String::from_utf8_lossy(&request).to_string()
}
