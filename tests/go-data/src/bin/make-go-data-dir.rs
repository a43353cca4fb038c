//! `make-go-data-dir <dir> [--filler N]`: writes a Go expo-updates-server
//! data dir with every quirk of its data (see the library), and prints what
//! was written as JSON: accounts with their passwords, keys with their
//! secrets, and each update directory's manifest id.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use serde_json::json;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let root = args
        .next()
        .expect("usage: make-go-data-dir <dir> [--filler N]");
    let mut options = go_data_fixture::Options::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--filler" => options.filler_dirs = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    let written = go_data_fixture::write(std::path::Path::new(&root), &options).await;
    let accounts: Vec<_> = written
        .accounts
        .iter()
        .map(|a| json!({"id": a.id, "username": a.username, "email": a.email, "password": a.password}))
        .collect();
    let keys: Vec<_> = written
        .keys
        .iter()
        .map(|k| json!({"id": k.id, "projectId": k.project_id, "secret": k.secret}))
        .collect();
    let dirs: Vec<_> = written
        .dirs
        .values()
        .map(|d| json!({"path": d.path, "goId": d.go_id, "manifestId": d.manifest_id, "bundles": d.bundles}))
        .collect();
    println!(
        "{}",
        json!({"root": root, "accounts": accounts, "keys": keys, "dirs": dirs})
    );
}
