//! The `ferrite` binary: parses the command line and configuration, then runs a subcommand.

mod config;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, LogFormat};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status for a configuration error (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "ferrite", version, about = "A self-hosted IoT platform that speaks AWS IoT's wire contracts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform.
    Serve(ServeArgs),
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the commented default configuration.
    Example,
    /// Print the configuration in force after the file, environment and flags are applied.
    Show(ConfigArgs),
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = "FERRITE_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for Ferrite's files (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the plain MQTT listener (overrides `mqtt.listen`); port 0 picks a free port.
    #[arg(long)]
    mqtt_listen: Option<SocketAddr>,
    /// Log format (overrides `log.format`).
    #[arg(long)]
    log_format: Option<LogFormat>,
    /// Any key, as `section.key=value` (for example `--set mqtt.max_connections=10`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config, String> {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        for s in &self.set {
            let (k, v) = s.split_once('=').ok_or_else(|| format!("--set {s}: expected KEY=VALUE"))?;
            vars.push((format!("FERRITE_{}", k.replace('.', "__").to_ascii_uppercase()), v.to_string()));
        }
        let mut c = Config::load(self.config.as_deref(), vars.into_iter()).map_err(|e| e.to_string())?;
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(l) = self.mqtt_listen {
            c.mqtt.listen = l;
        }
        if let Some(f) = self.log_format {
            c.log.format = f;
        }
        Ok(c)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config { command: ConfigCommand::Example } => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Config { command: ConfigCommand::Show(args) } => match args.load() {
            Ok(c) => {
                print!("{}", toml::to_string(&c).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Command::Serve(args) => {
            let config = match args.config.load() {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            if let Err(e) = init_logging(&config) {
                return config_error(&e);
            }
            match serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ferrite: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn config_error(e: &str) -> ExitCode {
    eprintln!("ferrite: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn init_logging(c: &Config) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&c.log.level).map_err(|e| format!("log.level {:?}: {e}", c.log.level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match c.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let listener = tokio::net::TcpListener::bind(config.mqtt.listen)
            .await
            .with_context(|| format!("binding the MQTT listener to {}", config.mqtt.listen))?;
        let addr = listener.local_addr()?;
        let db = config.data_dir.join("ferrite.db");
        let started = std::time::Instant::now();
        let (broker, restored) = broker::Broker::open(config.broker(), &db, config.store.sync.mode())
            .with_context(|| format!("opening the store {}", db.display()))?;
        tracing::info!(
            retained = restored.retained,
            sessions = restored.sessions,
            messages = restored.messages,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store loaded"
        );
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(broker::server::serve_tcp(broker.clone(), listener, shutdown_rx));
        tracing::info!(mqtt = %addr, data_dir = %config.data_dir.display(), "ferrite started");
        // A stable line on stdout that scripts and tests wait for.
        println!("mqtt listening on {addr}");
        std::io::stdout().flush()?;
        wait_for_signal().await?;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
        let _ = server.await;
        broker.close_store().await;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
