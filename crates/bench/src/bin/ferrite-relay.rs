//! `ferrite-relay`: the raw MQTT forwarder of `bench/compare` (see [`bench::relay`]). It prints
//! `relay listening on ADDR` once it accepts connections, and runs until killed.

use anyhow::Context;
use clap::Parser;

/// Forwards PUBLISH frames verbatim to exact-topic subscribers: the ceiling of this machine.
#[derive(Debug, Parser)]
#[command(name = "ferrite-relay", version)]
struct Args {
    /// Address to listen on (it has no authentication: keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:1884")]
    listen: String,
    /// Tokio worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = builder.build().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("relay listening on {}", listener.local_addr()?);
        bench::relay::serve(listener).await.context("accept loop failed")
    })
}
