//! The real binary, as an operator runs it: it serves with no configuration,
//! stops cleanly on SIGTERM, and refuses bad configuration with one line and
//! a non-zero exit.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use test_support::PRIVATE_KEY_PATH;

use common::{BINARY, free_port};

fn healthy(port: u16) -> bool {
    Command::new(BINARY)
        .arg("healthcheck")
        .env("PORT", port.to_string())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Waits for `/healthz` to answer, failing if the server exits or takes 30 s.
fn wait_until_healthy(server: &mut Child, port: u16) {
    let started = Instant::now();
    while !healthy(port) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never became healthy"
        );
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited early"
        );
        sleep(Duration::from_millis(100));
    }
}

/// The binary with no arguments (it serves) in `cwd`, on a cleared environment but
/// `PORT=port` and what `configure` adds; its stdout to `stdout`, its stderr nowhere.
fn serve_in(cwd: &Path, port: u16, stdout: Stdio, configure: impl FnOnce(&mut Command)) -> Child {
    let mut command = Command::new(BINARY);
    command
        .current_dir(cwd)
        .env_clear()
        .env("PORT", port.to_string())
        .stdout(stdout)
        .stderr(Stdio::null());
    configure(&mut command);
    command.spawn().unwrap()
}

/// Serves with `PRIVATE_KEY=key` (and `env`) in an empty directory until healthy, stops it
/// with SIGTERM (it must exit cleanly) and returns what it logged on stdout.
fn log_of_a_run_signing_with(key: &Path, env: &[(&str, &str)]) -> String {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = serve_in(cwd.path(), port, Stdio::piped(), |command| {
        command.env("PRIVATE_KEY", key).envs(env.iter().copied());
    });
    wait_until_healthy(&mut server, port);
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let output = server.wait_with_output().unwrap();
    assert!(output.status.success(), "exit status after SIGTERM");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn serves_with_defaults_and_stops_on_sigterm() {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = serve_in(cwd.path(), port, Stdio::null(), |_| {});
    wait_until_healthy(&mut server, port);
    // SQLite and the generated secret land under ./data.
    assert!(cwd.path().join("data/ota.db").exists());
    assert!(cwd.path().join("data/jwt-secret").exists());

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(!healthy(port));
}

#[test]
fn bad_configuration_is_one_line_and_a_failure() {
    let cwd = tempfile::tempdir().unwrap();
    let missing_key_file = cwd.path().join("missing.pem");
    let missing_key_file = missing_key_file.to_str().unwrap();
    for (var, value) in [
        ("JWT_SECRET", "too-short"),
        ("STORAGE_TYPE", "ftp"),
        ("PRIVATE_KEY", missing_key_file),
        (
            "PRIVATE_KEY",
            "-----BEGIN RSA PRIVATE KEY-----\\nnot a key\\n-----END RSA PRIVATE KEY-----",
        ),
        ("PORT", "http"),
        ("ALLOW_REGISTRATION", "perhaps"),
        ("DATABASE_URL", "mysql://localhost/ota"),
    ] {
        let output = Command::new(BINARY)
            .current_dir(cwd.path())
            .env_clear()
            .env(var, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(!stderr.contains("panicked"), "{var}: {stderr}");
        assert!(
            !stderr.contains(value) || var != "JWT_SECRET",
            "the secret was echoed"
        );
    }
}

#[test]
fn unreachable_s3_storage_stops_start_up() {
    let cwd = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .current_dir(cwd.path())
        .env_clear()
        .envs([
            ("STORAGE_TYPE", "s3"),
            ("S3_ENDPOINT", "http://127.0.0.1:9"),
            ("S3_BUCKET", "ota"),
            ("S3_ACCESS_KEY", "ak"),
            ("S3_SECRET_KEY", "never-printed-secret"),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("storage (s3 bucket ota at http://127.0.0.1:9)"),
        "{stderr}"
    );
    assert!(!stderr.contains("never-printed-secret"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("never-printed-secret"));
}

#[test]
fn starts_with_the_fixture_signing_key() {
    let log = log_of_a_run_signing_with(Path::new(PRIVATE_KEY_PATH), &[("PRIVATE_KEY_ID", "main")]);
    assert!(log.contains("code signing enabled"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "the key is never logged");
}

#[test]
fn codesigning_generate_writes_a_key_the_server_and_expo_clients_accept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let output = Command::new(BINARY)
        .args(["codesigning", "generate", "--output-dir"])
        .arg(&out)
        .args(["--common-name", "My App", "--validity-years", "5"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let key = out.join("private-key.pem");
    let certificate = out.join("certificate.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        !stdout.contains("PRIVATE KEY-----"),
        "the key is not printed"
    );

    // What the Expo client checks (compare the fixture certificate):
    // self-signed, currently valid, digitalSignature, codeSigning.
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&certificate)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "Subject: CN = My App",
        "Issuer: CN = My App",
        "Digital Signature",
        "Code Signing",
        "Public-Key: (2048 bit)",
        "sha256WithRSAEncryption",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
    let checked = Command::new("openssl")
        .args(["x509", "-noout", "-checkend", "86400", "-in"])
        .arg(&certificate)
        .status()
        .unwrap();
    assert!(checked.success(), "not valid for another day");
    let pubkey = |args: &[&str], path: &std::path::Path| {
        let out = Command::new("openssl")
            .args(args)
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        pubkey(&["x509", "-noout", "-pubkey", "-in"], &certificate),
        pubkey(&["pkey", "-pubout", "-in"], &key),
        "the certificate is for the generated key"
    );
    let self_signed = Command::new("openssl")
        .args(["verify", "-check_ss_sig", "-partial_chain", "-CAfile"])
        .arg(&certificate)
        .arg(&certificate)
        .output()
        .unwrap();
    assert!(self_signed.status.success(), "{self_signed:?}");

    // Never overwrites.
    let again = Command::new(BINARY)
        .args(["codesigning", "generate", "--output-dir"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());

    // The server signs with it.
    let log = log_of_a_run_signing_with(&key, &[]);
    assert!(log.contains("code signing enabled"), "{log}");
}
