//! The `natter` command: serve, migrate, print the configuration, or chat from a terminal.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use natter::cluster::{Layer, RunningLayer};
use natter::config::NatterConfig;
use natter::system::{RunningSystem, database_path};
use natter::telemetry;

mod huge_pages;
mod interactive;

/// Every allocation of the process goes through mimalloc (see docs/decisions.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// natter: an instant-messaging and push server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); `NATTER_<SECTION>__<KEY>` variables override it.
    #[arg(long, short, global = true, env = "NATTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run natter: every layer in one process (the embedded default), or one layer of a cluster.
    Serve {
        /// One layer of a cluster deployment.
        layer: Option<Layer>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration (defaults, file, environment) as TOML.
    Config,
    /// Chat from the terminal: log in (or register), connect, sync, send and receive.
    Client(interactive::ClientArgs),
    /// Print a cluster's processes (layer, node id, address, health, connections) and its log
    /// partitions' lag, as etcd, Redis and the task processes report them.
    Status,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = NatterConfig::load(cli.config.as_deref())?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if config.node.worker_threads > 0 {
        runtime.worker_threads(config.node.worker_threads);
    }
    let runtime = runtime.build().context("starting the async runtime")?;
    let service = match &cli.command {
        Command::Serve { layer: Some(layer) } => format!("natter-{}", layer.name()),
        _ => "natter".to_owned(),
    };
    let identity = telemetry::Identity {
        service,
        node: config.node.name.clone(),
    };
    {
        // The exporter's calls run on this runtime.
        let _entered = runtime.enter();
        telemetry::init_tracing(&config.log, &config.trace, &identity);
    }
    if matches!(cli.command, Command::Serve { .. }) {
        huge_pages::turn_off();
    }
    let outcome = runtime.block_on(run(cli.command, config));
    telemetry::flush_traces();
    outcome
}

async fn run(command: Command, config: NatterConfig) -> anyhow::Result<()> {
    match command {
        Command::Serve { layer: None } => {
            let system = RunningSystem::start(&config).await?;
            println!(
                "natter is serving: API http://{} · WebSocket ws://{}/ws · data in {}",
                system.api_addr,
                system.ws_addr,
                config.node.data_dir.display()
            );
            shutdown_signal().await;
            system.shutdown().await;
            Ok(())
        }
        Command::Serve { layer: Some(layer) } => {
            let running = RunningLayer::start(layer, &config).await?;
            println!(
                "natter {} is serving: HTTP http://{}{}{}",
                layer.name(),
                running.http_addr,
                running
                    .grpc_addr
                    .map(|addr| format!(" · gRPC {addr}"))
                    .unwrap_or_default(),
                running
                    .ws_addr
                    .map(|addr| format!(" · WebSocket ws://{addr}/ws"))
                    .unwrap_or_default(),
            );
            let fenced = running.fenced();
            let outcome = tokio::select! {
                () = shutdown_signal() => Ok(()),
                () = fenced => Err(anyhow::anyhow!(
                    "another process took this process's snowflake node id while etcd was \
                     unreachable; stopping so no id is minted twice"
                )),
            };
            running.shutdown().await;
            outcome
        }
        Command::Migrate => {
            let path = database_path(&config);
            eprintln!("applying migrations to {}", path.display());
            let pool = natter_infra::embedded::open_sqlite(&path).await?;
            pool.close().await;
            eprintln!("the database is up to date");
            Ok(())
        }
        Command::Config => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Client(args) => interactive::run(args).await,
        Command::Status => {
            print!("{}", natter::status::report(&config).await?);
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
