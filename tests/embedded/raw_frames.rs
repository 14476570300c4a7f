//! Frames that break the WebSocket protocol, written byte by byte: the server closes with the
//! code RFC 6455 §7.4.1 gives (1007 for a text frame that is not UTF-8, 1002 for a protocol
//! violation) instead of resetting the TCP connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Harness, WAIT};

/// A connection upgraded by hand, past its `welcome`.
async fn upgraded(harness: &Harness, token: &str) -> TcpStream {
    let address = harness.system.as_ref().expect("running").ws_addr;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("upgrade");
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("response");
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let (opcode, payload) = read_frame(&mut stream).await.expect("welcome");
    assert_eq!(opcode, 1);
    assert!(String::from_utf8_lossy(&payload).contains("welcome"));
    stream
}

/// One unfragmented server frame (servers do not mask): its opcode and payload.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await?;
    let length = match head[1] & 0x7F {
        126 => u64::from(stream.read_u16().await?),
        127 => stream.read_u64().await?,
        short => u64::from(short),
    };
    let mut payload = vec![0u8; length as usize];
    stream.read_exact(&mut payload).await?;
    Ok((head[0] & 0x0F, payload))
}

/// A client frame with the first byte `first` (FIN, RSV bits, opcode), masked as clients must.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![first, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(
        payload
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ mask[index % 4]),
    );
    frame
}

/// Sends `frame` and returns the close code the server answers with, skipping other frames.
async fn close_code_after(harness: &Harness, token: &str, frame: &[u8]) -> u16 {
    let mut stream = upgraded(harness, token).await;
    stream.write_all(frame).await.expect("write the frame");
    let close = tokio::time::timeout(WAIT, async {
        loop {
            match read_frame(&mut stream).await {
                Ok((8, payload)) => return payload,
                Ok(_) => {}
                Err(error) => panic!("the connection was cut instead of closed: {error}"),
            }
        }
    })
    .await
    .expect("a close frame in time");
    assert!(close.len() >= 2, "a close frame with a code");
    u16::from_be_bytes([close[0], close[1]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_utf8_closes_with_1007_and_a_protocol_violation_with_1002() {
    let harness = Harness::start().await;
    let session = harness.user("raw-frames").await;
    let token = &session.access_token;
    // FIN + text, with bytes that are no UTF-8 at all.
    assert_eq!(
        close_code_after(&harness, token, &client_frame(0x81, &[0xFF, 0xFE, 0xFD])).await,
        1007
    );
    // FIN + RSV1 + text: no extension was agreed, so the reserved bit is a violation.
    assert_eq!(
        close_code_after(&harness, token, &client_frame(0xC1, b"{}")).await,
        1002
    );
    // An unknown opcode (3 is reserved).
    assert_eq!(
        close_code_after(&harness, token, &client_frame(0x83, b"x")).await,
        1002
    );
}
