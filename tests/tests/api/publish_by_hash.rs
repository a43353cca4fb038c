//! Uploading only what the server lacks: `POST /api/updates/{project}/assets/missing`
//! answers which files (by SHA-256) the project does not have, and a publish names the
//! others with `sha256:<path>` fields instead of uploading them again.

use std::collections::BTreeSet;

use e2e::publish::{Export, PublishForm, Publisher};
use e2e::serde_json::{Value, json};
use e2e::{TestApp, all_backends};

async fn missing(app: &TestApp, p: &Publisher, hashes: &[String]) -> e2e::Response {
    app.send(
        app.client
            .post(app.url(&format!("/api/updates/{}/assets/missing", p.project_id)))
            .bearer_auth(&p.secret)
            .json(&json!({ "sha256": hashes })),
    )
    .await
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

all_backends!(a_second_publish_uploads_only_new_files, |app| async move {
    let p = app.publisher().await;
    let (v1, v2) = (Export::v1(), Export::v2());
    // Nothing is known before the first publish.
    let v1_hashes: Vec<String> = v1
        .listed_paths()
        .iter()
        .map(|path| v1.sha256_hex(path))
        .collect();
    let response = missing(&app, &p, &v1_hashes).await;
    response.assert_status(200);
    assert_eq!(
        strings(&response.json["missing"]),
        v1_hashes.iter().cloned().collect::<BTreeSet<_>>()
    );
    // The default MAX_UPLOAD_BYTES (512 MiB), so a client can check first.
    assert_eq!(response.json["maxUploadBytes"], 512 * 1024 * 1024);
    app.publish(&p.project_id, &p.secret, &PublishForm::new(&v1))
        .await;

    // v2 shares most files with v1: only the others are missing.
    let unknown = "ab".repeat(32);
    let mut asked: Vec<String> = v2
        .listed_paths()
        .iter()
        .map(|path| v2.sha256_hex(path).to_ascii_uppercase())
        .collect();
    asked.push(unknown.clone());
    let response = missing(&app, &p, &asked).await;
    response.assert_status(200);
    let missing_now = strings(&response.json["missing"]);
    let v1_set: BTreeSet<String> = v1_hashes.iter().cloned().collect();
    let expected: BTreeSet<String> = v2
        .listed_paths()
        .iter()
        .map(|path| v2.sha256_hex(path))
        .filter(|hash| !v1_set.contains(hash))
        .chain([unknown.clone()])
        .collect();
    assert_eq!(missing_now, expected);
    assert!(
        missing_now.len() < v2.listed_paths().len(),
        "nothing shared"
    );

    // Publish v2 uploading only the missing files.
    let mut form = PublishForm::new(&v2);
    let (mut sent_bytes, mut all_bytes) = (0usize, 0usize);
    for path in v2.listed_paths() {
        let hash = v2.sha256_hex(&path);
        let size = v2.bytes(&path).len();
        all_bytes += size;
        if missing_now.contains(&hash) {
            sent_bytes += size;
        } else {
            form = form
                .without_file(&path)
                .extra_file(&format!("sha256:{path}"), hash.into_bytes());
        }
    }
    assert!(sent_bytes < all_bytes);
    let update_id = app.publish(&p.project_id, &p.secret, &form).await;

    // Devices get a complete v2, every file downloadable with the right bytes.
    for platform in v2.platforms() {
        let manifest = app.latest_manifest(&p.project_id, &platform, "1.0.0").await;
        let mut entries = vec![manifest["launchAsset"].clone()];
        entries.extend(manifest["assets"].as_array().unwrap().iter().cloned());
        for entry in entries {
            let body = app.fetch(entry["url"].as_str().unwrap()).await;
            body.assert_status(200);
            let hash = e2e::protocol::manifest_hash(&body.body);
            assert_eq!(json!(hash), entry["hash"], "{platform}: {}", entry["url"]);
        }
        assert_eq!(
            manifest["launchAsset"]["hash"],
            json!(e2e::protocol::manifest_hash(
                &v2.bytes(&v2.bundle(&platform))
            ))
        );
    }
    let detail = app
        .get(
            &format!("/api/projects/{}/updates/{update_id}", p.project_id),
            &p.owner.token,
        )
        .await;
    detail.assert_status(200);
});

all_backends!(
    hashes_are_checked_and_scoped_to_the_project,
    |app| async move {
        let p = app.publisher().await;
        let other = app.publisher().await;
        let v1 = Export::v1();
        app.publish(&p.project_id, &p.secret, &PublishForm::new(&v1))
            .await;
        let hashes: Vec<String> = v1
            .listed_paths()
            .iter()
            .map(|path| v1.sha256_hex(path))
            .collect();

        // Another project has none of them, and cannot name them by hash.
        let response = missing(&app, &other, &hashes).await;
        response.assert_status(200);
        assert_eq!(
            response.json["missing"].as_array().unwrap().len(),
            hashes.len()
        );
        let bundle = v1.bundle("ios");
        let form = PublishForm::new(&v1).without_file(&bundle).extra_file(
            &format!("sha256:{bundle}"),
            v1.sha256_hex(&bundle).into_bytes(),
        );
        let error = app
            .publish_raw(&other.project_id, Some(&other.secret), &form)
            .await
            .assert_error(400);
        assert!(error.contains("upload it"), "{error}");

        // Bad input is a 400; another project's key a 403; no key a 401.
        for bad in [
            json!({ "sha256": ["xyz"] }),
            json!({ "sha256": "abc" }),
            json!({}),
        ] {
            app.send(
                app.client
                    .post(app.url(&format!("/api/updates/{}/assets/missing", p.project_id)))
                    .bearer_auth(&p.secret)
                    .json(&bad),
            )
            .await
            .assert_error(400);
        }
        let too_many: Vec<String> = (0..10_001).map(|i| format!("{i:064x}")).collect();
        missing(&app, &p, &too_many).await.assert_error(400);
        let stranger = Publisher {
            secret: other.secret.clone(),
            ..p.clone()
        };
        missing(&app, &stranger, &hashes).await.assert_error(403);
        // A malformed hash in a publish form names the problem.
        let form = PublishForm::new(&v1).extra_file("sha256:assets/x", b"not-a-hash".to_vec());
        let error = app
            .publish_raw(&p.project_id, Some(&p.secret), &form)
            .await
            .assert_error(400);
        assert!(error.contains("SHA-256"), "{error}");
    }
);
