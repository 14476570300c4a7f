//! natter-bench: natter's load generator. Its scenarios (connect, fanout, direct, broadcast)
//! arrive with the connect-layer work; until then it says so instead of pretending to measure.

fn main() {
    eprintln!(
        "natter-bench: no scenarios yet; the load generator arrives with the connect-layer work"
    );
    std::process::exit(2);
}
