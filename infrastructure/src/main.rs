//! The `expo-updates-server` binary: serves when run without arguments.

use std::process::ExitCode;

use expo_updates_server::{Application, Config, codesigning, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(argument) = std::env::args().nth(1) {
        let version = env!("CARGO_PKG_VERSION");
        return match argument.as_str() {
            "healthcheck" => {
                let port = std::env::var("PORT")
                    .ok()
                    .and_then(|port| port.parse().ok())
                    .unwrap_or(8080);
                match expo_updates_server::healthcheck::probe(port) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => fail(&error),
                }
            }
            "codesigning" => {
                let args: Vec<String> = std::env::args().skip(2).collect();
                let parsed = match args.split_first() {
                    Some((command, rest)) if command == "generate" => {
                        codesigning::parse_generate_args(rest)
                    }
                    _ => Err("usage: codesigning generate --output-dir D [--common-name N] [--validity-years Y]".to_owned()),
                };
                match parsed.and_then(|args| codesigning::generate(&args)) {
                    Ok(done) => {
                        println!("{done}");
                        ExitCode::SUCCESS
                    }
                    Err(error) => fail(&error),
                }
            }
            "--version" | "-V" => {
                println!("expo-updates-server {version}");
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!(
                    "expo-updates-server {version}: run without arguments to serve, `healthcheck` to probe a running server, or `codesigning generate --output-dir D` for a code-signing key and certificate; configure the server with environment variables (see README)"
                );
                ExitCode::from(2)
            }
        };
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return fail(&format!("configuration: {error}")),
    };
    telemetry::init(config.log_format);
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
