//! natter-bench: natter's load generator. It speaks natter's real protocol (REST to set up,
//! WebSocket to chat), runs bounded in count and time against loopback only, shows progress,
//! and writes JSON results, a markdown summary and a latency plot.

mod broadcast;
mod connect;
mod cpu;
mod direct;
mod fanout;
mod relay;
mod report;
mod seed;
mod setup;
mod soak;
mod spread;
mod tally;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "natter-bench", about = "natter's load generator")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

/// What to measure.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// Pairs of friends chat one-to-one: throughput and end-to-end latency.
    Direct(direct::DirectOptions),
    /// Open N idle connections: accept rate, handshake latency, server RSS per connection.
    Connect(connect::ConnectOptions),
    /// One group with M online members and S messages/s: deliveries/s, latency, CPU.
    Fanout(fanout::FanoutOptions),
    /// System notices to every online connection through the admin API.
    Broadcast(broadcast::BroadcastOptions),
    /// Users in friend pairs written straight into the store, with tokens, for `direct`.
    Seed(seed::SeedOptions),
    /// Sends over REST from many seeded users to their offline friends: the cost of objects.
    Spread(spread::SpreadOptions),
    /// A plain relay that keeps nothing, for `direct` to measure this machine's floor.
    Relay(relay::RelayOptions),
    /// A long run with connection churn, one-to-one and group chat: server memory and
    /// descriptors over time, and nothing lost.
    Soak(soak::SoakOptions),
}

/// Where the server is and where results go; shared by every scenario.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The REST API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// WebSocket URLs; clients are spread over them in turn (several connect nodes).
    #[arg(
        long = "ws",
        default_value = "ws://127.0.0.1:8090/ws",
        value_delimiter = ','
    )]
    ws: Vec<String>,
    /// Server process ids whose CPU time the run reports (e.g. every cluster process).
    #[arg(long = "server-pid", value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Folder for results.json, summary.md and latency.svg.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
}

impl Target {
    /// Refuses anything but loopback: the generator is a load tool, not a weapon.
    fn check_loopback(&self) -> anyhow::Result<()> {
        for url in std::iter::once(&self.api).chain(&self.ws) {
            let host = url
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split(['/', ':']).next())
                .with_context(|| format!("{url} is not a URL"))?;
            if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
                bail!("{url}: natter-bench targets loopback only");
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.scenario {
        Scenario::Direct(options) => {
            options.target.check_loopback()?;
            publish(&options.target, &direct::run(&options).await?)?;
        }
        Scenario::Fanout(options) => {
            options.target.check_loopback()?;
            publish(&options.target, &fanout::run(&options).await?)?;
        }
        Scenario::Broadcast(options) => {
            options.target.check_loopback()?;
            publish(&options.target, &broadcast::run(&options).await?)?;
        }
        Scenario::Seed(options) => seed::run(&options).await?,
        Scenario::Relay(options) => relay::run(&options).await?,
        Scenario::Spread(options) => {
            options.target.check_loopback()?;
            let results = spread::run(&options).await?;
            std::fs::create_dir_all(&options.target.out)?;
            std::fs::write(
                options.target.out.join("results.json"),
                serde_json::to_string_pretty(&results)?,
            )?;
            println!("{}", spread::markdown(&results));
            eprintln!("results in {}", options.target.out.display());
        }
        Scenario::Soak(options) => {
            options.target.check_loopback()?;
            let results = soak::run(&options).await?;
            soak::write(&options.target.out, &results)?;
            println!("{}", soak::markdown(&results));
            eprintln!("results in {}", options.target.out.display());
            if results.lost > 0 || results.duplicated > 0 {
                anyhow::bail!(
                    "{} deliveries lost and {} duplicated",
                    results.lost,
                    results.duplicated
                );
            }
        }
        Scenario::Connect(options) => {
            options.target.check_loopback()?;
            let results = connect::run(&options).await?;
            connect::write(&options.target.out, &results)?;
            println!("{}", connect::markdown(&results));
            eprintln!("results in {}", options.target.out.display());
        }
    }
    Ok(())
}

/// Writes a message scenario's results into the output folder and prints its summary.
fn publish(target: &Target, results: &report::Results) -> anyhow::Result<()> {
    report::write(&target.out, results)?;
    println!("{}", report::markdown(results));
    eprintln!("results in {}", target.out.display());
    Ok(())
}
