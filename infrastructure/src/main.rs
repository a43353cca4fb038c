//! The `expo-updates-server` binary: serves when run without arguments (or
//! with `serve`); its other subcommands are operator tools and the client
//! that publishes and manages updates over the HTTP API.

use std::path::PathBuf;
use std::process::ExitCode;

use adapter_cli::{ClientCommand, ClientOptions};
use clap::{Parser, Subcommand};
use expo_updates_server::{Application, Config, allocator, codesigning, telemetry};

/// Self-hosted Expo over-the-air updates: the server, and its client.
///
/// Run without a subcommand to serve (configured by environment variables,
/// see the README). The client subcommands talk to a server over its HTTP
/// API and are configured by flags or EXPO_UPDATES_URL,
/// EXPO_UPDATES_PROJECT and EXPO_UPDATES_API_KEY.
#[derive(Parser)]
#[command(name = "expo-updates-server", version)]
struct Cli {
    #[command(flatten)]
    client: ClientOptions,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Exit 0 when the server on $PORT answers /healthz (for container health checks).
    Healthcheck,
    /// Import a Go expo-updates-server's data dir (users, projects, members,
    /// keys, updates) into this server's database and storage (DATA_DIR,
    /// DATABASE_URL, STORAGE_TYPE, S3_*). Safe to run again: only what is new
    /// is imported. --json prints the report as one JSON object.
    ImportGo(expo_updates_server::go_import::ImportGoArgs),
    /// Code-signing keys for signed updates.
    #[command(subcommand)]
    Codesigning(CodesigningCommand),
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
enum CodesigningCommand {
    /// Write an RSA 2048 key (private-key.pem) and a self-signed code-signing
    /// certificate (certificate.pem) for app.json's updates.codeSigningCertificate.
    Generate {
        #[arg(long)]
        output_dir: PathBuf,
        #[arg(long, default_value = "Expo Updates")]
        common_name: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
        validity_years: u32,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => serve().await,
        Some(Command::Healthcheck) => {
            let port = std::env::var("PORT")
                .ok()
                .and_then(|port| port.parse().ok())
                .unwrap_or(8080);
            match expo_updates_server::healthcheck::probe(port) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&error),
            }
        }
        Some(Command::Codesigning(CodesigningCommand::Generate {
            output_dir,
            common_name,
            validity_years,
        })) => {
            let args = codesigning::GenerateArgs {
                output_dir,
                common_name,
                validity_years,
            };
            match codesigning::generate(&args) {
                Ok(done) => {
                    println!("{done}");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Some(Command::ImportGo(args)) => import_go(&args, cli.client.json).await,
        Some(Command::Client(command)) => adapter_cli::run(cli.client, command).await,
    }
}

async fn import_go(args: &expo_updates_server::go_import::ImportGoArgs, json: bool) -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return fail(&format!("configuration: {error}")),
    };
    let _log_writer = telemetry::init_for_tool();
    match expo_updates_server::go_import::run(args, &config).await {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(error) => return fail(&format!("report: {error}")),
                }
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::SUCCESS
        }
        Err(error) => fail(&format!("import-go: {error}")),
    }
}

async fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return fail(&format!("configuration: {error}")),
    };
    let _log_writer = telemetry::init(config.log_format);
    allocator::keep_large_buffers_out_of_the_heap();
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(error) => return fail(&error.to_string()),
    };
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&format!("server: {error}")),
    }
}

/// Reports a fatal error as one line on stderr and exits non-zero.
fn fail(message: &str) -> ExitCode {
    eprintln!("expo-updates-server: {message}");
    ExitCode::FAILURE
}
