//! `ferrite-bench`: the command line around [`bench::run`]. Exit status: 0 when the run went
//! through, 1 when it could not be carried out (bad options, a client could not connect or
//! subscribe), 3 when the broker disconnected clients during the run (the report is printed).

use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    let opts = bench::Options::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if opts.threads > 0 {
        builder.worker_threads(opts.threads);
    }
    let runtime = builder.build().context("cannot start the tokio runtime")?;
    let report = runtime.block_on(bench::run(&opts))?;
    if opts.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(if report.disconnects > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}
