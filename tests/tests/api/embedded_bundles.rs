//! Patches against the bundle embedded in the app binary: an owner (or a
//! build pipeline with the project's key) uploads the build's bundle under
//! its embedded update id, and once the project opts in, a device still
//! running that embedded update downloads a patch instead of the whole
//! bundle of its first update. Off by default, and the full file otherwise.

use std::time::{Duration, Instant};

use e2e::publish::{Export, PublishForm, sha256_bytes_hex};
use e2e::serde_json::{Value, json};
use e2e::{Response, TestApp, all_backends};

use super::bundle_diffing::{bspatch, download, header};

/// The ids of the builds' `app.manifest`s, as a device sends them.
const ANDROID_BUILD: &str = "4c1e1a52-8d4b-4b7e-9a55-1f0c6b3e2a01";
const IOS_BUILD: &str = "4C1E1A52-8D4B-4B7E-9A55-1F0C6B3E2A02";

async fn upload(
    app: &TestApp,
    path: &str,
    token: &str,
    update_id: &str,
    platform: &str,
    bundle: Vec<u8>,
) -> Response {
    let request = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .query(&[
            ("updateId", update_id),
            ("runtimeVersion", "1.0.0"),
            ("platform", platform),
        ])
        .header("content-type", "application/octet-stream")
        .body(bundle);
    app.send(request).await
}

/// Waits until every platform of the update has a ready patch from `base`.
async fn wait_for_patches(app: &TestApp, path: &str, secret: &str, base: &[&str]) {
    let started = Instant::now();
    loop {
        let patches = app.get(path, secret).await;
        patches.assert_status(200);
        let ready = patches.json["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|platform| platform["patches"].as_array().unwrap())
            .filter(|patch| patch["state"] == "ready")
            .filter(|patch| base.contains(&patch["baseBundleSha256"].as_str().unwrap()))
            .count();
        if ready == base.len() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no patches from the embedded bundles after a minute: {}",
            patches.json
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

all_backends!(
    devices_running_the_embedded_update_get_a_patch_once_the_project_opts_in,
    |app| async move {
        let p = app.publisher_with_member("ci").await;
        let owner = &p.owner.token;
        let member = &p.member.as_ref().unwrap().token;
        let (v1, v2) = (Export::v1(), Export::v2());
        let embedded = |platform: &str| v1.bytes(&v1.bundle(platform));
        let owners_path = format!("/api/projects/{}/embedded-bundles", p.project_id);
        let keys_path = format!("/api/updates/{}/embedded-bundles", p.project_id);

        // Android's build is uploaded by its owner before the update…
        let android_build = upload(
            &app,
            &owners_path,
            owner,
            ANDROID_BUILD,
            "android",
            embedded("android"),
        )
        .await;
        android_build.assert_status(201);
        assert_eq!(android_build.json["updateId"], ANDROID_BUILD);
        assert_eq!(
            android_build.json["sha256"],
            sha256_bytes_hex(&embedded("android"))
        );
        assert_eq!(android_build.json["size"], embedded("android").len() as u64);
        let v2_id = app
            .publish(&p.project_id, &p.secret, &PublishForm::new(&v2))
            .await;
        // …iOS's by the build pipeline after it (the id lower-cased).
        upload(
            &app,
            &keys_path,
            &p.secret,
            IOS_BUILD,
            "ios",
            embedded("ios"),
        )
        .await
        .assert_status(201);
        let patches_path = format!("/api/updates/{}/updates/{v2_id}/patches", p.project_id);
        let bases = [
            sha256_bytes_hex(&embedded("android")),
            sha256_bytes_hex(&embedded("ios")),
        ];
        let bases: Vec<&str> = bases.iter().map(String::as_str).collect();
        wait_for_patches(&app, &patches_path, &p.secret, &bases).await;

        let android = app.latest_manifest(&p.project_id, "android", "1.0.0").await;
        let ios = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
        let ios_build = IOS_BUILD.to_ascii_lowercase();

        // Off by default: the full file.
        let project_path = format!("/api/projects/{}", p.project_id);
        assert_eq!(
            app.get(&project_path, owner).await.json["patchFromEmbedded"],
            false
        );
        let full = download(&app, &android, ANDROID_BUILD, &[]).await;
        full.assert_status(200);
        assert_eq!(header(&full, "im"), None);

        // Only owners turn it on.
        let on = json!({ "patchFromEmbedded": true });
        app.patch(&project_path, member, &on)
            .await
            .assert_status(403);
        let turned_on = app.patch(&project_path, owner, &on).await;
        turned_on.assert_status(200);
        assert_eq!(turned_on.json["patchFromEmbedded"], true);

        for (manifest, build, platform) in [
            (&android, ANDROID_BUILD, "android"),
            (&ios, ios_build.as_str(), "ios"),
        ] {
            let patched = download(&app, manifest, build, &[]).await;
            patched.assert_status(226);
            assert_eq!(header(&patched, "im"), Some("bsdiff"));
            assert_eq!(header(&patched, "expo-base-update-id"), Some(build));
            assert_eq!(header(&patched, "cache-control"), Some("private, no-store"));
            // Debian's bspatch turns the embedded bundle into the update's.
            let target = v2.bytes(&v2.bundle(platform));
            assert_eq!(
                bspatch(&embedded(platform), &patched.body),
                target,
                "{platform}"
            );
        }
        // A build of the other platform is no base.
        download(&app, &ios, ANDROID_BUILD, &[])
            .await
            .assert_status(200);

        // Members and the key list them, newest first; other tenants do not.
        let listed = app.get(&owners_path, member).await;
        listed.assert_status(200);
        let ids: Vec<&str> = listed
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["updateId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [ios_build.as_str(), ANDROID_BUILD]);
        assert_eq!(app.get(&keys_path, &p.secret).await.json, listed.json);
        let stranger = app.publisher().await;
        app.get(&keys_path, &stranger.secret)
            .await
            .assert_status(403);
        app.get(&owners_path, &stranger.owner.token)
            .await
            .assert_status(403);
        upload(
            &app,
            &keys_path,
            &stranger.secret,
            ANDROID_BUILD,
            "android",
            vec![1],
        )
        .await
        .assert_status(403);

        // Bad uploads are refused with a reason, and change nothing.
        for (update_id, platform, bundle, why) in [
            ("not-a-uuid", "android", vec![1u8], "updateId"),
            (ANDROID_BUILD, "web", vec![1u8], "platform"),
            (ANDROID_BUILD, "android", Vec::new(), "empty"),
        ] {
            let refused = upload(&app, &owners_path, owner, update_id, platform, bundle).await;
            refused.assert_status(400);
            let message = refused.json["error"].as_str().unwrap_or_default();
            assert!(message.contains(why), "{why}: {message}");
        }
        let no_fields = app
            .send(
                app.client
                    .post(app.url(&owners_path))
                    .bearer_auth(owner)
                    .header("content-type", "application/octet-stream")
                    .body(vec![1u8]),
            )
            .await;
        no_fields.assert_status(400);
        let message = no_fields.json["error"].as_str().unwrap_or_default();
        assert!(message.contains("updateId must be"), "{message}");
        upload(
            &app,
            &owners_path,
            member,
            ANDROID_BUILD,
            "android",
            vec![1],
        )
        .await
        .assert_status(403);
        assert_eq!(app.get(&owners_path, owner).await.json, listed.json);

        // Forgotten: devices running it get the full file again.
        let one = format!("{owners_path}/{ANDROID_BUILD}");
        app.delete(&one, member).await.assert_status(403);
        app.delete(&one, owner).await.assert_status(204);
        download(&app, &android, ANDROID_BUILD, &[])
            .await
            .assert_status(200);
        let again = app.delete(&one, owner).await;
        again.assert_status(404);
        assert!(again.json["error"].is_string());
        let left: Vec<Value> = app
            .get(&owners_path, owner)
            .await
            .json
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(left.len(), 1);
    }
);

// A bundle over the server's upload cut-off (MAX_UPLOAD_BYTES plus the form
// allowance) is refused whole, streamed without a length or not: never
// stored cut short. The server may answer before the body is sent and close
// the connection, so a client can also see the write fail.
e2e::both_backends!(
    an_embedded_bundle_past_the_upload_limit_is_refused_not_cut_short,
    env = [("MAX_UPLOAD_BYTES", "1000000")],
    |app| async move {
        let p = app.publisher().await;
        let path = format!("/api/updates/{}/embedded-bundles", p.project_id);
        let big = vec![7u8; 6 * 1024 * 1024];
        let request = || {
            app.client
                .post(app.url(&path))
                .bearer_auth(&p.secret)
                .query(&[
                    ("updateId", ANDROID_BUILD),
                    ("runtimeVersion", "1.0.0"),
                    ("platform", "android"),
                ])
                .header("content-type", "application/octet-stream")
        };
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
            .chunks(64 * 1024)
            .map(|chunk| Ok(chunk.to_vec()))
            .collect();
        let streamed = e2e::reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        for (request, how) in [
            (request().body(big.clone()), "with Content-Length"),
            (request().body(streamed), "streamed"),
        ] {
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    assert!([400, 413].contains(&status), "{how}: {status}");
                }
                // Answered and closed before the whole body was written.
                Err(error) => assert!(error.is_request(), "{how}: {error}"),
            }
        }
        let listed = app.get(&path, &p.secret).await;
        assert_eq!(listed.json, json!([]), "nothing stored");
    }
);
