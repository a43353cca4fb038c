//! Branches, channels and percentage rollouts as devices and release pipelines see them:
//! `expo-channel-name` → channel mapping (or the branch of the channel's name) → the newest
//! update of that branch whose rollout includes the device (by `EAS-Client-ID`), the
//! `metadata.branch` / `expo-manifest-filters` pair, the channel routes, rollout changes,
//! several server instances sharing one database and one storage, and hostile inputs.
//!
//! Every served manifest goes through [`served`], which checks that its `metadata.branch`
//! equals the branch named by the `expo-manifest-filters` header (parsed as an RFC 8941
//! dictionary).

use std::collections::{BTreeMap, BTreeSet};

use e2e::protocol::{RawResponse, UpdateCheck, manifest_hash};
use e2e::publish::{
    Export, PUBLISHED_MESSAGE, PublishForm, Publisher, assert_release_answer, manifest_id_in,
};
use e2e::reqwest::header::HeaderValue;
use e2e::serde_json::{Value, json};
use e2e::{
    Backend, Response, Storage, TestApp, all_backends, assert_rfc3339, both_backends, str_field,
    uuid_v4,
};
use futures_util::StreamExt;

/// How many update checks are in flight at once in the distribution checks.
const CONCURRENCY: usize = 32;

fn client_ids(count: usize) -> Vec<String> {
    (0..count).map(|_| uuid_v4()).collect()
}

// ---------------------------------------------------------------------------------------------
// Publishing with the release fields
// ---------------------------------------------------------------------------------------------

/// Publishes and asserts the answer's shape; returns the body
/// `{"updateId","message","branch","platforms","rolloutPercentage"}`.
async fn publish(app: &TestApp, p: &Publisher, export: &Export, fields: &[(&str, &str)]) -> Value {
    let response = app
        .publish_raw(
            &p.project_id,
            Some(&p.secret),
            &PublishForm::new(export).fields(fields),
        )
        .await;
    let body = assert_release_answer(&response).clone();
    assert_eq!(
        body["message"], PUBLISHED_MESSAGE,
        "body: {}",
        response.text
    );
    let platforms: BTreeSet<&str> = body["platforms"]
        .as_array()
        .unwrap_or_else(|| panic!("platforms is not an array: {}", response.text))
        .iter()
        .map(|p| p.as_str().expect("a platform string"))
        .collect();
    assert_eq!(
        platforms,
        BTreeSet::from(["android", "ios"]),
        "body: {}",
        response.text
    );
    let expected_branch = fields
        .iter()
        .find(|(name, _)| *name == "branch")
        .map_or("main", |(_, value)| *value);
    assert_eq!(body["branch"], expected_branch, "body: {}", response.text);
    let expected_rollout = fields
        .iter()
        .find(|(name, _)| *name == "rolloutPercentage")
        .map_or(100, |(_, value)| value.trim().parse::<u64>().unwrap());
    assert_eq!(
        body["rolloutPercentage"], expected_rollout,
        "body: {}",
        response.text
    );
    body
}

/// The manifest id devices see for `platform` of the publish `update_id`.
async fn manifest_id_of(app: &TestApp, p: &Publisher, update_id: &str, platform: &str) -> String {
    let response = app
        .get(&p.updates_path(&format!("/updates/{update_id}")), &p.secret)
        .await;
    response.assert_status(200);
    manifest_id_in(&response.json, platform)
}

/// Asserts an update summary `{id, branch, runtimeVersion, platforms, kind, message,
/// rolloutPercentage, createdAt, publishedBy, republishedFrom}` of a publish by the `ci`
/// key.
#[track_caller]
fn assert_summary(body: &Value, update_id: &str, branch: &str, rollout: u64) {
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("expected an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    let required = BTreeSet::from([
        "id",
        "branch",
        "runtimeVersion",
        "platforms",
        "kind",
        "rolloutPercentage",
        "createdAt",
    ]);
    let allowed = BTreeSet::from([
        "id",
        "branch",
        "runtimeVersion",
        "platforms",
        "kind",
        "message",
        "rolloutPercentage",
        "createdAt",
        "publishedBy",
        "republishedFrom",
    ]);
    assert!(required.is_subset(&keys), "missing fields in {body}");
    assert!(keys.is_subset(&allowed), "unexpected fields in {body}");
    assert_eq!(body["id"], update_id, "{body}");
    assert_eq!(body["branch"], branch, "{body}");
    assert_eq!(body["runtimeVersion"], "1.0.0", "{body}");
    assert_eq!(body["kind"], "update", "{body}");
    assert_eq!(body["rolloutPercentage"], rollout, "{body}");
    assert_rfc3339(&body["createdAt"]);
    let platforms: BTreeSet<&str> = body["platforms"]
        .as_array()
        .unwrap_or_else(|| panic!("platforms is not an array: {body}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(platforms, BTreeSet::from(["android", "ios"]), "{body}");
    assert_eq!(body["publishedBy"]["type"], "apiKey", "{body}");
    assert_eq!(body["publishedBy"]["name"], "ci", "{body}");
    assert!(body["republishedFrom"].is_null(), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Update checks with a channel and a client id
// ---------------------------------------------------------------------------------------------

/// An update check from a device on `channel` (no `expo-channel-name` when `None`) with
/// `EAS-Client-ID: client_id` (none when `None`).
async fn ask(
    app: &TestApp,
    project_id: &str,
    check: &UpdateCheck,
    channel: Option<&str>,
    client_id: Option<&str>,
) -> RawResponse {
    let mut check = check.clone();
    check.channel = channel.map(str::to_owned);
    check.client_id = client_id.map(str::to_owned);
    app.check(project_id, &check).await
}

fn ios() -> UpdateCheck {
    UpdateCheck::v1("ios", "1.0.0")
}

fn android() -> UpdateCheck {
    UpdateCheck::v1("android", "1.0.0")
}

/// A protocol 1 check that only accepts a JSON manifest (small answers for the
/// distribution checks).
fn ios_json() -> UpdateCheck {
    ios().accept(Some("application/expo+json"))
}

/// What a device was served: the manifest id and the branch it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    id: String,
    branch: String,
}

impl Served {
    fn new(id: &str, branch: &str) -> Served {
        Served {
            id: id.to_owned(),
            branch: branch.to_owned(),
        }
    }
}

/// The manifest of a 200 answer: the `manifest` part of a multipart body, or the JSON body.
#[track_caller]
fn manifest_in(response: &RawResponse) -> Value {
    response.assert_status(200);
    let content_type = response.header("content-type").unwrap_or_default();
    if content_type.starts_with("multipart/mixed") {
        let parts = response.multipart();
        let names: Vec<String> = parts.iter().map(|part| part.name()).collect();
        parts
            .iter()
            .find(|part| part.name() == "manifest")
            .unwrap_or_else(|| panic!("expected a manifest part, got the parts {names:?}"))
            .json()
    } else {
        assert!(
            content_type.starts_with("application/expo+json")
                || content_type.starts_with("application/json"),
            "content-type {content_type:?}"
        );
        response.json()
    }
}

/// Asserts a manifest answer whose `metadata` is `{"branch": B}` and whose
/// `expo-manifest-filters` header names the same branch `B`, with `Vary` covering the
/// channel and the client id. Returns the manifest id and `B`.
#[track_caller]
fn served(response: &RawResponse) -> Served {
    let manifest = manifest_in(response);
    let branch = manifest["metadata"]["branch"]
        .as_str()
        .unwrap_or_else(|| panic!("no metadata.branch in {manifest}"))
        .to_owned();
    assert_eq!(
        manifest["metadata"],
        json!({ "branch": branch }),
        "metadata should only name the branch"
    );
    assert_eq!(
        filter_branch(response),
        branch,
        "the expo-manifest-filters header and metadata.branch disagree"
    );
    assert_vary_covers_routing(response);
    Served {
        id: str_field(&manifest, "id"),
        branch,
    }
}

/// The branch named by the `expo-manifest-filters` header (an SFV dictionary with a string
/// member `branch`).
#[track_caller]
fn filter_branch(response: &RawResponse) -> String {
    let header = response
        .header("expo-manifest-filters")
        .unwrap_or_else(|| panic!("no expo-manifest-filters header: {:?}", response.headers));
    let members = parse_sf_dictionary(&header).unwrap_or_else(|e| {
        panic!("expo-manifest-filters {header:?} is not an SFV dictionary: {e}")
    });
    let branches: Vec<&SfItem> = members
        .iter()
        .filter(|(key, _)| key == "branch")
        .map(|(_, item)| item)
        .collect();
    match branches.as_slice() {
        [SfItem::Str(branch)] => branch.clone(),
        other => panic!(
            "expo-manifest-filters {header:?}: expected one string member branch, got {other:?}"
        ),
    }
}

#[track_caller]
fn assert_vary_covers_routing(response: &RawResponse) {
    let vary: BTreeSet<String> = response
        .headers
        .get_all("vary")
        .iter()
        .flat_map(|value| {
            value
                .to_str()
                .expect("an ASCII vary header")
                .split(',')
                .map(|token| token.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    for needed in ["expo-channel-name", "eas-client-id"] {
        assert!(
            vary.contains(needed) || vary.contains("*"),
            "Vary {vary:?} does not name {needed}"
        );
    }
}

/// Asserts a multipart answer with exactly one `directive` part; returns its JSON.
#[track_caller]
fn directive_of(response: &RawResponse) -> Value {
    response.assert_status(200);
    let parts = response.multipart();
    let names: Vec<String> = parts.iter().map(|part| part.name()).collect();
    assert_eq!(names, ["directive"], "parts: {names:?}");
    parts[0].json()
}

#[track_caller]
fn assert_no_update_available(response: &RawResponse) {
    assert_eq!(
        directive_of(response),
        json!({ "type": "noUpdateAvailable" })
    );
}

/// Asks once per client id (`CONCURRENCY` at a time) from a device on `channel`; returns
/// client id → what it was served.
async fn answers(
    app: &TestApp,
    project_id: &str,
    channel: Option<&str>,
    ids: &[String],
) -> BTreeMap<String, Served> {
    let check = ios_json();
    let check = &check;
    futures_util::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let response = ask(app, project_id, check, channel, Some(&id)).await;
            let what = served(&response);
            (id, what)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// The share of `answers` equal to `what`.
fn share(answers: &BTreeMap<String, Served>, what: &Served) -> f64 {
    answers.values().filter(|served| *served == what).count() as f64 / answers.len() as f64
}

/// The ids whose answer is `what`.
fn ids_served(answers: &BTreeMap<String, Served>, what: &Served) -> BTreeSet<String> {
    answers
        .iter()
        .filter(|(_, served)| *served == what)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Asserts that every answer is one of `allowed`.
#[track_caller]
fn assert_only(answers: &BTreeMap<String, Served>, allowed: &[&Served]) {
    for (id, served) in answers {
        assert!(
            allowed.contains(&served),
            "client {id} was served {served:?}, expected one of {allowed:?}"
        );
    }
}

#[track_caller]
fn assert_share_near(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {:.1}% of devices, expected {:.0}% ± {:.0}%",
        actual * 100.0,
        expected * 100.0,
        tolerance * 100.0
    );
}

// ---------------------------------------------------------------------------------------------
// A minimal RFC 8941 dictionary parser
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum SfItem {
    Str(String),
    Token(String),
    Integer(i64),
    Boolean(bool),
}

/// Parses an SFV dictionary whose members are bare items without parameters: strings
/// (with `\"` and `\\` escapes), tokens, integers and booleans.
fn parse_sf_dictionary(input: &str) -> Result<Vec<(String, SfItem)>, String> {
    let mut chars = input.trim_matches(' ').chars().peekable();
    let mut members = Vec::new();
    loop {
        let mut key = String::new();
        match chars.peek() {
            Some(c) if c.is_ascii_lowercase() || *c == '*' => {}
            other => return Err(format!("a key cannot start with {other:?}")),
        }
        while let Some(&c) = chars.peek() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c) {
                key.push(c);
                chars.next();
            } else {
                break;
            }
        }
        let item = if chars.peek() == Some(&'=') {
            chars.next();
            match chars.next() {
                Some('"') => {
                    let mut text = String::new();
                    loop {
                        match chars.next() {
                            Some('\\') => match chars.next() {
                                Some(c @ ('"' | '\\')) => text.push(c),
                                other => return Err(format!("bad escape {other:?}")),
                            },
                            Some('"') => break,
                            Some(c) if (' '..='~').contains(&c) => text.push(c),
                            other => return Err(format!("bad string character {other:?}")),
                        }
                    }
                    SfItem::Str(text)
                }
                Some('?') => match chars.next() {
                    Some('1') => SfItem::Boolean(true),
                    Some('0') => SfItem::Boolean(false),
                    other => return Err(format!("bad boolean {other:?}")),
                },
                Some(c) if c.is_ascii_digit() || c == '-' => {
                    let mut number = c.to_string();
                    while let Some(&d) = chars.peek() {
                        if !d.is_ascii_digit() {
                            break;
                        }
                        number.push(d);
                        chars.next();
                    }
                    SfItem::Integer(number.parse().map_err(|e| format!("{number:?}: {e}"))?)
                }
                Some(c) if c.is_ascii_alphabetic() || c == '*' => {
                    let mut token = c.to_string();
                    while let Some(&t) = chars.peek() {
                        if !(t.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(t)) {
                            break;
                        }
                        token.push(t);
                        chars.next();
                    }
                    SfItem::Token(token)
                }
                other => return Err(format!("member {key:?} has no valid value: {other:?}")),
            }
        } else {
            SfItem::Boolean(true)
        };
        if chars.peek() == Some(&';') {
            return Err(format!("member {key:?} has parameters"));
        }
        members.push((key, item));
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        match chars.next() {
            None => return Ok(members),
            Some(',') => {
                while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    return Err("a trailing comma".to_owned());
                }
            }
            Some(c) => return Err(format!("unexpected {c:?} after a member")),
        }
    }
}

#[test]
fn the_sfv_parser_is_not_vacuous() {
    assert_eq!(
        parse_sf_dictionary(r#"branch="feature/a-1.0_x""#),
        Ok(vec![(
            "branch".to_owned(),
            SfItem::Str("feature/a-1.0_x".to_owned())
        )])
    );
    assert_eq!(
        parse_sf_dictionary(r#"branch="a\"b\\c", n=-4,  t=tok/x:y, f=?0, bare"#),
        Ok(vec![
            ("branch".to_owned(), SfItem::Str(r#"a"b\c"#.to_owned())),
            ("n".to_owned(), SfItem::Integer(-4)),
            ("t".to_owned(), SfItem::Token("tok/x:y".to_owned())),
            ("f".to_owned(), SfItem::Boolean(false)),
            ("bare".to_owned(), SfItem::Boolean(true)),
        ])
    );
    for bad in [
        "",
        "branch=",
        "Branch=\"x\"",
        "branch=\"x",
        "branch=\"x\";p=1",
        "branch=\"x\",",
        "branch=\"x\" y",
        "branch=\"é\"",
        "branch='x'",
    ] {
        assert!(parse_sf_dictionary(bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Channels default to the branch of their name
// ---------------------------------------------------------------------------------------------

all_backends!(a_channel_serves_the_branch_of_its_name, |app| async move {
    let p = app.publisher_with_member("ci").await;
    let pid = p.project_id.as_str();
    let v1 = Export::v1();
    let v2 = Export::v2();
    let main = publish(&app, &p, &v1, &[]).await;
    let production = publish(
        &app,
        &p,
        &v2,
        &[("branch", "production"), ("message", "Release 2")],
    )
    .await;
    assert_ne!(main["updateId"], production["updateId"]);
    let main_update = str_field(&main, "updateId");
    let production_update = str_field(&production, "updateId");
    let main_ios = Served::new(&manifest_id_of(&app, &p, &main_update, "ios").await, "main");
    let main_android = Served::new(
        &manifest_id_of(&app, &p, &main_update, "android").await,
        "main",
    );
    let production_ios = Served::new(
        &manifest_id_of(&app, &p, &production_update, "ios").await,
        "production",
    );
    let production_android = Served::new(
        &manifest_id_of(&app, &p, &production_update, "android").await,
        "production",
    );

    // No expo-channel-name: channel main, branch main, as before channels existed. The
    // production publish changed nothing for these devices.
    for channel in [None, Some("main")] {
        for client_id in [None, Some(uuid_v4())] {
            let client_id = client_id.as_deref();
            for check in [ios(), ios_json(), UpdateCheck::v0("ios", "1.0.0")] {
                let answer = served(&ask(&app, pid, &check, channel, client_id).await);
                assert_eq!(
                    answer, main_ios,
                    "channel {channel:?}, client {client_id:?}"
                );
            }
            let answer = served(&ask(&app, pid, &android(), channel, client_id).await);
            assert_eq!(answer, main_android, "channel {channel:?}");
        }
    }
    // The manifest is v1's content.
    let manifest = manifest_in(&ask(&app, pid, &ios(), None, None).await);
    assert_eq!(
        manifest["launchAsset"]["hash"],
        manifest_hash(&v1.bytes(&v1.bundle("ios")))
    );

    // A device on channel production gets the production branch without any set-up.
    for check in [ios(), ios_json(), UpdateCheck::v0("ios", "1.0.0")] {
        let answer = served(&ask(&app, pid, &check, Some("production"), None).await);
        assert_eq!(answer, production_ios);
    }
    let answer = served(&ask(&app, pid, &android(), Some("production"), Some(&uuid_v4())).await);
    assert_eq!(answer, production_android);
    let manifest = manifest_in(&ask(&app, pid, &ios(), Some("production"), None).await);
    assert_eq!(
        manifest["launchAsset"]["hash"],
        manifest_hash(&v2.bytes(&v2.bundle("ios"))),
        "the production device should get v2's bundle"
    );

    // Already running it: nothing new.
    let running = ios().current(&production_ios.id);
    assert_no_update_available(&ask(&app, pid, &running, Some("production"), None).await);

    // Channel names are case-sensitive, like branch names: `Production` has
    // no branch, so nothing to serve: "no update" in protocol 1.
    assert_no_update_available(&ask(&app, pid, &ios(), Some("Production"), None).await);
    // A channel whose branch has nothing for this runtime version: "no
    // update" in protocol 1, a JSON 404 in protocol 0 (which cannot say it).
    assert_no_update_available(&ask(&app, pid, &ios(), Some("staging"), None).await);
    let message = ask(
        &app,
        pid,
        &UpdateCheck::v0("android", "1.0.0"),
        Some("staging"),
        None,
    )
    .await
    .assert_error(404);
    assert!(!message.is_empty());
    // A runtime version the branch has nothing for.
    assert_no_update_available(
        &ask(
            &app,
            pid,
            &UpdateCheck::v1("ios", "2.0.0"),
            Some("production"),
            None,
        )
        .await,
    );
});

// ---------------------------------------------------------------------------------------------
// metadata.branch and expo-manifest-filters
// ---------------------------------------------------------------------------------------------

all_backends!(
    manifest_metadata_matches_the_filters_header,
    |app| async move {
        let p = app.publisher_with_member("ci").await;
        let pid = p.project_id.as_str();
        // A branch name using every kind of character allowed: upper case, digits, . _ - /
        let branch = "Feature/login-2.0_rc";
        let published = publish(&app, &p, &Export::v1(), &[("branch", branch)]).await;
        let update = str_field(&published, "updateId");
        let ios_id = manifest_id_of(&app, &p, &update, "ios").await;
        let android_id = manifest_id_of(&app, &p, &update, "android").await;

        // Channels cannot contain `/`: the branch is reached through a mapping.
        app.post(
            &p.updates_path("/channels"),
            &p.secret,
            &json!({ "name": "beta", "branch": branch }),
        )
        .await
        .assert_status(201);

        let checks = [
            ("ios", ios(), &ios_id),
            ("ios", ios().accept(Some("application/expo+json")), &ios_id),
            ("ios", ios().accept(Some("application/json")), &ios_id),
            ("ios", UpdateCheck::v0("ios", "1.0.0"), &ios_id),
            (
                "ios",
                UpdateCheck::v0("ios", "1.0.0").accept(Some("application/json")),
                &ios_id,
            ),
            ("android", android(), &android_id),
            (
                "android",
                android().accept(Some("application/expo+json")),
                &android_id,
            ),
            ("android", UpdateCheck::v0("android", "1.0.0"), &android_id),
        ];
        for (platform, check, id) in checks {
            for client_id in [None, Some(uuid_v4())] {
                let response = ask(&app, pid, &check, Some("beta"), client_id.as_deref()).await;
                let answer = served(&response);
                assert_eq!(
                    answer,
                    Served::new(id, branch),
                    "{platform} with accept {:?}",
                    check.accept
                );
                // The header is exactly the dictionary `branch="<branch>"`.
                let members = parse_sf_dictionary(
                    &response.header("expo-manifest-filters").unwrap_or_default(),
                )
                .unwrap();
                assert_eq!(
                    members,
                    vec![("branch".to_owned(), SfItem::Str(branch.to_owned()))]
                );
            }
        }

        // Main has nothing: the main device gets "no update", not a manifest of another branch.
        assert_no_update_available(&ask(&app, pid, &ios(), None, None).await);

        // After a publish to main, main devices see branch main in both places.
        let main = publish(&app, &p, &Export::v2(), &[]).await;
        let main_ios = manifest_id_of(&app, &p, &str_field(&main, "updateId"), "ios").await;
        for check in [ios(), ios_json(), UpdateCheck::v0("ios", "1.0.0")] {
            assert_eq!(
                served(&ask(&app, pid, &check, None, None).await),
                Served::new(&main_ios, "main")
            );
        }
        // The beta device is unaffected.
        assert_eq!(
            served(&ask(&app, pid, &ios(), Some("beta"), None).await),
            Served::new(&ios_id, branch)
        );
    }
);

// ---------------------------------------------------------------------------------------------
// Percentage rollouts
// ---------------------------------------------------------------------------------------------

/// How many devices the update-rollout shares are measured on. At 50% ± 3% this is 3.8
/// standard deviations of a binomial share (2,000 devices would be 2.7: a correct server
/// would fail once in ~140 runs); at 20% ± 3%, 4.7.
const ROLLOUT_DEVICES: usize = 4_000;

/// How many devices the channel-split shares are measured on: 30% ± 4% and 60% ± 4% are
/// 3.9 and 3.7 standard deviations.
const SPLIT_DEVICES: usize = 2_000;

both_backends!(
    percentage_rollouts_pick_stable_growing_device_sets,
    |app| async move {
        let p = app.publisher_with_member("ci").await;
        let pid = p.project_id.as_str();
        let v1 = publish(&app, &p, &Export::v1(), &[]).await;
        let v1_ios = Served::new(
            &manifest_id_of(&app, &p, &str_field(&v1, "updateId"), "ios").await,
            "main",
        );
        let v2 = publish(&app, &p, &Export::v2(), &[("rolloutPercentage", "20")]).await;
        let v2_update = str_field(&v2, "updateId");
        let v2_ios = Served::new(&manifest_id_of(&app, &p, &v2_update, "ios").await, "main");
        let v2_android = manifest_id_of(&app, &p, &v2_update, "android").await;
        let v1_android = manifest_id_of(&app, &p, &str_field(&v1, "updateId"), "android").await;
        assert_ne!(v1_ios, v2_ios);

        let ids = client_ids(ROLLOUT_DEVICES);
        let at20 = answers(&app, pid, None, &ids).await;
        assert_only(&at20, &[&v1_ios, &v2_ios]);
        assert_share_near(share(&at20, &v2_ios), 0.20, 0.03, "v2 at 20%");
        let in20 = ids_served(&at20, &v2_ios);

        // The same device gets the same answer again.
        let first_half = &ids[..ROLLOUT_DEVICES / 2];
        let again = answers(&app, pid, None, first_half).await;
        for (id, answer) in &again {
            assert_eq!(
                answer, &at20[id],
                "client {id} got another answer the second time"
            );
        }

        // ... and the same answer on its other platform (one draw per publish).
        for id in ids.iter().take(200) {
            let response = ask(&app, pid, &android(), None, Some(id)).await;
            let expected = if in20.contains(id) {
                &v2_android
            } else {
                &v1_android
            };
            assert_eq!(&served(&response).id, expected, "android answer of {id}");
        }

        // Without EAS-Client-ID: outside the partial rollout.
        for check in [ios(), ios_json(), UpdateCheck::v0("ios", "1.0.0")] {
            assert_eq!(served(&ask(&app, pid, &check, None, None).await), v1_ios);
        }
        // Devices already running what they would be served are told there is nothing new.
        let outside = ids.iter().find(|id| !in20.contains(*id)).unwrap();
        let running_v1 = ios().current(&v1_ios.id);
        assert_no_update_available(&ask(&app, pid, &running_v1, None, Some(outside)).await);
        let inside = in20.iter().next().expect("someone is in a 20% rollout");
        let running_v2 = ios().current(&v2_ios.id);
        assert_no_update_available(&ask(&app, pid, &running_v2, None, Some(inside)).await);

        // Raise to 50% (member route): only adds devices.
        let raised = app
            .patch(
                &p.project_path(&format!("/updates/{v2_update}")),
                &p.member().token,
                &json!({ "rolloutPercentage": 50 }),
            )
            .await;
        raised.assert_status(200);
        assert_summary(&raised.json, &v2_update, "main", 50);
        let at50 = answers(&app, pid, None, &ids).await;
        assert_only(&at50, &[&v1_ios, &v2_ios]);
        let in50 = ids_served(&at50, &v2_ios);
        let dropped: Vec<&String> = in20.difference(&in50).collect();
        assert!(
            dropped.is_empty(),
            "raising 20% → 50% took v2 away from {} devices, e.g. {:?}",
            dropped.len(),
            dropped.first()
        );
        assert_share_near(share(&at50, &v2_ios), 0.50, 0.03, "v2 at 50%");
        assert_eq!(served(&ask(&app, pid, &ios(), None, None).await), v1_ios);

        // Halt (API key route): nobody gets v2.
        let halted = app
            .patch(
                &p.updates_path(&format!("/updates/{v2_update}")),
                &p.secret,
                &json!({ "rolloutPercentage": 0 }),
            )
            .await;
        halted.assert_status(200);
        assert_summary(&halted.json, &v2_update, "main", 0);
        // (Asked of every device that had v2 at 50%, and of 500 that did not.)
        let had_v2: Vec<String> = in50.iter().cloned().collect();
        let had_v1: Vec<String> = ids
            .iter()
            .filter(|id| !in50.contains(*id))
            .cloned()
            .collect();
        let at0 = answers(&app, pid, None, &had_v2).await;
        assert_only(&at0, &[&v1_ios]);
        let at0 = answers(&app, pid, None, &had_v1[..had_v1.len().min(500)]).await;
        assert_only(&at0, &[&v1_ios]);

        // Complete: everyone, with or without a client id.
        let completed = app
            .patch(
                &p.project_path(&format!("/updates/{v2_update}")),
                &p.owner.token,
                &json!({ "rolloutPercentage": 100 }),
            )
            .await;
        completed.assert_status(200);
        assert_summary(&completed.json, &v2_update, "main", 100);
        // (Asked of every device that did not have v2 at 50%, and of some that did.)
        let at100 = answers(&app, pid, None, &had_v1).await;
        assert_only(&at100, &[&v2_ios]);
        let at100 = answers(&app, pid, None, &had_v2[..had_v2.len().min(500)]).await;
        assert_only(&at100, &[&v2_ios]);
        for check in [ios(), ios_json(), UpdateCheck::v0("ios", "1.0.0")] {
            assert_eq!(served(&ask(&app, pid, &check, None, None).await), v2_ios);
        }

        // The rollout is part of the update's summary.
        let detail = app
            .get(&p.updates_path(&format!("/updates/{v2_update}")), &p.secret)
            .await;
        detail.assert_status(200);
        assert_eq!(detail.json["rolloutPercentage"], 100);

        // Errors: out of range, unknown update, no credentials, strangers.
        let path = p.project_path(&format!("/updates/{v2_update}"));
        for bad in [json!(101), json!(-1), json!(1000)] {
            app.patch(&path, &p.owner.token, &json!({ "rolloutPercentage": bad }))
                .await
                .assert_error(400);
        }
        app.patch(
            &p.project_path(&format!("/updates/{}", uuid_v4())),
            &p.owner.token,
            &json!({ "rolloutPercentage": 50 }),
        )
        .await
        .assert_error(404);
        app.patch(
            &p.updates_path(&format!("/updates/{}", uuid_v4())),
            &p.secret,
            &json!({ "rolloutPercentage": 50 }),
        )
        .await
        .assert_error(404);
        let anonymous = app
            .send(
                app.client
                    .patch(app.url(&path))
                    .json(&json!({ "rolloutPercentage": 0 })),
            )
            .await;
        anonymous.assert_error(401);
        let stranger = app.register_user().await;
        app.patch(&path, &stranger.token, &json!({ "rolloutPercentage": 0 }))
            .await
            .assert_error(403);
        let other_project = app.create_project(&stranger.token).await;
        let other_key = app
            .create_key(&stranger.token, &str_field(&other_project, "id"), None)
            .await;
        app.patch(
            &p.updates_path(&format!("/updates/{v2_update}")),
            &str_field(&other_key, "secret"),
            &json!({ "rolloutPercentage": 0 }),
        )
        .await
        .assert_error(403);
        // None of the refused changes took effect.
        assert_eq!(served(&ask(&app, pid, &ios(), None, None).await), v2_ios);
    }
);

all_backends!(a_device_outside_the_only_rollout, |app| async move {
    let p = app.publisher_with_member("ci").await;
    let pid = p.project_id.as_str();
    let published = publish(&app, &p, &Export::v1(), &[("rolloutPercentage", "10")]).await;
    let update = str_field(&published, "updateId");
    let ios_id = manifest_id_of(&app, &p, &update, "ios").await;
    let android_id = manifest_id_of(&app, &p, &update, "android").await;

    // Find a device inside the 10% and one outside.
    let mut inside = None;
    let mut outside = None;
    for _ in 0..300 {
        let id = uuid_v4();
        let response = ask(&app, pid, &ios(), None, Some(&id)).await;
        response.assert_status(200);
        let is_directive = response
            .multipart()
            .iter()
            .any(|part| part.name() == "directive");
        if is_directive {
            assert_no_update_available(&response);
            outside.get_or_insert(id);
        } else {
            assert_eq!(served(&response), Served::new(&ios_id, "main"));
            inside.get_or_insert(id);
        }
        if inside.is_some() && outside.is_some() {
            break;
        }
    }
    let inside = inside.expect("no device among 300 is in a 10% rollout");
    let outside = outside.expect("every device among 300 is in a 10% rollout");

    for device in [Some(outside.as_str()), None] {
        // Protocol 1 multipart: "no update available".
        assert_no_update_available(&ask(&app, pid, &ios(), None, device).await);
        assert_no_update_available(&ask(&app, pid, &android(), None, device).await);
        // Protocol 0, or a client that cannot take a directive: 404.
        ask(&app, pid, &UpdateCheck::v0("ios", "1.0.0"), None, device)
            .await
            .assert_error(404);
        ask(
            &app,
            pid,
            &UpdateCheck::v0("android", "1.0.0"),
            None,
            device,
        )
        .await
        .assert_error(404);
        // Protocol 1 without multipart cannot carry a directive: 204.
        ask(&app, pid, &ios_json(), None, device)
            .await
            .assert_status(204);
    }
    // The device inside gets it on every protocol and on both platforms.
    for check in [ios(), ios_json(), UpdateCheck::v0("ios", "1.0.0")] {
        assert_eq!(
            served(&ask(&app, pid, &check, None, Some(&inside)).await),
            Served::new(&ios_id, "main")
        );
    }
    assert_eq!(
        served(&ask(&app, pid, &android(), None, Some(&inside)).await),
        Served::new(&android_id, "main")
    );

    // Completing the rollout reaches everyone.
    app.patch(
        &p.updates_path(&format!("/updates/{update}")),
        &p.secret,
        &json!({ "rolloutPercentage": 100 }),
    )
    .await
    .assert_status(200);
    for device in [Some(outside.as_str()), None] {
        assert_eq!(
            served(&ask(&app, pid, &UpdateCheck::v0("ios", "1.0.0"), None, device).await),
            Served::new(&ios_id, "main")
        );
    }
    // Halting it takes it away from everyone, the device that had it included.
    app.patch(
        &p.updates_path(&format!("/updates/{update}")),
        &p.secret,
        &json!({ "rolloutPercentage": 0 }),
    )
    .await
    .assert_status(200);
    assert_no_update_available(&ask(&app, pid, &ios(), None, Some(&inside)).await);
    ask(
        &app,
        pid,
        &UpdateCheck::v0("ios", "1.0.0"),
        None,
        Some(&inside),
    )
    .await
    .assert_error(404);
});

// ---------------------------------------------------------------------------------------------
// Channel routes
// ---------------------------------------------------------------------------------------------

/// Asserts a channel body `{name, branch, rolloutBranch, rolloutPercentage, createdAt,
/// updatedAt}`.
#[track_caller]
fn assert_channel(body: &Value, name: &str, branch: &str, split: Option<(&str, u64)>) {
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("expected a channel object, got {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        BTreeSet::from(["name", "branch", "createdAt", "updatedAt"]).is_subset(&keys),
        "missing fields in {body}"
    );
    assert!(
        keys.is_subset(&BTreeSet::from([
            "name",
            "branch",
            "rolloutBranch",
            "rolloutPercentage",
            "createdAt",
            "updatedAt"
        ])),
        "unexpected fields in {body}"
    );
    assert_eq!(body["name"], name, "{body}");
    assert_eq!(body["branch"], branch, "{body}");
    match split {
        Some((rollout_branch, percentage)) => {
            assert_eq!(body["rolloutBranch"], rollout_branch, "{body}");
            assert_eq!(body["rolloutPercentage"], percentage, "{body}");
        }
        None => {
            assert!(body["rolloutBranch"].is_null(), "{body}");
            assert!(body["rolloutPercentage"].is_null(), "{body}");
        }
    }
    let created = assert_rfc3339(&body["createdAt"]);
    let updated = assert_rfc3339(&body["updatedAt"]);
    assert!(updated >= created, "updatedAt before createdAt: {body}");
}

/// The channels listed by `GET path`, by name.
async fn channel_list(app: &TestApp, path: &str, token: &str) -> BTreeMap<String, Value> {
    let response = app.get(path, token).await;
    response.assert_status(200);
    response
        .array()
        .iter()
        .map(|channel| (str_field(channel, "name"), channel.clone()))
        .collect()
}

both_backends!(channel_routes_and_their_rules, |app| async move {
    let p = app.publisher_with_member("ci").await;
    let members = p.project_path("/channels");
    let keys = p.updates_path("/channels");
    let token = p.member().token.as_str();

    assert!(channel_list(&app, &members, token).await.is_empty());
    assert!(channel_list(&app, &keys, &p.secret).await.is_empty());

    // Create (any member).
    let created = app
        .post(
            &members,
            token,
            &json!({ "name": "production", "branch": "release-1" }),
        )
        .await;
    created.assert_status(201);
    assert_channel(&created.json, "production", "release-1", None);
    let production = created.json.clone();

    // The name is taken, whatever the branch and whoever asks.
    for (path, credential) in [(&members, token), (&keys, p.secret.as_str())] {
        app.post(
            path,
            credential,
            &json!({ "name": "production", "branch": "other" }),
        )
        .await
        .assert_error(409);
    }

    // Names are case-sensitive: `Production` is another channel (on every database).
    let other_case = app
        .post(
            &members,
            token,
            &json!({ "name": "Production", "branch": "Release-1" }),
        )
        .await;
    other_case.assert_status(201);
    assert_channel(&other_case.json, "Production", "Release-1", None);
    app.delete(&format!("{members}/Production"), token)
        .await
        .assert_no_content();
    let listed = channel_list(&app, &members, token).await;
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["production"]);
    assert_eq!(listed["production"], production);

    // A split needs both fields, and another branch.
    for body in [
        json!({ "name": "beta", "branch": "a", "rolloutBranch": "b" }),
        json!({ "name": "beta", "branch": "a", "rolloutPercentage": 10 }),
        json!({ "name": "beta", "branch": "a", "rolloutBranch": "a", "rolloutPercentage": 10 }),
        json!({ "name": "beta", "branch": "a", "rolloutBranch": "b", "rolloutPercentage": 101 }),
        json!({ "name": "beta", "branch": "a", "rolloutBranch": "b", "rolloutPercentage": -1 }),
        json!({ "name": "beta", "branch": "a", "rolloutBranch": "b c", "rolloutPercentage": 5 }),
    ] {
        app.post(&members, token, &body).await.assert_error(400);
    }
    // Names: channels 1-64 of A-Za-z0-9 . _ - (no slash), branches 1-128 (slash allowed).
    let long_channel = "c".repeat(65);
    let long_branch = "b".repeat(129);
    for (name, branch) in [
        ("feature/x", "a"),
        ("", "a"),
        ("-x", "a"),
        (".x", "a"),
        ("a b", "a"),
        ("é", "a"),
        ("a\"b", "a"),
        (long_channel.as_str(), "a"),
        ("beta", ""),
        ("beta", "a b"),
        ("beta", "/a"),
        ("beta", "a,b"),
        ("beta", long_branch.as_str()),
    ] {
        app.post(&members, token, &json!({ "name": name, "branch": branch }))
            .await
            .assert_error(400);
    }
    app.post(&members, token, &json!({ "name": "beta" }))
        .await
        .assert_error(400);
    // The longest names are fine.
    let max_channel = "C".repeat(64);
    let max_branch = format!("feature/{}", "x".repeat(120));
    let longest = app
        .post(
            &keys,
            &p.secret,
            &json!({ "name": max_channel, "branch": max_branch }),
        )
        .await;
    longest.assert_status(201);
    assert_channel(&longest.json, &max_channel, &max_branch, None);

    // A split channel (API key).
    let beta = app
        .post(
            &keys,
            &p.secret,
            &json!({ "name": "beta", "branch": "a", "rolloutBranch": "b", "rolloutPercentage": 10 }),
        )
        .await;
    beta.assert_status(201);
    assert_channel(&beta.json, "beta", "a", Some(("b", 10)));

    let listed = channel_list(&app, &members, token).await;
    assert_eq!(
        listed.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["production", "beta", max_channel.as_str()])
    );
    assert_eq!(listed["production"], production);
    assert_eq!(listed["beta"], beta.json);
    assert_eq!(channel_list(&app, &keys, &p.secret).await, listed);

    // PATCH: absent fields stay.
    let production_path = format!("{members}/production");
    let unchanged = app.patch(&production_path, token, &json!({})).await;
    unchanged.assert_status(200);
    assert_channel(&unchanged.json, "production", "release-1", None);
    assert_eq!(unchanged.json["createdAt"], production["createdAt"]);

    let split = app
        .patch(
            &production_path,
            token,
            &json!({ "rolloutBranch": "release-2", "rolloutPercentage": 25 }),
        )
        .await;
    split.assert_status(200);
    assert_channel(
        &split.json,
        "production",
        "release-1",
        Some(("release-2", 25)),
    );
    let raised = app
        .patch(&production_path, token, &json!({ "rolloutPercentage": 40 }))
        .await;
    raised.assert_status(200);
    assert_channel(
        &raised.json,
        "production",
        "release-1",
        Some(("release-2", 40)),
    );
    let repointed = app
        .patch(&production_path, token, &json!({ "branch": "release-1b" }))
        .await;
    repointed.assert_status(200);
    assert_channel(
        &repointed.json,
        "production",
        "release-1b",
        Some(("release-2", 40)),
    );
    assert_eq!(repointed.json["createdAt"], production["createdAt"]);

    // Refused changes leave the channel as it was.
    for body in [
        json!({ "rolloutBranch": "release-1b" }),
        json!({ "branch": "release-2" }),
        json!({ "rolloutPercentage": 101 }),
        json!({ "rolloutPercentage": -5 }),
        json!({ "branch": "not a branch" }),
        json!({ "rolloutBranch": "-bad" }),
    ] {
        app.patch(&production_path, token, &body)
            .await
            .assert_error(400);
    }
    let listed = channel_list(&app, &members, token).await;
    assert_eq!(listed["production"], repointed.json);

    // null clears the split.
    let cleared = app
        .patch(&production_path, token, &json!({ "rolloutBranch": null }))
        .await;
    cleared.assert_status(200);
    assert_channel(&cleared.json, "production", "release-1b", None);
    // A percentage alone cannot start a split.
    app.patch(&production_path, token, &json!({ "rolloutPercentage": 10 }))
        .await
        .assert_error(400);

    // PATCH on a channel without a mapping creates one.
    let staging = app
        .patch(
            &format!("{members}/staging"),
            token,
            &json!({ "branch": "main" }),
        )
        .await;
    staging.assert_status(200);
    assert_channel(&staging.json, "staging", "main", None);
    let qa = app
        .patch(
            &format!("{keys}/qa"),
            &p.secret,
            &json!({ "branch": "release-1", "rolloutBranch": "release-2", "rolloutPercentage": 5 }),
        )
        .await;
    qa.assert_status(200);
    assert_channel(&qa.json, "qa", "release-1", Some(("release-2", 5)));
    // ... but not with an invalid name.
    app.patch(
        &format!("{members}/a%20b"),
        token,
        &json!({ "branch": "main" }),
    )
    .await
    .assert_error(400);
    app.patch(
        &format!("{members}/{}", "n".repeat(65)),
        token,
        &json!({ "branch": "main" }),
    )
    .await
    .assert_error(400);
    // A refused PATCH of a channel without a mapping creates none.
    for body in [
        json!({ "rolloutPercentage": 10 }),
        json!({ "rolloutBranch": "fresh", "rolloutPercentage": 10 }),
        json!({ "branch": "-x" }),
    ] {
        app.patch(&format!("{members}/fresh"), token, &body)
            .await
            .assert_error(400);
    }
    assert_eq!(
        channel_list(&app, &members, token)
            .await
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["production", "beta", "staging", "qa", max_channel.as_str()])
    );

    // DELETE.
    app.delete(&production_path, token)
        .await
        .assert_no_content();
    app.delete(&production_path, token).await.assert_error(404);
    app.delete(&format!("{members}/never-mapped"), token)
        .await
        .assert_error(404);
    app.delete(&format!("{keys}/beta"), &p.secret)
        .await
        .assert_no_content();
    app.delete(&format!("{keys}/beta"), &p.secret)
        .await
        .assert_error(404);
    let remaining = BTreeSet::from(["staging", "qa", max_channel.as_str()]);
    assert_eq!(
        channel_list(&app, &members, token)
            .await
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        remaining
    );
    // A deleted channel can be created again.
    app.post(
        &members,
        &p.owner.token,
        &json!({ "name": "production", "branch": "release-3" }),
    )
    .await
    .assert_status(201);

    // Credentials: none → 401; a stranger or another project's key → 403.
    let before = channel_list(&app, &members, token).await;
    let stranger = app.register_user().await;
    let other_project = app.create_project(&stranger.token).await;
    let other_key = app
        .create_key(&stranger.token, &str_field(&other_project, "id"), None)
        .await;
    let other_secret = str_field(&other_key, "secret");
    let body = json!({ "name": "evil", "branch": "main" });
    let patch_body = json!({ "branch": "evil" });
    for (path, credential) in [
        (&members, stranger.token.as_str()),
        (&keys, other_secret.as_str()),
    ] {
        app.get(path, credential).await.assert_error(403);
        app.post(path, credential, &body).await.assert_error(403);
        app.patch(&format!("{path}/staging"), credential, &patch_body)
            .await
            .assert_error(403);
        app.patch(&format!("{path}/fresh"), credential, &patch_body)
            .await
            .assert_error(403);
        app.delete(&format!("{path}/staging"), credential)
            .await
            .assert_error(403);
    }
    for path in [&members, &keys] {
        app.get_anon(path).await.assert_error(401);
        app.post_anon(path, &body).await.assert_error(401);
        app.send(
            app.client
                .patch(app.url(&format!("{path}/staging")))
                .json(&patch_body),
        )
        .await
        .assert_error(401);
        app.send(app.client.delete(app.url(&format!("{path}/staging"))))
            .await
            .assert_error(401);
    }
    assert_eq!(channel_list(&app, &members, token).await, before);
});

all_backends!(channels_steer_devices_at_once, |app| async move {
    let p = app.publisher_with_member("ci").await;
    let pid = p.project_id.as_str();
    let members = p.project_path("/channels");
    let keys = p.updates_path("/channels");
    let main = publish(&app, &p, &Export::v1(), &[]).await;
    let canary = publish(&app, &p, &Export::v2(), &[("branch", "canary")]).await;
    let main_ios = Served::new(
        &manifest_id_of(&app, &p, &str_field(&main, "updateId"), "ios").await,
        "main",
    );
    let canary_ios = Served::new(
        &manifest_id_of(&app, &p, &str_field(&canary, "updateId"), "ios").await,
        "canary",
    );
    let device = |channel: &'static str| {
        let app = &app;
        async move { ask(app, pid, &ios(), Some(channel), Some(&uuid_v4())).await }
    };

    // No mappings: the same-name branches.
    assert_eq!(served(&device("canary").await), canary_ios);
    assert_no_update_available(&device("production").await);

    // An explicit mapping.
    app.post(
        &members,
        &p.owner.token,
        &json!({ "name": "production", "branch": "main" }),
    )
    .await
    .assert_status(201);
    assert_eq!(served(&device("production").await), main_ios);

    // Repointing takes effect on the next check (API key route).
    app.patch(
        &format!("{keys}/production"),
        &p.secret,
        &json!({ "branch": "canary" }),
    )
    .await
    .assert_status(200);
    assert_eq!(served(&device("production").await), canary_ios);
    let running = ios().current(&canary_ios.id);
    assert_no_update_available(&ask(&app, pid, &running, Some("production"), None).await);
    app.patch(
        &format!("{members}/production"),
        &p.member().token,
        &json!({ "branch": "main" }),
    )
    .await
    .assert_status(200);
    assert_eq!(served(&device("production").await), main_ios);
    // Repointed to a branch without updates: 404 until it has some.
    app.patch(
        &format!("{members}/production"),
        &p.member().token,
        &json!({ "branch": "empty" }),
    )
    .await
    .assert_status(200);
    assert_no_update_available(&device("production").await);

    // A mapping beats the same-name branch; deleting it restores the same-name branch.
    app.post(
        &keys,
        &p.secret,
        &json!({ "name": "canary", "branch": "main" }),
    )
    .await
    .assert_status(201);
    assert_eq!(served(&device("canary").await), main_ios);
    app.delete(&format!("{members}/canary"), &p.member().token)
        .await
        .assert_no_content();
    assert_eq!(served(&device("canary").await), canary_ios);
    // The main channel can be mapped too, which moves devices without a channel header.
    app.patch(
        &format!("{members}/main"),
        &p.member().token,
        &json!({ "branch": "canary" }),
    )
    .await
    .assert_status(200);
    assert_eq!(
        served(&ask(&app, pid, &ios(), None, None).await),
        canary_ios
    );
    app.delete(&format!("{keys}/main"), &p.secret)
        .await
        .assert_no_content();
    assert_eq!(served(&ask(&app, pid, &ios(), None, None).await), main_ios);

    // PATCH creates a mapping for a channel that had none.
    app.patch(
        &format!("{members}/staging"),
        &p.member().token,
        &json!({ "branch": "canary" }),
    )
    .await
    .assert_status(200);
    assert_eq!(served(&device("staging").await), canary_ios);

    // A split: both branches get devices; no client id → the main branch of the split.
    app.patch(
        &format!("{members}/production"),
        &p.member().token,
        &json!({ "branch": "main", "rolloutBranch": "canary", "rolloutPercentage": 50 }),
    )
    .await
    .assert_status(200);
    let ids = client_ids(60);
    let split = answers(&app, pid, Some("production"), &ids).await;
    assert_only(&split, &[&main_ios, &canary_ios]);
    assert!(
        split.values().any(|s| *s == main_ios) && split.values().any(|s| *s == canary_ios),
        "a 50% split sent all 60 devices to one branch: {split:?}"
    );
    for _ in 0..3 {
        assert_eq!(
            served(&ask(&app, pid, &ios(), Some("production"), None).await),
            main_ios
        );
    }
    // Clearing the split sends everyone to the channel's branch.
    app.patch(
        &format!("{keys}/production"),
        &p.secret,
        &json!({ "rolloutBranch": null }),
    )
    .await
    .assert_status(200);
    let cleared = answers(&app, pid, Some("production"), &ids).await;
    assert_only(&cleared, &[&main_ios]);
    // Deleting it: production serves the (empty) production branch again.
    app.delete(&format!("{keys}/production"), &p.secret)
        .await
        .assert_no_content();
    assert_no_update_available(&device("production").await);
});

both_backends!(split_channel_distribution, |app| async move {
    let p = app.publisher_with_member("ci").await;
    let pid = p.project_id.as_str();
    let members = p.project_path("/channels");
    let a = publish(&app, &p, &Export::v1(), &[("branch", "a")]).await;
    let b = publish(&app, &p, &Export::v2(), &[("branch", "b")]).await;
    let on_a = Served::new(
        &manifest_id_of(&app, &p, &str_field(&a, "updateId"), "ios").await,
        "a",
    );
    let on_b = Served::new(
        &manifest_id_of(&app, &p, &str_field(&b, "updateId"), "ios").await,
        "b",
    );
    let created = app
        .post(
            &members,
            &p.member().token,
            &json!({ "name": "production", "branch": "a", "rolloutBranch": "b", "rolloutPercentage": 30 }),
        )
        .await;
    created.assert_status(201);
    assert_channel(&created.json, "production", "a", Some(("b", 30)));

    let ids = client_ids(SPLIT_DEVICES);
    let at30 = answers(&app, pid, Some("production"), &ids).await;
    assert_only(&at30, &[&on_a, &on_b]);
    assert_share_near(share(&at30, &on_b), 0.30, 0.04, "branch b at 30%");
    let again = answers(&app, pid, Some("production"), &ids).await;
    assert_eq!(
        again, at30,
        "split answers changed between two identical rounds"
    );
    // No client id: branch a.
    for check in [ios(), ios_json(), UpdateCheck::v0("ios", "1.0.0")] {
        assert_eq!(
            served(&ask(&app, pid, &check, Some("production"), None).await),
            on_a
        );
    }

    // Raising the split only adds devices to b.
    app.patch(
        &format!("{members}/production"),
        &p.member().token,
        &json!({ "rolloutPercentage": 60 }),
    )
    .await
    .assert_status(200);
    let at60 = answers(&app, pid, Some("production"), &ids).await;
    assert_only(&at60, &[&on_a, &on_b]);
    let (in30, in60) = (ids_served(&at30, &on_b), ids_served(&at60, &on_b));
    assert!(
        in30.is_subset(&in60),
        "raising the split 30% → 60% moved {} devices back to a",
        in30.difference(&in60).count()
    );
    assert_share_near(share(&at60, &on_b), 0.60, 0.04, "branch b at 60%");

    // Cleared: everyone on a.
    app.patch(
        &format!("{members}/production"),
        &p.member().token,
        &json!({ "rolloutBranch": null }),
    )
    .await
    .assert_status(200);
    let cleared = answers(&app, pid, Some("production"), &ids[..500]).await;
    assert_only(&cleared, &[&on_a]);
});

// ---------------------------------------------------------------------------------------------
// Several server instances
// ---------------------------------------------------------------------------------------------

mod several_instances_share_one_state {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_local() {
        replicas(Storage::Local).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_s3() {
        replicas(Storage::S3).await;
    }
}

/// Polls `check` until it holds, for at most one second: how long instances
/// sharing a database may disagree after a change (each caches answers and
/// follows the others' changes).
async fn within_a_second<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{what}: the instances still disagree after a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Whether `app` serves `expected` to a device (`None`: answers 404).
async fn serves(
    app: &TestApp,
    project_id: &str,
    channel: Option<&str>,
    client_id: Option<&str>,
    expected: Option<&Served>,
) -> bool {
    let response = ask(app, project_id, &ios(), channel, client_id).await;
    let is_directive = || {
        let parts = response.multipart();
        parts.len() == 1 && parts[0].name() == "directive"
    };
    match expected {
        // Nothing for the device: "no update".
        None => {
            response.status == 200
                && is_directive()
                && response.multipart()[0].json() == json!({ "type": "noUpdateAvailable" })
        }
        Some(expected) => {
            response.status == 200 && !is_directive() && served(&response) == *expected
        }
    }
}

async fn replicas(storage: Storage) {
    let a = TestApp::spawn_on(Backend::Postgres, storage, &[]).await;
    let b = a.spawn_sharing().await;
    assert_ne!(a.address, b.address);
    let p = a.publisher_with_member("ci").await;
    let pid = p.project_id.as_str();

    // B accepts the sessions and keys A issued.
    assert!(
        channel_list(&b, &p.project_path("/channels"), &p.member().token)
            .await
            .is_empty()
    );
    assert!(
        channel_list(&b, &p.updates_path("/channels"), &p.secret)
            .await
            .is_empty()
    );

    // Published on A, served by B, files included.
    let v1_export = Export::v1();
    let v1 = publish(&a, &p, &v1_export, &[]).await;
    let v1_ios = Served::new(
        &manifest_id_of(&b, &p, &str_field(&v1, "updateId"), "ios").await,
        "main",
    );
    let response = ask(&b, pid, &ios(), None, None).await;
    assert_eq!(served(&response), v1_ios);
    let manifest = manifest_in(&response);
    let files: Vec<&Value> = std::iter::once(&manifest["launchAsset"])
        .chain(manifest["assets"].as_array().expect("assets"))
        .collect();
    assert_eq!(files.len(), 5, "{manifest}");
    for file in files {
        let url = str_field(file, "url");
        let bytes = b.fetch(&url).await;
        bytes.assert_status(200);
        assert_eq!(
            manifest_hash(&bytes.body),
            str_field(file, "hash"),
            "{url} from the second instance"
        );
    }
    assert_eq!(served(&ask(&a, pid, &ios(), None, None).await), v1_ios);

    // Published on B at 30%: both instances give every device the same answer.
    let v2 = publish(&b, &p, &Export::v2(), &[("rolloutPercentage", "30")]).await;
    let v2_update = str_field(&v2, "updateId");
    let v2_ios = Served::new(&manifest_id_of(&a, &p, &v2_update, "ios").await, "main");
    let ids = client_ids(500);
    let on_b = answers(&b, pid, None, &ids).await;
    // A had cached v1: it follows B's publish within a second.
    let in_v2 = ids_served(&on_b, &v2_ios);
    let first_in_v2 = in_v2.iter().next().expect("a device in the rollout");
    within_a_second("a publish on B, seen by A", || {
        serves(&a, pid, None, Some(first_in_v2), Some(&v2_ios))
    })
    .await;
    let on_a = answers(&a, pid, None, &ids).await;
    assert_only(&on_a, &[&v1_ios, &v2_ios]);
    assert_eq!(
        on_a, on_b,
        "the instances disagree about who is in the rollout"
    );
    let in_rollout = ids_served(&on_a, &v2_ios).len();
    assert!(
        (50..=250).contains(&in_rollout),
        "{in_rollout} of 500 devices in a 30% rollout"
    );

    // A rollout change on A is seen by B within a second.
    a.patch(
        &p.updates_path(&format!("/updates/{v2_update}")),
        &p.secret,
        &json!({ "rolloutPercentage": 100 }),
    )
    .await
    .assert_status(200);
    let outside = on_b
        .keys()
        .find(|id| !in_v2.contains(*id))
        .expect("a device outside the rollout");
    within_a_second("a rollout change on A, seen by B", || {
        serves(&b, pid, None, Some(outside), Some(&v2_ios))
    })
    .await;
    let completed = answers(&b, pid, None, &ids[..100]).await;
    assert_only(&completed, &[&v2_ios]);
    assert_eq!(served(&ask(&b, pid, &ios(), None, None).await), v2_ios);

    // Channels: created on B, used by A; repointed on A, used by B; deleted on B, gone on A.
    assert_no_update_available(&ask(&a, pid, &ios(), Some("production"), None).await);
    b.post(
        &p.project_path("/channels"),
        &p.member().token,
        &json!({ "name": "production", "branch": "main" }),
    )
    .await
    .assert_status(201);
    within_a_second("a channel created on B, used by A", || {
        serves(&a, pid, Some("production"), None, Some(&v2_ios))
    })
    .await;
    assert!(serves(&b, pid, Some("production"), None, Some(&v2_ios)).await);
    a.patch(
        &p.updates_path("/channels/production"),
        &p.secret,
        &json!({ "branch": "nowhere" }),
    )
    .await
    .assert_status(200);
    within_a_second("a channel repointed on A, used by B", || {
        serves(&b, pid, Some("production"), None, None)
    })
    .await;
    assert_no_update_available(&ask(&b, pid, &ios(), Some("production"), None).await);
    a.patch(
        &p.updates_path("/channels/production"),
        &p.secret,
        &json!({ "branch": "main" }),
    )
    .await
    .assert_status(200);
    within_a_second("a channel repointed back on A, used by B", || {
        serves(&b, pid, Some("production"), None, Some(&v2_ios))
    })
    .await;
    assert_eq!(
        channel_list(&a, &p.project_path("/channels"), &p.owner.token).await,
        channel_list(&b, &p.project_path("/channels"), &p.owner.token).await
    );
    b.delete(&p.project_path("/channels/production"), &p.member().token)
        .await
        .assert_no_content();
    within_a_second("a channel deleted on B, gone on A", || {
        serves(&a, pid, Some("production"), None, None)
    })
    .await;
    assert_no_update_available(&ask(&a, pid, &ios(), Some("production"), None).await);
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs
// ---------------------------------------------------------------------------------------------

/// Asserts a 4xx JSON error (never a 5xx); returns the status.
#[track_caller]
fn assert_client_error(response: &Response, what: &str) -> u16 {
    assert!(
        (400..500).contains(&response.status),
        "{what}: expected a 4xx, got {} with body {}",
        response.status,
        response.text
    );
    response.assert_error(response.status);
    response.status
}

all_backends!(invalid_release_inputs_are_client_errors, |app| async move {
    let p = app.publisher_with_member("ci").await;
    let pid = p.project_id.as_str();
    let v1 = Export::v1();

    // Publish forms: every bad field is a 400 naming the field, and stores nothing.
    let long_branch = "b".repeat(129);
    let long_message = "m".repeat(1025);
    let bad_fields: Vec<(&str, &str)> = vec![
        ("rolloutPercentage", "0"),
        ("rolloutPercentage", "101"),
        ("rolloutPercentage", "abc"),
        ("rolloutPercentage", "-1"),
        ("rolloutPercentage", "50.5"),
        ("rolloutPercentage", "1e2"),
        ("rolloutPercentage", "99999999999999999999"),
        ("rolloutPercentage", "5\0"),
        ("rolloutPercentage", "100%"),
        ("branch", "a b"),
        ("branch", "-x"),
        ("branch", "a\0b"),
        ("branch", "é"),
        ("branch", "a\"b"),
        ("branch", long_branch.as_str()),
        ("message", long_message.as_str()),
        ("message", "nul\0byte"),
    ];
    for (field, value) in &bad_fields {
        let response = app
            .publish_raw(
                pid,
                Some(&p.secret),
                &PublishForm::new(&v1).field(field, *value),
            )
            .await;
        let message = response.assert_error(400);
        assert!(
            message
                .to_ascii_lowercase()
                .contains(&field.to_ascii_lowercase()),
            "{field}={value:?}: the error should name {field}: {message:?}"
        );
    }
    // Not UTF-8.
    for field in ["branch", "message", "rolloutPercentage"] {
        let form = PublishForm::new(&v1).field(field, vec![b'a', 0xff, 0xfe]);
        app.publish_raw(pid, Some(&p.secret), &form)
            .await
            .assert_error(400);
    }
    // Nothing was published.
    assert_no_update_available(&ask(&app, pid, &ios(), None, None).await);

    // The limits themselves are fine: 128-character branch, 1024-character message (of
    // two-byte characters), 1%.
    let max_branch = format!("release/{}", "r".repeat(120));
    let max_message = "é".repeat(1024);
    let published = publish(
        &app,
        &p,
        &v1,
        &[
            ("branch", max_branch.as_str()),
            ("message", max_message.as_str()),
            ("rolloutPercentage", "1"),
        ],
    )
    .await;
    let update = str_field(&published, "updateId");
    let detail = app
        .get(&p.updates_path(&format!("/updates/{update}")), &p.secret)
        .await;
    detail.assert_status(200);
    assert_eq!(detail.json["message"], max_message.as_str());
    assert_eq!(detail.json["branch"], max_branch.as_str());
    app.post(
        &p.updates_path("/channels"),
        &p.secret,
        &json!({ "name": "long", "branch": max_branch }),
    )
    .await
    .assert_status(201);

    // Channel headers that are not channel names: 400, not main's update, not a 5xx.
    let channel_65 = "c".repeat(65);
    for bad in [
        "a b",
        "-x",
        "_x",
        "..",
        "feature/x",
        "main\"",
        "a,b",
        "main;q=1",
        channel_65.as_str(),
    ] {
        let response = ask(&app, pid, &ios(), Some(bad), None).await;
        let status = response.status;
        assert_eq!(
            status,
            400,
            "expo-channel-name {bad:?}: {}",
            response.text()
        );
        response.assert_error(400);
    }
    // (Non-ASCII bytes in the header: see `a_non_ascii_channel_header_is_refused`.)
    // The query-string fallback, with a NUL byte and other junk.
    for bad in ["a\0b", "a b", "\0", "é"] {
        let check = ios().query("channel", bad);
        let response = ask(&app, pid, &check, None, None).await;
        assert_eq!(
            response.status,
            400,
            "channel query {bad:?}: {}",
            response.text()
        );
        response.assert_error(400);
    }
    // 64 characters is a valid channel with no branch behind it.
    let channel_64 = "c".repeat(64);
    assert_no_update_available(&ask(&app, pid, &ios(), Some(&channel_64), None).await);

    // Odd client ids are just ids: the 1% update or nothing, never an error.
    let long_id = "x".repeat(8000);
    for client_id in [long_id.as_str(), "  padded  ", "not-a-uuid", "0", "\t"] {
        let response = ask(&app, pid, &ios(), Some("long"), Some(client_id)).await;
        assert_eq!(
            response.status,
            200,
            "client id {client_id:?}: {}",
            response.text()
        );
    }
    for raw in [&b"\xc3\xa9t\xc3\xa9"[..], b"\xff\xfe"] {
        let value = HeaderValue::from_bytes(raw).unwrap();
        let check = ios()
            .header("expo-channel-name", HeaderValue::from_static("long"))
            .header("eas-client-id", value);
        let response = app.check(pid, &check).await;
        assert_eq!(
            response.status,
            200,
            "client id bytes {raw:?}: {}",
            response.text()
        );
    }

    // Rollout changes.
    let rollout_path = p.updates_path(&format!("/updates/{update}"));
    for body in [
        json!({ "rolloutPercentage": "50" }),
        json!({ "rolloutPercentage": 101 }),
        json!({ "rolloutPercentage": -1 }),
        json!({ "rolloutPercentage": 1.5 }),
        json!({ "rolloutPercentage": 1e20 }),
        json!({ "rolloutPercentage": null }),
        json!({ "rolloutPercentage": [50] }),
        json!({}),
        json!([]),
        json!("50"),
    ] {
        let response = app.patch(&rollout_path, &p.secret, &body).await;
        assert_eq!(response.status, 400, "PATCH {body}: {}", response.text);
        response.assert_error(400);
    }
    let not_json = app
        .send(
            app.authed(e2e::reqwest::Method::PATCH, &rollout_path, &p.secret)
                .header("content-type", "application/json")
                .body("{\"rolloutPercentage\": 5"),
        )
        .await;
    assert_client_error(&not_json, "a truncated JSON body");
    let long_update_id = "f".repeat(300);
    for bad_id in ["not-a-uuid", "%00", "a%00b", "%20", long_update_id.as_str()] {
        let response = app
            .patch(
                &p.updates_path(&format!("/updates/{bad_id}")),
                &p.secret,
                &json!({ "rolloutPercentage": 5 }),
            )
            .await;
        assert_client_error(&response, &format!("update id {bad_id:?}"));
    }
    // The refused changes left it at 1%.
    let detail = app.get(&rollout_path, &p.secret).await;
    assert_eq!(detail.json["rolloutPercentage"], 1, "{}", detail.text);

    // Channel bodies and paths with NUL bytes and other junk.
    let channels = p.updates_path("/channels");
    for body in [
        json!({ "name": "a\u{0}b", "branch": "main" }),
        json!({ "name": "nul", "branch": "ma\u{0}in" }),
        json!({ "name": "nul", "branch": "main", "rolloutBranch": "b\u{0}", "rolloutPercentage": 5 }),
        json!({ "name": "x".repeat(10_000), "branch": "main" }),
        json!({ "name": "nul", "branch": "main", "rolloutBranch": "b", "rolloutPercentage": "5" }),
        json!({ "name": null, "branch": "main" }),
    ] {
        let response = app.post(&channels, &p.secret, &body).await;
        assert_eq!(response.status, 400, "POST {body}: {}", response.text);
        response.assert_error(400);
    }
    for bad in ["a%00b", "%00", "a%20b", "%C3%A9", "a%2Fb"] {
        let path = format!("{channels}/{bad}");
        let response = app
            .patch(&path, &p.secret, &json!({ "branch": "main" }))
            .await;
        assert_client_error(&response, &format!("PATCH channel {bad:?}"));
        let response = app.delete(&path, &p.secret).await;
        assert_client_error(&response, &format!("DELETE channel {bad:?}"));
    }
    app.patch(
        &format!("{channels}/long"),
        &p.secret,
        &json!({ "branch": "ma\u{0}in" }),
    )
    .await
    .assert_error(400);
    // Only the one valid channel exists.
    let listed = channel_list(&app, &channels, &p.secret).await;
    assert_eq!(
        listed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["long"]
    );
});

all_backends!(a_non_ascii_channel_header_is_refused, |app| async move {
    let p = app.publisher_with_member("ci").await;
    let pid = p.project_id.as_str();
    let main = publish(&app, &p, &Export::v1(), &[]).await;
    let main_ios = manifest_id_of(&app, &p, &str_field(&main, "updateId"), "ios").await;
    assert_eq!(
        served(&ask(&app, pid, &ios(), None, None).await),
        Served::new(&main_ios, "main")
    );
    // Bytes that are valid in a header (obs-text) but not in a channel name: a device
    // configured with such a channel must get a 400 like for any other invalid name, not be
    // treated as if it had sent no channel (and be served main).
    for raw in [&b"\xc3\xa9"[..], b"main\xff", b"\x80"] {
        let value = HeaderValue::from_bytes(raw).expect("obs-text is a valid header value");
        let response = app
            .check(pid, &ios().header("expo-channel-name", value))
            .await;
        assert_eq!(
            response.status,
            400,
            "expo-channel-name bytes {raw:?}: got {} {}",
            response.status,
            response.text()
        );
        response.assert_error(400);
    }
});
