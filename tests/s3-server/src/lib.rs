//! A real S3-protocol server (s3s-fs) on a random loopback port, backed by a temporary
//! directory, with signature-checked credentials. The e2e harness starts one per test server
//! on S3 storage; the storage adapter's tests use it too.
//!
//! s3s-fs keeps each object as a plain file at `<root>/<bucket>/<key>` (its own bookkeeping
//! files live directly in `<root>`, outside the bucket directory), so tests can see what the
//! server stored by reading that directory, independently of the server's storage code.

use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

pub const BUCKET: &str = "updates";
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "e2e-access-key";
pub const SECRET_KEY: &str = "e2e-secret-key-0123456789";

pub struct S3Server {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("create the S3 root directory");
        std::fs::create_dir(root.path().join(BUCKET)).expect("create the bucket directory");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("start s3s-fs");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the S3 server");
        let endpoint = format!(
            "http://{}",
            listener.local_addr().expect("the S3 server's address")
        );
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        S3Server {
            endpoint,
            root,
            task,
        }
    }

    /// The server environment that points at this S3 server (path-style, no prefix).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("STORAGE_TYPE", "s3"),
            ("S3_ENDPOINT", self.endpoint.as_str()),
            ("S3_BUCKET", BUCKET),
            ("S3_REGION", REGION),
            ("S3_ACCESS_KEY", ACCESS_KEY),
            ("S3_SECRET_KEY", SECRET_KEY),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// s3s-fs's root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The directory holding the bucket's objects: `<root>/<bucket>`.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
