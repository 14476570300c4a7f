//! The history store's write cost alone: one-to-one messages between random friend pairs, both
//! copies and their index entries per message, written in batches as the embedded writer does;
//! prints the process's CPU time per message (the store's background flushes and compactions
//! included, since they run in this process).
//!
//! `taskset -c 0 cargo run --release -p natter-infra --example history_write -- USERS MESSAGES`

use std::time::Instant;

use natter_infra::history::{Existing, History};
use natter_proto::ObjectId;
use natter_proto::v1::Message;

/// Messages per write, about what the writer commits together at 8,000 msg/s.
const BATCH: u64 = 40;

/// CPU seconds this process has used, all its threads together (from `/proc/self/stat`).
fn cpu_seconds() -> Result<f64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The fields after the command's closing parenthesis; utime and stime are the 12th and
    // 13th of them, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("no command field")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let users: u64 = arguments.next().unwrap_or_else(|| "2000".into()).parse()?;
    let messages: u64 = arguments
        .next()
        .unwrap_or_else(|| "400000".into())
        .parse()?;
    let folder = tempfile::tempdir()?;
    let history = History::open(folder.path())?;
    let mut seqs = vec![0u64; users as usize];
    // A fixed xorshift sequence: every run writes the same pairs.
    let mut random = 0x9e37_79b9_7f4a_7c15u64;
    let started = Instant::now();
    let cpu_before = cpu_seconds()?;
    let mut written = 0;
    while written < messages {
        let mut copies = Vec::with_capacity(2 * BATCH as usize);
        for _ in 0..BATCH {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let sender = (random % users) as i64;
            let recipient = sender ^ 1;
            let id = (1 << 40) + written;
            for (owner, peer) in [(sender, recipient), (recipient, sender)] {
                seqs[owner as usize] += 1;
                copies.push(Message {
                    id,
                    object: ObjectId::User(owner + 1).to_string(),
                    seq: seqs[owner as usize],
                    sender: sender + 1,
                    peer: peer + 1,
                    kind: "text".into(),
                    body: "x".repeat(64),
                    ts: id as i64,
                    cid: format!("cid-{id}"),
                    target_kind: "user".into(),
                    target_id: recipient + 1,
                    ..Message::default()
                });
            }
            written += 1;
        }
        history.write(&copies, Existing::Refuse)?;
        if written % 100_000 == 0 {
            eprintln!("{written} of {messages} messages written");
        }
    }
    let cpu = cpu_seconds()? - cpu_before;
    println!(
        "{users} users, {messages} messages in batches of {BATCH}: {:.1} s, {:.1} µs of CPU per \
         message",
        started.elapsed().as_secs_f64(),
        cpu * 1e6 / messages as f64
    );
    Ok(())
}
