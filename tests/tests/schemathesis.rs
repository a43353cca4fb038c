//! Schemathesis against the running server: every operation of
//! `/api/openapi.json` is called with generated requests (valid and
//! invalid), authenticated, against real objects, and each answer must be
//! no server error and conform to the document (status, content type,
//! headers, body schema).
//!
//! Schemathesis comes from PyPI at a pinned version. It is installed into a
//! virtualenv under Cargo's target directory on first use and reused after;
//! without Python or the network the test fails, it never skips.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use e2e::publish::{Export, PublishForm};
use e2e::serde_json::json;
use e2e::{Backend, TestApp, str_field};

/// The version the checks and options below were written for (v4 CLI).
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Fixed, so a failure reproduces; change it to explore other inputs.
const SEED: u64 = 20261127;

/// Examples per operation and phase: about 50 operations, so this bounds
/// the run to a minute or two on the test machine.
const MAX_EXAMPLES: u32 = 20;

/// A hard budget for the whole run (seconds), well under the test's own.
const MAX_TIME_SECONDS: u32 = 100;

/// The virtualenv holding the pinned schemathesis.
fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("schemathesis-{SCHEMATHESIS_VERSION}"))
}

fn describe(output: &Output) -> String {
    format!(
        "exit status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("could not run {command:?}: {error}"))
}

/// The `st` executable of the pinned version, installing it when missing
/// or of another version.
fn schemathesis() -> PathBuf {
    let venv = venv_dir();
    let st = venv.join("bin").join("st");
    let installed = st.is_file()
        && Command::new(&st)
            .arg("--version")
            .output()
            .is_ok_and(|output| {
                output.status.success()
                    && String::from_utf8_lossy(&output.stdout).contains(SCHEMATHESIS_VERSION)
            });
    if installed {
        return st;
    }
    eprintln!(
        "installing schemathesis {SCHEMATHESIS_VERSION} into {}",
        venv.display()
    );
    let created = run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv));
    assert!(
        created.status.success(),
        "python3 -m venv failed (is python3-venv installed?): {}",
        describe(&created)
    );
    let pip = run(Command::new(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}")));
    assert!(
        pip.status.success(),
        "installing schemathesis from PyPI failed: {}",
        describe(&pip)
    );
    assert!(st.is_file(), "pip installed no {}", st.display());
    st
}

/// What the run addresses: ids of real objects, so generated requests
/// reach them rather than stopping at 404, and separate throwaway objects
/// for the operations that delete (otherwise the first `DELETE` would
/// remove what every later case needs).
struct Objects {
    jwt: String,
    api_key: String,
    project_id: String,
    key_id: String,
    member_id: String,
    publish_id: String,
    channel: &'static str,
    doomed_project_id: String,
    doomed_key_id: String,
    doomed_member_id: String,
    doomed_publish_id: String,
    doomed_channel: &'static str,
    /// The same for the API-key routes (their user twins delete the first).
    doomed_publish_id_2: String,
    doomed_channel_2: &'static str,
    doomed_signing_key: &'static str,
}

async fn create_objects(app: &TestApp) -> Objects {
    let owner = app.register_user().await;
    let member = app.register_user().await;
    let doomed_member = app.register_user().await;
    let project_id = str_field(&app.create_project(&owner.token).await, "id");
    let doomed_project_id = str_field(&app.create_project(&owner.token).await, "id");
    for user in [&member, &doomed_member] {
        app.add_member(&owner.token, &project_id, &user.id, "member")
            .await;
    }
    let key = app.create_key(&owner.token, &project_id, Some("ci")).await;
    let doomed_key = app
        .create_key(&owner.token, &project_id, Some("doomed"))
        .await;
    let api_key = str_field(&key, "secret");
    let publish_id = app
        .publish(&project_id, &api_key, &PublishForm::new(&Export::v1()))
        .await;
    let doomed_publish_id = app
        .publish(&project_id, &api_key, &PublishForm::new(&Export::rt2()))
        .await;
    let doomed_publish_id_2 = app
        .publish(&project_id, &api_key, &PublishForm::new(&Export::v2()))
        .await;
    app.post(
        &format!("/api/projects/{project_id}/signing-keys/generate"),
        &owner.token,
        &json!({ "keyId": "doomed" }),
    )
    .await
    .assert_status(201);
    for (name, branch) in [
        ("production", "main"),
        ("doomed", "main"),
        ("doomed-2", "main"),
    ] {
        app.post(
            &format!("/api/projects/{project_id}/channels"),
            &owner.token,
            &json!({ "name": name, "branch": branch }),
        )
        .await
        .assert_status(201);
    }
    Objects {
        jwt: owner.token,
        api_key,
        project_id,
        key_id: str_field(&key["key"], "id"),
        member_id: member.id,
        publish_id,
        channel: "production",
        doomed_project_id,
        doomed_key_id: str_field(&doomed_key["key"], "id"),
        doomed_member_id: doomed_member.id,
        doomed_publish_id,
        doomed_channel: "doomed",
        doomed_publish_id_2,
        doomed_channel_2: "doomed-2",
        doomed_signing_key: "doomed",
    }
}

/// A TOML string (the values here are ids, tokens and names, but quote
/// properly anyway).
fn toml_string(value: &str) -> String {
    e2e::serde_json::to_string(value).unwrap()
}

/// `schemathesis.toml`: credentials per security scheme of the document
/// (a user's JWT for `UserAuth`, the project's key for `ApiKeyAuth`), and
/// path parameters naming the objects above.
fn config(objects: &Objects) -> String {
    let mut toml = format!(
        "[auth.openapi.UserAuth]\nbearer = {}\n\n[auth.openapi.ApiKeyAuth]\nbearer = {}\n\n",
        toml_string(&objects.jwt),
        toml_string(&objects.api_key)
    );
    let parameters = |pairs: &[(&str, &str)]| -> String {
        pairs
            .iter()
            .map(|(name, value)| format!("\"path.{name}\" = {}\n", toml_string(value)))
            .collect()
    };
    toml.push_str("[parameters]\n");
    toml.push_str(&parameters(&[
        ("id", &objects.project_id),
        ("project", &objects.project_id),
        ("keyId", &objects.key_id),
        ("userId", &objects.member_id),
        ("updateId", &objects.publish_id),
        ("name", objects.channel),
    ]));
    // The deleting operations get their own objects. `include-name` names
    // one operation: `include-path` and `include-method` in one entry
    // would match either (schemathesis ORs the filters of an entry).
    let project = objects.project_id.as_str();
    let doomed: [(&str, &[(&str, &str)]); 8] = [
        (
            "DELETE /api/projects/{id}",
            &[("id", &objects.doomed_project_id)],
        ),
        (
            "DELETE /api/projects/{id}/keys/{keyId}",
            &[("id", project), ("keyId", &objects.doomed_key_id)],
        ),
        (
            "DELETE /api/projects/{id}/signing-keys/{keyId}",
            &[("id", project), ("keyId", objects.doomed_signing_key)],
        ),
        (
            "DELETE /api/projects/{id}/users/{userId}",
            &[("id", project), ("userId", &objects.doomed_member_id)],
        ),
        (
            "DELETE /api/projects/{id}/updates/{updateId}",
            &[("id", project), ("updateId", &objects.doomed_publish_id)],
        ),
        (
            "DELETE /api/updates/{project}/updates/{updateId}",
            &[
                ("project", project),
                ("updateId", &objects.doomed_publish_id_2),
            ],
        ),
        (
            "DELETE /api/projects/{id}/channels/{name}",
            &[("id", project), ("name", objects.doomed_channel)],
        ),
        (
            "DELETE /api/updates/{project}/channels/{name}",
            &[("project", project), ("name", objects.doomed_channel_2)],
        ),
    ];
    for (operation, values) in doomed {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-name = {}\n[operations.parameters]\n{}",
            toml_string(operation),
            parameters(values)
        ));
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_conforms_to_its_openapi_document() {
    let st = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    // With a master key, so the signing-key operations work rather than
    // answering 503.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[(
            "SIGNING_KEY_ENCRYPTION_KEY",
            "schemathesis-test-master-key-0123456789abcdef",
        )],
    )
    .await;
    let objects = create_objects(&app).await;
    let work = tempfile::tempdir().unwrap();
    let config_path = work.path().join("schemathesis.toml");
    std::fs::write(&config_path, config(&objects)).unwrap();

    let mut command = Command::new(&st);
    command
        .arg("--config-file")
        .arg(&config_path)
        .arg("run")
        .arg(app.url("/api/openapi.json"))
        // Every check, less those that cannot hold for this API:
        // - positive_data_acceptance expects a 2xx for any request that the
        //   schema allows; the document states types, not the domain's
        //   rules (slug characters, UUID ids, a member's role names), so
        //   most schema-valid bodies are rightly answered 400.
        // - ensure_resource_availability and use_after_free follow links
        //   from a created (or deleted) object to the operations that
        //   address it, but the path parameters are fixed above to name
        //   real objects, so the follow-up request addresses another one.
        // - negative_data_rejection expects a 4xx for any body the schema
        //   refuses. The server is more lenient in two documented ways, both
        //   still validated by the domain rules: poem-openapi reads a JSON
        //   number or boolean given for a string field as its text, and an
        //   empty body on a write is read as `{}` (the Go server's clients
        //   send none). Left as they are; responses are still all checked.
        .args(["--checks", "all"])
        .args([
            "--exclude-checks",
            "positive_data_acceptance,ensure_resource_availability,use_after_free,negative_data_rejection",
        ])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--max-time", &MAX_TIME_SECONDS.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        // Secrets appear only in this test's own output.
        .args(["--output-sanitize", "false"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .current_dir(work.path())
        .env("NO_COLOR", "1");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || run(&mut command))
        .await
        .unwrap();
    eprintln!(
        "schemathesis ran for {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{}",
        describe(&output)
    );
    drop(app);
}
