//! The command-line client of expo-updates-server: `login`, `publish`,
//! `projects`, `keys`, `channels`, `updates`, `rollout` and the rest, over
//! the server's documented HTTP API only. The binary adds these subcommands
//! beside `serve`; this crate knows nothing of the server's internals but
//! the export rules it shares through `domain`.

mod api;
mod args;
mod commands;
mod context;
mod embedded;
mod error;
mod export;
mod output;
mod publish;
mod session;

use std::process::ExitCode;

pub use args::{ClientCommand, ClientOptions};
pub use error::CliError;

use context::Context;
use output::Output;

/// Runs one client command and reports a failure on stderr (and, with
/// `--json`, as `{"error": "..."}` on stdout). The exit code says what
/// kind of failure it was (see [`CliError::exit_code`]).
pub async fn run(options: ClientOptions, command: ClientCommand) -> ExitCode {
    let out = Output { json: options.json };
    match dispatch(options, command, out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if out.json {
                println!("{}", serde_json::json!({ "error": error.to_string() }));
            }
            error.exit_code()
        }
    }
}

async fn dispatch(
    options: ClientOptions,
    command: ClientCommand,
    out: Output,
) -> Result<(), CliError> {
    let context = Context::new(options);
    match command {
        ClientCommand::Login { username } => commands::login(&context, out, username).await,
        ClientCommand::Register { username, email } => {
            commands::register(&context, out, username, email).await
        }
        ClientCommand::Logout => commands::logout(out),
        ClientCommand::Whoami => commands::whoami(&context, out).await,
        ClientCommand::Projects(command) => commands::projects(&context, out, command).await,
        ClientCommand::Members(command) => commands::members(&context, out, command).await,
        ClientCommand::Keys(command) => commands::keys(&context, out, command).await,
        ClientCommand::Channels(command) => commands::channels(&context, out, command).await,
        ClientCommand::Updates(command) => commands::updates(&context, out, command).await,
        ClientCommand::Rollout(command) => commands::rollout(&context, out, command).await,
        ClientCommand::Embedded(command) => embedded::run(&context, out, command).await,
        ClientCommand::Publish(args) => commands::publish(&context, out, args).await,
    }
}
