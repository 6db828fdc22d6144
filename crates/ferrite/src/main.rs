//! The `ferrite` binary: parses the command line and configuration, then runs a subcommand.

mod config;
mod datadir;
mod listeners;
mod platform;
mod functions_cli;
mod rules_config;

use anyhow::Context;

/// jemalloc keeps allocations of one size together, so memory freed in bulk (a connection's task
/// and buffers when it parks, the end of a burst) leaves whole pages free.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a background thread gives free pages back to the system about a second
/// after they were freed, without waiting for the next allocation.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr() });
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
    /// Access keys for the HTTP API (SigV4).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Certificate helpers (Ferrite's CA lives in <data_dir>/certs).
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Ferrite functions (the stand-in for AWS Lambda): webhooks and local commands.
    Functions {
        #[command(subcommand)]
        command: functions_cli::FunctionsCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an access key pair and print it (the secret is shown only now).
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// What the key is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List access key ids.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Delete an access key.
    Delete {
        #[command(flatten)]
        config: ConfigArgs,
        /// The access key id.
        id: String,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Issue a client certificate signed by Ferrite's CA (created if missing). Like any
    /// certificate, it connects only once registered (RegisterCertificate or
    /// RegisterCertificateWithoutCA) and ACTIVE, with a policy attached.
    IssueClient {
        #[command(flatten)]
        config: ConfigArgs,
        /// The certificate's common name (for example the thing name).
        #[arg(long)]
        cn: String,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        cert_out: PathBuf,
        /// Where to write the private key (PEM, mode 0600).
        #[arg(long)]
        key_out: PathBuf,
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
        // Flags are applied as the last overrides, so they are validated like everything else.
        if let Some(d) = &self.data_dir {
            vars.push(("FERRITE_DATA_DIR".into(), toml::Value::String(d.display().to_string()).to_string()));
        }
        if let Some(l) = self.mqtt_listen {
            vars.push(("FERRITE_MQTT__LISTEN".into(), format!("\"{l}\"")));
        }
        if let Some(f) = self.log_format {
            let f = if f == LogFormat::Json { "json" } else { "text" };
            vars.push(("FERRITE_LOG__FORMAT".into(), f.into()));
        }
        Config::load(self.config.as_deref(), vars.into_iter()).map_err(|e| e.to_string())
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
        Command::Keys { command } => keys_command(command),
        Command::Functions { command } => functions_cli::run(command),
        Command::Certs { command: CertsCommand::IssueClient { config, cn, cert_out, key_out } } => {
            let config = match config.load() {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            match issue_client(&config, &cn, &cert_out, &key_out) {
                Ok(id) => {
                    println!("{id}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ferrite: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
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

fn keys_command(command: KeysCommand) -> ExitCode {
    let (KeysCommand::Create { config, .. } | KeysCommand::List { config } | KeysCommand::Delete { config, .. }) = &command;
    let config = match config.load() {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let run = || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let keys = api::Keys::open(runtime.block_on(platform::documents(&config))?)?;
        match &command {
            KeysCommand::Create { description, .. } => {
                let k = keys.create(description)?;
                println!("{} {}", k.id, k.secret);
            }
            KeysCommand::List { .. } => {
                for k in keys.list()? {
                    println!("{}\t{}\t{}\t{}", k.id, k.user.as_deref().unwrap_or("root"), k.status, k.description);
                }
            }
            KeysCommand::Delete { id, .. } => {
                anyhow::ensure!(keys.delete(id)?, "no access key {id}");
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrite: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Issues a client certificate; returns its certificate id.
fn issue_client(config: &Config, cn: &str, cert_out: &std::path::Path, key_out: &std::path::Path) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = config.data_dir.join("certs");
    crate::datadir::create_private_dir(&dir)?;
    let (pki, _) = identity::Pki::load_or_create(&dir)?;
    let (cert, key) = pki.issue_client(cn)?;
    std::fs::write(cert_out, &cert).with_context(|| format!("writing {}", cert_out.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key_out)
        .with_context(|| format!("writing {}", key_out.display()))?;
    f.write_all(key.as_bytes())?;
    let der = identity::load_certs(cert_out)?.remove(0);
    Ok(identity::certificate_id(&der))
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
        // Held until the process ends: a second `ferrite serve` on this directory refuses to start.
        // (`platform::documents` below makes the directory private.)
        let _lock = datadir::lock(&config.data_dir)?;
        let docs = platform::documents(&config).await?;
        let identity = platform::identity(&config, &docs)?;
        let pki = platform::pki(&config, &docs)?;
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
        let platform::Platform { api, authz, rules } = platform::platform(&config, docs.clone(), &identity, &broker, pki.clone())?;
        let listeners = listeners::bind(&config, &pki, &authz).await?;
        let api_listeners = listeners::bind_api(&config, &pki, &authz).await?;
        rules.set_enable_url_base(&platform::api_base_url(&identity, &api_listeners));
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut servers = Vec::new();
        for l in listeners {
            tracing::info!(transport = l.transport.name(), addr = %l.addr, "listening");
            // Stable lines on stdout that scripts and tests wait for.
            println!("{} listening on {}", l.transport.name(), l.addr);
            let authn = platform::authenticator(&config, &identity, &authz, &l.transport)?;
            servers.push(tokio::spawn(broker::server::serve(broker.clone(), l.listener, l.transport, authn, shutdown_rx.clone())));
        }
        let api = std::sync::Arc::new(api);
        for l in api_listeners {
            let name = if l.tls.is_some() { "https" } else { "http" };
            tracing::info!(transport = name, addr = %l.addr, "listening");
            println!("{name} listening on {}", l.addr);
            servers.push(tokio::spawn(api::serve(api.clone(), l.listener, l.tls, shutdown_rx.clone())));
        }
        if let Some(root) = platform::first_start_keys(&api::Keys::open(docs.clone())?)? {
            // Shown once, like AWS shows a new secret once; `ferrite keys create` makes more.
            println!("root credentials: {} {}", root.id, root.secret);
        }
        // Installed before "ready" is announced: a SIGTERM right after it is a clean shutdown,
        // not the default action (death by the signal).
        let signals = Signals::install()?;
        api.set_ready();
        println!("ferrite ready");
        std::io::stdout().flush()?;
        tracing::info!(data_dir = %config.data_dir.display(), region = %identity.region, account_id = %identity.account_id, "ferrite started");
        signals.wait().await?;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
        for s in servers {
            let _ = s.await;
        }
        broker.close_store().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn wait(mut self) -> anyhow::Result<()> {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        Ok(())
    }
}
