//! Decompression bombs: uploads whose small files decode to huge bitmaps, many at once, keep
//! the server within its stated decode memory.

use std::time::Duration;

use natter_proto::ErrorCode;

use crate::harness::Harness;
use crate::process::{free_port, serve_with, wait_until_up};
use crate::social::{upload_as, upload_to};

/// The decode memory the test server is given.
const BUDGET_MIB: u64 = 256;

/// Writes bits least significant first, as deflate packs them.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    /// `count` bits of `value`, lowest first (header fields and extra bits).
    fn bits(&mut self, value: u32, count: u32) {
        for index in 0..count {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let bit = ((value >> index) & 1) as u8;
            *self.bytes.last_mut().expect("a byte") |= bit << self.used;
            self.used = (self.used + 1) % 8;
        }
    }

    /// A Huffman code of `count` bits, highest first.
    fn code(&mut self, code: u32, count: u32) {
        for index in (0..count).rev() {
            self.bits((code >> index) & 1, 1);
        }
    }
}

/// A zlib stream of `zeros` zero bytes: one fixed-Huffman block of a literal zero followed by
/// copies of 258 bytes at distance 1 (13 bits each), so 120 MB of zeros take under 800 KB.
fn zlib_zeros(zeros: u64) -> Vec<u8> {
    let mut writer = BitWriter::default();
    writer.bits(1, 1); // the final block
    writer.bits(1, 2); // fixed Huffman codes
    let literal_zero = |writer: &mut BitWriter| writer.code(0x30, 8);
    literal_zero(&mut writer);
    let rest = zeros - 1;
    for _ in 0..rest / 258 {
        writer.code(0xC5, 8); // length 258 (code 285)
        writer.code(0, 5); // distance 1
    }
    for _ in 0..rest % 258 {
        literal_zero(&mut writer);
    }
    writer.code(0, 7); // end of block
    let mut stream = vec![0x78, 0x01];
    stream.extend_from_slice(&writer.bytes);
    // Adler-32 of zeros: the sum stays 1, the sum of sums counts the bytes.
    let adler = ((zeros % 65_521) << 16 | 1) as u32;
    stream.extend_from_slice(&adler.to_be_bytes());
    stream
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    chunk.extend_from_slice(&crc.finalize().to_be_bytes());
    chunk
}

/// A valid all-black RGB PNG of `width` × `height`: small on the wire, `width` × `height` × 3
/// bytes decoded.
fn black_png(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    // Each row is a filter byte (0) and its pixels (zeros).
    let raw = u64::from(height) * (1 + u64::from(width) * 3);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IDAT", &zlib_zeros(raw)));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// This process's resident memory, in bytes.
/// The resident memory of process `pid`.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .expect("VmRSS")
}

#[test]
fn the_hand_made_bomb_is_a_valid_png_of_its_size() {
    let small = black_png(300, 200);
    let decoded = image::load_from_memory(&small).expect("decodes");
    assert_eq!((decoded.width(), decoded.height()), (300, 200));
    assert!(decoded.to_rgb8().pixels().all(|pixel| pixel.0 == [0, 0, 0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decompression_bombs_stay_within_the_decode_budget() {
    // A server process of its own: its memory is what is measured, and the other tests, which
    // run at the same time in this process, must not count.
    let data = tempfile::tempdir().expect("a data folder");
    let (api_port, ws_port) = (free_port(), free_port());
    let settings = [
        (
            "NATTER_API__DECODE_MEMORY_BYTES",
            (BUDGET_MIB * 1024 * 1024).to_string(),
        ),
        // Long enough that every upload waits its turn rather than being turned away.
        ("NATTER_API__DECODE_WAIT_MS", "120000".to_string()),
    ];
    let server = serve_with(data.path(), api_port, ws_port, &settings);
    let base = format!("http://127.0.0.1:{api_port}");
    let api = natter::client::ApiClient::new(base.clone());
    wait_until_up(&api).await;
    let owner = api
        .register("bomber", "purple-ferret-42")
        .await
        .expect("register");
    // 8000 × 5000 × 3 = 120 MB decoded, about 770 KB on the wire.
    let bomb = black_png(8000, 5000);
    assert!(bomb.len() < 1024 * 1024, "the bomb is {} bytes", bomb.len());

    let pid = server.pid();
    let baseline = resident_bytes(pid);
    let (peak_sender, mut peak) = tokio::sync::watch::channel(baseline);
    let sampler = tokio::spawn(async move {
        loop {
            let now = resident_bytes(pid);
            peak_sender.send_if_modified(|peak| {
                let higher = now > *peak;
                *peak = (*peak).max(now);
                higher
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let uploads = (0..8).map(|_| upload_to(&base, Some(&owner.access_token), "file", &bomb));
    let answers = futures_util::future::join_all(uploads).await;
    sampler.abort();
    let grown = peak.borrow_and_update().saturating_sub(baseline);

    eprintln!(
        "8 concurrent 8000x5000 bombs: peak growth {} MiB (budget {BUDGET_MIB} MiB)",
        grown / (1024 * 1024)
    );
    for (status, body) in &answers {
        assert_eq!(*status, 201, "every bomb is decoded in its turn: {body}");
        assert_eq!(body["width"], 8000);
    }
    // The budget, plus what the uploads themselves hold (8 copies of the request) and the
    // allocator's slack. Without the budget, 8 such uploads grew the server by 1.1 GiB.
    let bound = (BUDGET_MIB + 128) * 1024 * 1024;
    assert!(
        grown <= bound,
        "8 concurrent bombs grew the server by {} MiB; the bound is {} MiB",
        grown / (1024 * 1024),
        bound / (1024 * 1024)
    );
    drop(server);

    // A bomb larger than the whole budget is refused outright, not decoded.
    let tight =
        Harness::start_with(|config| config.api.decode_memory_bytes = 64 * 1024 * 1024).await;
    let someone = tight.user("bomber2").await;
    let (status, body) = upload_as(&tight, Some(&someone), "file", &bomb).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], ErrorCode::ImageTooLarge.as_str());
}
