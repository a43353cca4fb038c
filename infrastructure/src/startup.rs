//! Wiring the adapters into the application services, and serving them.

use std::sync::Arc;
use std::time::Duration;

use adapter_crypto::{
    AesGcmKeySealer, Argon2Passwords, JwtTokens, RsaManifestSigner, RsaSigningKeys, Sha256Secrets,
};
use adapter_persistence::SqlStore;
use adapter_storage::ObjectBlobStore;
use application::{
    AccountService, ApiKeyService, AuditLog, AuditService, GarbageCollector, InsightRecorder,
    InsightService, Keyring, MemberService, PatchService, ProjectService, PublishService,
    RegistrationPolicy, ReleaseService, Retention, ServeService, SigningKeyService,
};
use application::{ServiceSet, Services};
use domain::blob::BlobStore;
use domain::ports::{KeySealer, ManifestSigner};
use domain::signing_key::SigningKeyId;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::config::{Config, Secret, StorageConfig};
use crate::idle_timeout::IdleTimeoutAcceptor;
use crate::jwt_secret::{self, Origin};

/// How long in-flight requests get to finish after SIGTERM or SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Staging files younger than this may belong to a publish still running
/// (on this instance or, with S3, another): the periodic sweep leaves them.
const STALE_STAGING: Duration = Duration::from_secs(6 * 3600);

/// How long the start-up storage probe may take.
const STORAGE_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create DATA_DIR {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    JwtSecret(#[from] jwt_secret::JwtSecretError),
    #[error("{0}")]
    Crypto(String),
    #[error("database ({url}): {source}")]
    Database {
        url: String,
        source: adapter_persistence::ConnectError,
    },
    #[error("storage ({what}): {detail}")]
    Storage { what: String, detail: String },
    #[error("{0}")]
    SigningKey(#[from] adapter_crypto::SigningKeyError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// A server that is connected, migrated and bound, ready to run.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    services: Services,
    store: SqlStore,
    gc_interval: Option<Duration>,
    gc_grace: Duration,
    http: adapter_http::HttpSettings,
    insights_write_interval: Duration,
    idle_timeout: Duration,
    /// `PATCH_WORKERS`: patches this instance computes at once.
    patch_workers: usize,
}

impl Application {
    /// Prepares everything that can fail before the first request: the data
    /// directory, the JWT secret, the database (migrated) and the socket.
    /// `PORT=0` binds a free port, reported by [`port`](Self::port).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        // The database first: a Go server's data directory is refused
        // before anything (a JWT secret file) is written into it.
        let store = SqlStore::connect(&config.database_url)
            .await
            .map_err(|source| StartupError::Database {
                url: redact_password(&config.database_url),
                source,
            })?;
        let jwt_secret = resolve_jwt_secret(&config)?;
        tracing::info!(backend = store.backend_name(), "database ready");
        let blobs = open_storage(&config.storage, config.gc_grace).await?;
        let signer = match &config.signing_key {
            None => None,
            Some(pem) => {
                let signer = RsaManifestSigner::from_pem(pem.expose(), &config.signing_key_id)?;
                let key_id = SigningKeyId::parse(&config.signing_key_id)
                    .map_err(|error| StartupError::Crypto(format!("PRIVATE_KEY_ID: {error}")))?;
                tracing::info!(keyid = %config.signing_key_id, "code signing enabled");
                Some((key_id, Arc::new(signer) as Arc<dyn ManifestSigner>))
            }
        };
        let address = format!("{}:{}", config.host, config.port);
        let acceptor = TcpListener::bind(address.clone())
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|socket| socket.port()))
            .unwrap_or(config.port);
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://localhost:{port}"));
        let services = wire(
            &config,
            &jwt_secret,
            &store,
            blobs,
            signer,
            public_url.clone(),
        )?;
        tracing::info!(%address, port, %public_url, "listening");
        let metrics_sources = metrics_sources(&services);
        Ok(Self {
            acceptor,
            port,
            services,
            store,
            gc_interval: config.gc_interval,
            patch_workers: config.patch_workers,
            gc_grace: config.gc_grace,
            insights_write_interval: config.insights_write_interval,
            idle_timeout: config.idle_timeout,
            http: adapter_http::HttpSettings {
                rate_limits: config.rate_limits,
                metrics_token: config.metrics_token.as_ref().map(|t| t.expose().to_owned()),
                metrics_sources,
                dashboard: adapter_http::DashboardSettings {
                    public_url: config.public_url.clone(),
                    open_registration: config.allow_registration,
                },
            },
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let maintenance = self.gc_interval.map(|every| {
            tokio::spawn(maintain_storage(
                self.services.clone(),
                every,
                self.gc_grace,
            ))
        });
        // Other instances' publishes and rollouts reach this one's cache.
        let changes = tokio::spawn(Arc::new(self.store.clone()).follow_changes());
        let insights = Arc::clone(&self.services.insights);
        let insight_writer = tokio::spawn(write_insights(
            Arc::clone(&insights),
            self.insights_write_interval,
        ));
        let patch_workers: Vec<_> = match self.services.patches.policy().enabled() {
            true => (0..self.patch_workers)
                .map(|_| tokio::spawn(compute_patches(Arc::clone(&self.services.patches))))
                .collect(),
            false => Vec::new(),
        };
        let trimmer = tokio::spawn(crate::allocator::return_free_memory_periodically());
        let routes = adapter_http::routes(self.services, self.http);
        let acceptor = IdleTimeoutAcceptor::new(self.acceptor, self.idle_timeout);
        let served = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(routes, shutdown_signal(), Some(SHUTDOWN_GRACE))
            .await;
        if let Some(task) = maintenance {
            task.abort();
        }
        changes.abort();
        insight_writer.abort();
        trimmer.abort();
        // A patch being computed is taken up again once its claim lapses.
        for worker in patch_workers {
            worker.abort();
        }
        // What was counted since the last write is kept, not lost.
        if let Err(error) = insights.flush().await {
            tracing::warn!(%error, "writing update insights at shut-down failed");
        }
        self.store.close().await;
        tracing::info!("stopped");
        served
    }
}

/// Every `every`: deletes what interrupted publishes left in staging, applies
/// retention to every branch, then deletes blobs no update references (after
/// deletes, retention, deleted projects).
/// Each instance runs it; the reference lock keeps them from colliding.
async fn maintain_storage(services: Services, every: Duration, staging_grace: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // Never younger than STALE_STAGING: a publish on this or another
        // instance may still be writing there.
        let stale = staging_grace.max(STALE_STAGING);
        if let Err(error) = services.blobs.sweep_staging(stale.as_secs()).await {
            tracing::warn!(%error, "sweeping staging failed");
        }
        if let Err(error) = services.retention.apply_everywhere().await {
            tracing::warn!(%error, "applying retention failed");
        }
        match services.gc.collect_all().await {
            Ok(report) if report.deleted_blobs > 0 => tracing::info!(
                deleted = report.deleted_blobs,
                freed_bytes = report.freed_bytes,
                "storage collection done"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "storage collection failed"),
        }
    }
}

fn resolve_jwt_secret(config: &Config) -> Result<Secret, StartupError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let (secret, origin, path) = jwt_secret::load_or_generate(&config.data_dir)?;
    match origin {
        Origin::Generated => tracing::warn!(
            path = %path.display(),
            "JWT_SECRET is not set: generated a random secret and stored it (mode 0600); \
             set JWT_SECRET to share one secret between instances"
        ),
        Origin::Stored => tracing::info!(
            path = %path.display(),
            "JWT_SECRET is not set: using the secret generated earlier"
        ),
    }
    Ok(secret)
}

/// Opens the blob store and proves it works (write, read, delete a probe), so
/// a wrong bucket, endpoint or credential stops start-up, not the first
/// publish.
/// Opens the storage, checks it answers, and deletes what interrupted
/// publishes (a crash, a kill) left in staging longer than `staging_grace`
/// (`GC_GRACE_SECONDS`: no publish takes that long).
async fn open_storage(
    config: &StorageConfig,
    staging_grace: Duration,
) -> Result<Arc<dyn BlobStore>, StartupError> {
    let what = match config {
        StorageConfig::Local { root } => format!("local {}", root.display()),
        StorageConfig::S3 {
            bucket, endpoint, ..
        } => {
            format!(
                "s3 bucket {bucket} at {}",
                endpoint.as_deref().unwrap_or("AWS")
            )
        }
    };
    let failed = |detail: String| StartupError::Storage {
        what: what.clone(),
        detail,
    };
    let blobs = ObjectBlobStore::new(config).map_err(|error| failed(error.to_string()))?;
    tokio::time::timeout(STORAGE_CHECK_TIMEOUT, blobs.verify())
        .await
        .map_err(|_| failed(format!("no answer within {STORAGE_CHECK_TIMEOUT:?}")))?
        .map_err(|error| failed(error.to_string()))?;
    tracing::info!(storage = blobs.description(), "storage ready");
    // Local staging belongs to this process alone (instances share storage
    // only through S3) and no publish has started yet: whatever is there was
    // left by a crash or a kill, however young. Shared S3 staging may hold
    // another instance's publish in flight.
    let stale = match config {
        StorageConfig::Local { .. } => staging_grace,
        StorageConfig::S3 { .. } => staging_grace.max(STALE_STAGING),
    };
    match blobs.sweep_staging(stale.as_secs()).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(
            count,
            "deleted files left in staging by interrupted publishes"
        ),
        Err(error) => tracing::warn!(%error, "could not sweep staging"),
    }
    Ok(Arc::new(blobs))
}

fn wire(
    config: &Config,
    jwt_secret: &Secret,
    store: &SqlStore,
    blobs: Arc<dyn BlobStore>,
    signer: Option<(SigningKeyId, Arc<dyn ManifestSigner>)>,
    public_url: String,
) -> Result<Services, StartupError> {
    let store = Arc::new(store.clone());
    let passwords = Argon2Passwords::new().map_err(|error| StartupError::Crypto(error.0))?;
    let tokens = JwtTokens::new(jwt_secret.expose().as_bytes())
        .map_err(|error| StartupError::Crypto(error.0))?;
    let policy = if config.allow_registration {
        RegistrationPolicy::Open
    } else {
        RegistrationPolicy::FirstUserOnly
    };
    let audit = AuditLog::new(store.clone());
    let sealer = match &config.signing_key_encryption_key {
        None => None,
        Some(master) => Some(Arc::new(
            AesGcmKeySealer::from_master_key(master.expose())
                .map_err(|error| StartupError::Crypto(error.to_string()))?,
        ) as Arc<dyn KeySealer>),
    };
    let insight_recorder = Arc::new(InsightRecorder::default());
    let keyring = Keyring::new(store.clone(), sealer, Arc::new(RsaSigningKeys));
    let patches = Arc::new(PatchService::new(
        store.clone(),
        store.clone(),
        store.clone(),
        blobs.clone(),
        audit.clone(),
        config.patch_policy,
    ));
    let diffing = config.patch_policy.enabled();
    let retention = Retention::new(
        config.retention_keep_per_branch,
        store.clone(),
        audit.clone(),
    );
    Ok(Services::new(ServiceSet {
        accounts: Arc::new(AccountService::new(
            store.clone(),
            Arc::new(passwords),
            Arc::new(tokens),
            policy,
        )),
        projects: Arc::new(ProjectService::new(
            store.clone(),
            store.clone(),
            audit.clone(),
        )),
        members: Arc::new(MemberService::new(
            store.clone(),
            store.clone(),
            audit.clone(),
        )),
        api_keys: Arc::new(ApiKeyService::new(
            store.clone(),
            store.clone(),
            Arc::new(Sha256Secrets),
            audit.clone(),
        )),
        publish: Arc::new({
            let publish = PublishService::new(
                store.clone(),
                blobs.clone(),
                store.clone(),
                audit.clone(),
                config.max_upload_bytes,
                retention.clone(),
            );
            let publish = publish.with_best_compression(config.best_compression);
            match diffing {
                true => publish.with_patches(Arc::clone(&patches)),
                false => publish,
            }
        }),
        serve: Arc::new({
            let serve = ServeService::new(
                store.clone(),
                store.clone(),
                store.clone(),
                blobs.clone(),
                signer,
                config.asset_url_base.clone().unwrap_or(public_url),
            )
            .with_keyring(keyring.clone())
            .with_insights(Arc::clone(&insight_recorder))
            .with_cache(store.clone(), config.manifest_cache_bytes)
            .with_asset_redirects(config.presigned_redirects)
            .with_hot_files(config.asset_cache_bytes);
            match diffing {
                true => serve.with_patches(store.clone()),
                false => serve,
            }
        }),
        releases: Arc::new(ReleaseService::new(
            store.clone(),
            store.clone(),
            store.clone(),
            audit.clone(),
            retention.clone(),
        )),
        retention: Arc::new(retention),
        audit: Arc::new(AuditService::new(store.clone(), store.clone())),
        gc: Arc::new(GarbageCollector::new(
            store.clone(),
            store.clone(),
            blobs.clone(),
            audit.clone(),
            config.gc_grace,
        )),
        patches,
        signing_keys: Arc::new(SigningKeyService::new(
            keyring,
            store.clone(),
            audit.clone(),
        )),
        insights: Arc::new(InsightService::new(
            insight_recorder,
            store.clone(),
            store.clone(),
            store.clone(),
            audit.clone(),
            config.auto_halt,
        )),
        health: store,
        blobs,
    }))
}

/// How often an idle patch worker looks for work another instance's
/// publish wanted (this instance's publishes wake it at once).
const PATCH_POLL: Duration = Duration::from_secs(10);

/// Computes wanted patches, one at a time, until the process ends.
async fn compute_patches(patches: Arc<PatchService>) {
    loop {
        match patches.work_one().await {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    () = patches.work_wanted() => {}
                    () = tokio::time::sleep(PATCH_POLL) => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "computing a patch failed; it will be tried again");
                tokio::time::sleep(PATCH_POLL).await;
            }
        }
    }
}

/// Writes update insights every `every` (`INSIGHTS_WRITE_SECONDS`); a
/// failed write keeps its counts for the next one.
async fn write_insights(insights: Arc<InsightService>, every: Duration) {
    let mut every = tokio::time::interval(every);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(error) = insights.flush().await {
            tracing::warn!(%error, "writing update insights failed; retrying later");
        }
    }
}

/// Counters kept by the application and the adapters, exported on
/// `/metrics`.
fn metrics_sources(services: &Services) -> Vec<adapter_http::CounterSource> {
    let hits = Arc::clone(&services.serve);
    let misses = Arc::clone(&services.serve);
    let computed = Arc::clone(&services.patches);
    let failed = Arc::clone(&services.patches);
    vec![
        adapter_http::CounterSource {
            name: "patches_computed",
            help: "Bundle patches this instance computed (kept, or not small enough to serve)",
            read: Arc::new(move || {
                let counts = computed.counts();
                counts.ready + counts.not_worth_it
            }),
        },
        adapter_http::CounterSource {
            name: "patches_failed",
            help: "Bundle patches this instance gave up on",
            read: Arc::new(move || failed.counts().failed),
        },
        adapter_http::CounterSource {
            name: "serve_cache_hits",
            help: "Update-check and asset lookups answered from memory",
            read: Arc::new(move || hits.cache_counts().0),
        },
        adapter_http::CounterSource {
            name: "serve_cache_misses",
            help: "Update-check and asset lookups that read the database",
            read: Arc::new(move || misses.cache_counts().1),
        },
        adapter_http::CounterSource {
            name: "database_errors",
            help: "Database operations that failed",
            read: Arc::new(adapter_persistence::backend_error_count),
        },
        adapter_http::CounterSource {
            name: "storage_errors",
            help: "Blob storage operations that failed",
            read: Arc::new(adapter_storage::backend_error_count),
        },
    ]
}

/// The database URL with any password replaced, fit for logs and errors.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://ota:hunter2@db:5432/ota"),
            "postgres://ota:***@db:5432/ota"
        );
        assert_eq!(
            redact_password("sqlite://./data/ota.db"),
            "sqlite://./data/ota.db"
        );
    }
}
