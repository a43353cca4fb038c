//! The blob store on local disk and on a real S3-protocol server.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod s3_server;

use adapter_storage::{ObjectBlobStore, StorageConfig};
use bytes::Bytes;
use domain::blob::{BlobError, BlobStore, ByteStream};
use futures_util::{StreamExt, stream};
use sha2::{Digest, Sha256};

fn body(chunks: Vec<&'static [u8]>) -> ByteStream {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
}

async fn read_all(store: &ObjectBlobStore, key: &str) -> Vec<u8> {
    let reader = store.open(key).await.unwrap();
    let mut bytes = Vec::new();
    let mut body = reader.body;
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes.len() as u64, reader.size);
    bytes
}

/// Every behaviour of the port, run against one store.
async fn exercise(store: ObjectBlobStore) {
    store.verify().await.unwrap();

    let staged = store
        .stage(body(vec![b"hello ", b"world"]), 1024)
        .await
        .unwrap();
    assert_eq!(staged.size, 11);
    assert_eq!(
        staged.sha256,
        <[u8; 32]>::from(Sha256::digest(b"hello world"))
    );
    assert_eq!(hex(&staged.md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    let key = format!("projects/p1/assets/{}", hex(&staged.sha256));
    store.promote(&staged, &key).await.unwrap();
    // Promoting the same content again keeps the existing blob.
    store.promote(&staged, &key).await.unwrap();
    store.discard(&staged).await;
    assert_eq!(read_all(&store, &key).await, b"hello world");
    assert!(matches!(
        store.open(&staged.staging_key).await,
        Err(BlobError::NotFound(_))
    ));

    // Too large: refused, and nothing readable is left behind.
    let too_large = store
        .stage(body(vec![b"0123456789", b"0123456789"]), 15)
        .await;
    assert!(matches!(too_large, Err(BlobError::TooLarge(15))));

    // A broken client stream is a body error.
    let broken: ByteStream = stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("connection reset")),
    ])
    .boxed();
    assert!(matches!(
        store.stage(broken, 1024).await,
        Err(BlobError::Body(_))
    ));

    // Keys that try to leave their place are refused.
    for bad in ["", "../x", "a/../b", "a//b", "/abs"] {
        assert!(store.open(bad).await.is_err(), "{bad:?}");
    }

    // Fresh staging files survive a sweep; with a zero age they go.
    let pending = store.stage(body(vec![b"pending"]), 1024).await.unwrap();
    assert_eq!(store.sweep_staging(3600).await.unwrap(), 0);
    assert!(store.open(&pending.staging_key).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(store.sweep_staging(0).await.unwrap() >= 1);
    assert!(store.open(&pending.staging_key).await.is_err());
    assert!(
        store.open(&key).await.is_ok(),
        "promoted blobs are never swept"
    );

    // Large bodies stream through in many parts.
    let big: Vec<Bytes> = (0..40)
        .map(|_| Bytes::from(vec![7u8; 256 * 1024]))
        .collect();
    let expected = Sha256::digest(vec![7u8; 40 * 256 * 1024]);
    let staged = store
        .stage(stream::iter(big.into_iter().map(Ok)).boxed(), 64 << 20)
        .await
        .unwrap();
    assert_eq!(staged.size, 10 << 20);
    assert_eq!(staged.sha256, <[u8; 32]>::from(expected));
    store.discard(&staged).await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectBlobStore::new(&StorageConfig::Local {
        root: dir.path().join("updates"),
    })
    .unwrap();
    exercise(store).await;
    // No staging files are left on disk.
    let staging = dir.path().join("updates/staging");
    let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_protocol_server() {
    let server = s3_server::S3Server::start().await;
    let store = ObjectBlobStore::new(&s3_server::config(&server, Some("tenant-prefix"))).unwrap();
    exercise(store).await;
}

/// The longest key the server writes, a bundle patch beside its bundle
/// (`domain::patch::PatchKey::blob_key`), fits a file-backed S3 server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_keys_fit_a_file_backed_s3_server() {
    let server = s3_server::S3Server::start().await;
    let store = ObjectBlobStore::new(&s3_server::config(&server, None)).unwrap();
    let key = format!(
        "projects/01a23ed7-1cee-7178-bfa3-086c2d3f16ec/assets/{}.{}.bsdiff",
        "f".repeat(64),
        "d".repeat(32)
    );
    let staged = store.stage(body(vec![b"BSDIFF40"]), 8).await.unwrap();
    store.promote(&staged, &key).await.unwrap();
    store.discard(&staged).await;
    assert_eq!(read_all(&store, &key).await, b"BSDIFF40");
    assert_eq!(store.size(&key).await.unwrap(), Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misconfigured_s3_fails_verification() {
    let server = s3_server::S3Server::start().await;
    let StorageConfig::S3 {
        endpoint,
        bucket,
        region,
        access_key,
        ..
    } = s3_server::config(&server, None)
    else {
        unreachable!()
    };
    let wrong_secret = StorageConfig::S3 {
        endpoint: endpoint.clone(),
        bucket: bucket.clone(),
        region: region.clone(),
        access_key: access_key.clone(),
        secret_key: "not-the-secret".to_owned(),
        prefix: None,
        virtual_hosted: false,
    };
    let nobody_listening = StorageConfig::S3 {
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        bucket,
        region,
        access_key,
        secret_key: "irrelevant".to_owned(),
        prefix: None,
        virtual_hosted: false,
    };
    for config in [wrong_secret, nobody_listening] {
        let store = ObjectBlobStore::new(&config).unwrap();
        assert!(store.verify().await.is_err(), "{config:?}");
    }
}
