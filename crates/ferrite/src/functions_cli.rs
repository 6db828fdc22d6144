//! `ferrite functions ...`: manage and invoke Ferrite functions on a data directory, the same
//! registry the `lambda` API serves (a running server sees changes within two seconds).

use crate::ConfigArgs;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum FunctionsCommand {
    /// Create a function: a webhook (--url) or a program inside functions.allowed_command_dirs
    /// (--command), which gets the event JSON on stdin and writes its JSON result to stdout.
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// The function's name (1 to 64 letters, digits, hyphens, underscores).
        name: String,
        /// The webhook URL (http:// or https://).
        #[arg(long, conflicts_with = "command", required_unless_present = "command")]
        url: Option<String>,
        /// The program's absolute path.
        #[arg(long)]
        command: Option<std::path::PathBuf>,
        /// Seconds one attempt may take (1 to 900).
        #[arg(long, default_value_t = 3)]
        timeout_secs: u32,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List functions: name, kind, location.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show a function as JSON.
    Get {
        #[command(flatten)]
        config: ConfigArgs,
        name: String,
    },
    /// Delete a function.
    Delete {
        #[command(flatten)]
        config: ConfigArgs,
        name: String,
    },
    /// Invoke a function and print its result (exit status 1 if the function failed).
    Invoke {
        #[command(flatten)]
        config: ConfigArgs,
        name: String,
        /// The event (JSON).
        #[arg(long, default_value = "{}")]
        payload: String,
    },
}

/// Runs a `ferrite functions` subcommand.
pub fn run(command: FunctionsCommand) -> ExitCode {
    let (FunctionsCommand::Create { config, .. }
    | FunctionsCommand::List { config }
    | FunctionsCommand::Get { config, .. }
    | FunctionsCommand::Delete { config, .. }
    | FunctionsCommand::Invoke { config, .. }) = &command;
    let config = match config.load() {
        Ok(c) => c,
        Err(e) => return crate::config_error(&e),
    };
    match execute(&config, command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferrite: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(config: &crate::config::Config, command: FunctionsCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let _guard = runtime.enter();
    let docs = runtime.block_on(crate::platform::documents(config))?;
    let identity = crate::platform::identity(config, &docs)?;
    let functions = crate::platform::functions(config, docs, &identity);
    match command {
        FunctionsCommand::Create { name, url, command, timeout_secs, description, .. } => {
            let location = match (url, command) {
                (Some(u), _) => u,
                (None, Some(c)) => format!("file://{}", c.display()),
                (None, None) => anyhow::bail!("give --url or --command"),
            };
            let f = functions.create(functions::NewFunction { name, location, description, timeout_secs: Some(timeout_secs), ..Default::default() })?;
            println!("{}", functions.arn(&f.name));
        }
        FunctionsCommand::List { .. } => {
            for f in functions.list()? {
                println!("{}\t{}\t{}", f.name, f.target.kind(), f.target.location());
            }
        }
        FunctionsCommand::Get { name, .. } => {
            let f = functions.get(&name)?;
            println!("{}", serde_json::to_string_pretty(&f)?);
        }
        FunctionsCommand::Delete { name, .. } => functions.delete(&name)?,
        FunctionsCommand::Invoke { name, payload, .. } => {
            serde_json::from_str::<serde_json::Value>(&payload).map_err(|e| anyhow::anyhow!("--payload is not JSON: {e}"))?;
            let out = runtime.block_on(functions.invoke(&name, payload.into(), functions::Mode::RequestResponse))?;
            println!("{}", String::from_utf8_lossy(&out.payload));
            if out.function_error.is_some() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
