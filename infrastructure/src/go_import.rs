//! `expo-updates-server import-go`: carries a Go expo-updates-server's data
//! over into this server's stores, as configured for the server itself
//! (`DATA_DIR`, `DATABASE_URL`, `STORAGE_TYPE`, `S3_*`).
//!
//! The source is never written: its database is opened read-only and its
//! update tree (`<dir>/updates`, or a bucket named by `--s3-bucket`) only
//! read. The target may be in use by a running server: the import goes
//! through the same stores and announces what it adds.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use adapter_persistence::{GoDatabaseFile, SqlStore};
use adapter_storage::{LocalGoTree, ObjectBlobStore, S3GoTree};
use application::AuditLog;
use application::go_import::{
    GoImport, ImportProgress, ImportReport, ImportSource, ImportTarget, Mode,
};
use domain::blob::BlobStore;
use domain::go_server::ports::GoUpdateTree;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

/// How long the target storage may take to answer its probe.
const STORAGE_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// The command's options.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportGoArgs {
    /// The Go server's DATA_DIR: ota.db (with -wal and -shm) and, with
    /// local storage, updates/.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Read and check everything, write nothing, and print the same report.
    #[arg(long)]
    pub dry_run: bool,
    /// The Go server's bucket, when it stored updates in S3 (its tree starts at the bucket root).
    #[arg(long, env = "GO_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// The Go server's S3_ENDPOINT (R2, MinIO, ...); AWS when unset.
    #[arg(long, env = "GO_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "GO_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = "GO_S3_ACCESS_KEY", hide_env_values = true)]
    pub s3_access_key: Option<String>,
    /// Prefer the GO_S3_SECRET_KEY variable, which does not show in the process list.
    #[arg(long, env = "GO_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
}

/// Shows how far the file copy got: a bar on a terminal, a line per
/// update directory otherwise.
struct TerminalProgress {
    bar: Option<ProgressBar>,
}

impl TerminalProgress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Self { bar }
    }
}

impl ImportProgress for TerminalProgress {
    fn begin_files(&self, files: u64, bytes: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(bytes);
                bar.set_message(format!("{files} files"));
            }
            None => eprintln!("import-go: reading {files} update files ({bytes} bytes)"),
        }
    }

    fn file_done(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            // A file both platforms list is read twice: never past the end.
            let done = bar.position() + bytes;
            if bar.length().is_some_and(|length| done > length) {
                bar.set_length(done);
            }
            bar.inc(bytes);
        }
    }

    fn step(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("import-go: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs the import and returns its report, or the one line saying why it
/// could not run.
pub async fn run(args: &ImportGoArgs, config: &Config) -> Result<ImportReport, String> {
    let database_path = args.data_dir.join("ota.db");
    if !database_path.is_file() {
        return Err(format!(
            "{} has no ota.db: --data-dir must be the Go server's DATA_DIR",
            args.data_dir.display()
        ));
    }
    if same_dir(&args.data_dir, &config.data_dir) {
        return Err(format!(
            "DATA_DIR ({}) is the Go server's data directory: import into a new one (DATA_DIR=/path/to/new)",
            config.data_dir.display()
        ));
    }
    let tree = go_tree(args)?;
    let mode = match args.dry_run {
        true => Mode::DryRun,
        false => Mode::Import,
    };
    let store = match mode {
        Mode::DryRun => SqlStore::connect_to_read(&config.database_url).await,
        Mode::Import => {
            std::fs::create_dir_all(&config.data_dir).map_err(|error| {
                format!(
                    "cannot create DATA_DIR {}: {error}",
                    config.data_dir.display()
                )
            })?;
            SqlStore::connect(&config.database_url).await
        }
    }
    .map_err(|error| format!("target database: {error}"))?;
    let store = Arc::new(store);
    let blobs = match mode {
        Mode::DryRun => None,
        Mode::Import => Some(target_storage(config).await?),
    };
    let import = GoImport::new(
        ImportSource {
            database: Arc::new(GoDatabaseFile::new(&database_path)),
            database_description: database_path.display().to_string(),
            tree,
        },
        ImportTarget {
            store: store.clone(),
            updates: store.clone(),
            blobs,
            audit: (mode == Mode::Import).then(|| AuditLog::new(store.clone())),
            max_file_bytes: config.max_upload_bytes,
        },
        mode,
        Arc::new(TerminalProgress::new()),
    );
    let report = import.run().await.map_err(|error| error.to_string());
    drop(import);
    if mode == Mode::Import {
        // Running servers learn of the change before this process exits.
        store.announce_now().await;
    }
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    report
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The Go server's update tree: its bucket when one is named, else
/// `<data dir>/updates`.
fn go_tree(args: &ImportGoArgs) -> Result<Arc<dyn GoUpdateTree>, String> {
    let Some(bucket) = &args.s3_bucket else {
        return Ok(Arc::new(LocalGoTree::new(args.data_dir.join("updates"))));
    };
    let (Some(access_key), Some(secret_key)) = (&args.s3_access_key, &args.s3_secret_key) else {
        return Err(
            "--s3-bucket needs --s3-access-key and --s3-secret-key (or GO_S3_ACCESS_KEY and GO_S3_SECRET_KEY)"
                .to_owned(),
        );
    };
    let tree = S3GoTree::new(
        args.s3_endpoint.as_deref(),
        bucket,
        &args.s3_region,
        access_key,
        secret_key,
    )
    .map_err(|error| format!("source bucket: {error}"))?;
    Ok(Arc::new(tree))
}

/// The configured storage, proven reachable before anything is copied.
async fn target_storage(config: &Config) -> Result<Arc<dyn BlobStore>, String> {
    let blobs = ObjectBlobStore::new(&config.storage)
        .map_err(|error| format!("target storage: {error}"))?;
    tokio::time::timeout(STORAGE_CHECK_TIMEOUT, blobs.verify())
        .await
        .map_err(|_| format!("target storage: no answer within {STORAGE_CHECK_TIMEOUT:?}"))?
        .map_err(|error| format!("target storage ({}): {error}", blobs.description()))?;
    Ok(Arc::new(blobs))
}
