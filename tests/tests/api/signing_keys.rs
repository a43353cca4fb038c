//! Per-project code-signing keys: owners upload or generate them, the
//! device's `keyid` picks one, rotation keeps the old key for the apps that
//! ask for it, private keys are stored encrypted and never returned, and the
//! server's `PRIVATE_KEY` remains the fallback.

use std::path::Path;

use e2e::protocol::{
    PRIVATE_KEY_PATH, RawResponse, UpdateCheck, certificate_path, openssl_verify_with,
    parse_signature_header,
};
use e2e::publish::{Export, PublishForm};
use e2e::serde_json::{Value, json};
use e2e::{Backend, TestApp, both_backends, str_field};

const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef-test-master";

fn fixture_private_key() -> String {
    std::fs::read_to_string(PRIVATE_KEY_PATH).expect("the fixture key")
}

fn fixture_certificate() -> String {
    std::fs::read_to_string(certificate_path()).expect("the fixture certificate")
}

fn keys_path(project: &str) -> String {
    format!("/api/projects/{project}/signing-keys")
}

/// The manifest part's `keyid`, after checking its signature with
/// `certificate` (PEM text) by openssl.
#[track_caller]
fn signed_by(answer: &RawResponse, certificate: &str) -> String {
    answer.assert_status(200);
    let parts = answer.multipart();
    let manifest = parts
        .iter()
        .find(|part| part.name() == "manifest")
        .expect("a manifest part");
    let header = manifest.header("expo-signature").expect("expo-signature");
    let members = parse_signature_header(header).expect("an SFV dictionary of strings");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let certificate_file = dir.path().join("certificate.pem");
    std::fs::write(&certificate_file, certificate).expect("write the certificate");
    openssl_verify_with(
        &manifest.body,
        &members["sig"],
        Path::new(&certificate_file),
    )
    .unwrap_or_else(|e| panic!("keyid {} does not verify: {e}", members["keyid"]));
    members["keyid"].clone()
}

async fn published_project(app: &TestApp, token: &str) -> String {
    let project = str_field(&app.create_project(token).await, "id");
    let key = str_field(&app.create_key(token, &project, None).await, "secret");
    app.publish(&project, &key, &PublishForm::new(&Export::v1()))
        .await;
    project
}

fn check(keyid: Option<&str>) -> UpdateCheck {
    let value = match keyid {
        Some(keyid) => format!(r#"sig, keyid="{keyid}", alg="rsa-v1_5-sha256""#),
        None => "sig".to_owned(),
    };
    UpdateCheck::v1("ios", "1.0.0").signed_with(&value)
}

both_backends!(
    projects_sign_with_their_own_keys_and_rotate_them,
    env = [
        ("SIGNING_KEY_ENCRYPTION_KEY", MASTER_KEY),
        ("PRIVATE_KEY", PRIVATE_KEY_PATH),
        ("PRIVATE_KEY_ID", "main"),
    ],
    |app| async move {
        let setup = app.project_with_member().await;
        let owner = setup.owner.token.as_str();
        let project = setup.project_id.clone();
        let key = str_field(&app.create_key(owner, &project, None).await, "secret");
        app.publish(&project, &key, &PublishForm::new(&Export::v1()))
            .await;

        // Without keys of its own the project signs with the server's key.
        let fixture_certificate = fixture_certificate();
        assert_eq!(
            signed_by(
                &app.check(&project, &check(None)).await,
                &fixture_certificate
            ),
            "main"
        );

        // An owner generates a key; the answer has the certificate, never a private key.
        let generated = app
            .post(
                &format!("{}/generate", keys_path(&project)),
                owner,
                &json!({"keyId": "k1", "commonName": "Test App", "validityYears": 2}),
            )
            .await;
        generated.assert_status(201);
        assert!(
            !generated.text.contains("PRIVATE KEY"),
            "{}",
            generated.text
        );
        assert_eq!(generated.json["keyId"], "k1");
        assert_eq!(generated.json["active"], true);
        let k1_certificate = str_field(&generated.json, "certificate");
        assert!(k1_certificate.starts_with("-----BEGIN CERTIFICATE-----"));

        // It signs from now on, for devices that name it or no key at all.
        assert_eq!(
            signed_by(&app.check(&project, &check(None)).await, &k1_certificate),
            "k1"
        );
        assert_eq!(
            signed_by(
                &app.check(&project, &check(Some("k1"))).await,
                &k1_certificate
            ),
            "k1"
        );
        // The server's key still answers to its own key id.
        assert_eq!(
            signed_by(
                &app.check(&project, &check(Some("main"))).await,
                &fixture_certificate
            ),
            "main"
        );

        // Rotation: an uploaded key becomes the active one; k1 keeps signing for its apps.
        let uploaded = app
            .post(
                &keys_path(&project),
                owner,
                &json!({
                    "keyId": "root",
                    "privateKey": fixture_private_key(),
                    "certificate": fixture_certificate,
                }),
            )
            .await;
        uploaded.assert_status(201);
        assert!(!uploaded.text.contains("PRIVATE KEY"));
        assert_eq!(
            signed_by(
                &app.check(&project, &check(None)).await,
                &fixture_certificate
            ),
            "root"
        );
        assert_eq!(
            signed_by(
                &app.check(&project, &check(Some("k1"))).await,
                &k1_certificate
            ),
            "k1"
        );

        // Members see the keys (newest first, the newest active), without private parts.
        let listed = app.get(&keys_path(&project), &setup.member.token).await;
        listed.assert_status(200);
        let ids: Vec<&str> = listed
            .array()
            .iter()
            .map(|k| k["keyId"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(ids, ["root", "k1"]);
        assert_eq!(listed.array()[0]["active"], true);
        assert_eq!(listed.array()[1]["active"], false);
        assert!(!listed.text.contains("PRIVATE KEY"));
        assert!(!listed.text.to_ascii_lowercase().contains("privatekey"));

        // An unknown key id is a clear 400, never a signature the app would reject.
        let unknown = app.check(&project, &check(Some("nope"))).await;
        let message = unknown.assert_error(400);
        assert!(message.contains("unknown keyid \"nope\""), "{message}");
        assert!(message.contains("\"root\""), "{message}");

        // Members and strangers cannot add or remove keys.
        let body = json!({"keyId": "m", "commonName": "x"});
        app.post(
            &format!("{}/generate", keys_path(&project)),
            &setup.member.token,
            &body,
        )
        .await
        .assert_error(403);
        let stranger = app.register_user().await;
        app.post(
            &format!("{}/generate", keys_path(&project)),
            &stranger.token,
            &body,
        )
        .await
        .assert_error(403);
        app.get(&keys_path(&project), &stranger.token)
            .await
            .assert_error(403);
        app.delete(&format!("{}/k1", keys_path(&project)), &setup.member.token)
            .await
            .assert_error(403);

        // Bad keys are refused with the reason.
        for (body, expected) in [
            (
                json!({"keyId": "root", "privateKey": fixture_private_key()}),
                409,
            ),
            (
                json!({"keyId": "bad id", "privateKey": fixture_private_key()}),
                400,
            ),
            (
                json!({"keyId": "x", "privateKey": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}),
                400,
            ),
            // A certificate of another key: apps embedding it would reject every signature.
            (
                json!({"keyId": "x", "privateKey": fixture_private_key(), "certificate": k1_certificate}),
                400,
            ),
            (
                json!({"keyId": "x", "privateKey": fixture_private_key(), "certificate": "not a certificate"}),
                400,
            ),
        ] {
            app.post(&keys_path(&project), owner, &body)
                .await
                .assert_error(expected);
        }
        app.post(
            &format!("{}/generate", keys_path(&project)),
            owner,
            &json!({"keyId": "y", "validityYears": 0}),
        )
        .await
        .assert_error(400);

        // Another tenant cannot use this project's key ids.
        let other = published_project(&app, &stranger.token).await;
        let message = app
            .check(&other, &check(Some("k1")))
            .await
            .assert_error(400);
        assert!(message.contains("unknown keyid"), "{message}");
        assert_eq!(
            signed_by(&app.check(&other, &check(None)).await, &fixture_certificate),
            "main"
        );

        // Removing k1: its apps get a 400 from now on; the audit log says who did what.
        app.delete(&format!("{}/k1", keys_path(&project)), owner)
            .await
            .assert_no_content();
        app.delete(&format!("{}/k1", keys_path(&project)), owner)
            .await
            .assert_error(404);
        app.check(&project, &check(Some("k1")))
            .await
            .assert_error(400);
        let audit = app
            .get(&format!("/api/projects/{project}/audit"), owner)
            .await;
        audit.assert_status(200);
        let actions: Vec<String> = audit.json["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|event| event["action"].as_str().map(str::to_owned))
            .collect();
        for action in ["signingKey.add", "signingKey.remove"] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} in {actions:?}"
            );
        }
        if app.backend == Backend::Sqlite {
            assert_no_plaintext_private_key(app.data_dir());
        }
    }
);

/// No file under the data directory (the SQLite database and its WAL)
/// holds a private key in the clear.
fn assert_no_plaintext_private_key(data_dir: &Path) {
    let mut pending = vec![data_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("read the data directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(11).any(|window| window == b"PRIVATE KEY"),
                    "{} holds a private key in the clear",
                    path.display()
                );
            }
        }
    }
}

both_backends!(
    project_keys_need_the_master_key,
    |backend: Backend| async move {
        // Without SIGNING_KEY_ENCRYPTION_KEY, adding a key conflicts with how the
        // server is set up, and says what is missing.
        let app = TestApp::spawn(backend).await;
        let owner = app.register_user().await;
        let project = str_field(&app.create_project(&owner.token).await, "id");
        let refused = app
            .post(
                &format!("{}/generate", keys_path(&project)),
                &owner.token,
                &json!({"keyId": "k"}),
            )
            .await;
        let message = refused.assert_error(409);
        assert!(message.contains("SIGNING_KEY_ENCRYPTION_KEY"), "{message}");
        let refused = app
            .post(
                &keys_path(&project),
                &owner.token,
                &json!({"keyId": "k", "privateKey": "not checked before the master key"}),
            )
            .await;
        let message = refused.assert_error(409);
        assert!(message.contains("SIGNING_KEY_ENCRYPTION_KEY"), "{message}");
        drop(app);

        // Keys stored under one master key do not open under another: signed checks
        // are unavailable (never signed by a wrong key), unsigned ones still served.
        let mut app =
            TestApp::spawn_with(backend, &[("SIGNING_KEY_ENCRYPTION_KEY", MASTER_KEY)]).await;
        let owner = app.register_user().await;
        let project = published_project(&app, &owner.token).await;
        app.post(
            &format!("{}/generate", keys_path(&project)),
            &owner.token,
            &json!({"keyId": "k"}),
        )
        .await
        .assert_status(201);
        app.check(&project, &check(None)).await.assert_status(200);
        app.env.insert(
            "SIGNING_KEY_ENCRYPTION_KEY".to_owned(),
            "another-master-key-of-at-least-32-chars".to_owned(),
        );
        app.restart().await;
        let message = app.check(&project, &check(None)).await.assert_error(503);
        assert!(message.contains("SIGNING_KEY_ENCRYPTION_KEY"), "{message}");
        app.check(&project, &UpdateCheck::v1("ios", "1.0.0"))
            .await
            .assert_status(200);
        let listed: Value = app.get(&keys_path(&project), &owner.token).await.json;
        assert_eq!(listed.as_array().map(Vec::len), Some(1));
    }
);
