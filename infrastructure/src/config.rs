//! Configuration from environment variables and an optional `.env` file (the
//! real environment wins). Every variable and its default is listed in the
//! README. A bad value is a [`ConfigError`] naming the variable.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

pub use adapter_storage::StorageConfig;

/// The server's settings, resolved and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Base URL clients reach the server at, without a trailing slash;
    /// `None`: `http://localhost:<the port actually bound>`.
    pub public_url: Option<String>,
    /// `ASSET_URL_BASE`: where manifests point devices for files, e.g. a CDN
    /// in front of this server; the public URL when unset.
    pub asset_url_base: Option<String>,
    /// `S3_PRESIGNED_REDIRECTS`: asset requests are answered with a redirect
    /// to a presigned S3 URL, so file bytes skip the server.
    pub presigned_redirects: bool,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// `None`: generate one and keep it in `DATA_DIR` (see `jwt_secret`).
    pub jwt_secret: Option<Secret>,
    pub allow_registration: bool,
    pub log_format: LogFormat,
    pub storage: StorageConfig,
    /// The largest publish upload accepted (sum of its files).
    pub max_upload_bytes: u64,
    /// PEM text of the code-signing key, when signing is configured.
    pub signing_key: Option<Secret>,
    pub signing_key_id: String,
    /// `AUTO_HALT_FAILURE_RATE` (0 < rate ≤ 1; unset: off) and
    /// `AUTO_HALT_MIN_DEVICES` (default 100): halt a partial rollout whose
    /// devices report failures at this rate or more.
    pub auto_halt: Option<application::AutoHalt>,
    /// `IDLE_TIMEOUT_SECONDS` (default 75): a connection without a byte
    /// either way for this long is closed. Keep it above the idle timeout of
    /// the load balancer in front (60 s on AWS ALB and nginx).
    pub idle_timeout: std::time::Duration,
    /// `INSIGHTS_WRITE_SECONDS` (default 10): how often update insights
    /// counted in memory are written; a crash loses at most this much.
    pub insights_write_interval: std::time::Duration,
    /// `METRICS_TOKEN`: when set, `/metrics` needs it as a bearer token.
    pub metrics_token: Option<Secret>,
    /// `SIGNING_KEY_ENCRYPTION_KEY`: the master key projects' own signing
    /// keys are stored encrypted under; without it they are refused.
    pub signing_key_encryption_key: Option<Secret>,
    /// `RETENTION_KEEP_PER_BRANCH`: updates kept per (branch, runtime
    /// version, platform); `None` keeps everything.
    pub retention_keep_per_branch: Option<u64>,
    /// `GC_INTERVAL_SECONDS`: how often staging is swept and unreferenced
    /// blobs are collected in the background; `None` (0) turns it off.
    pub gc_interval: Option<std::time::Duration>,
    /// `GC_GRACE_SECONDS`: blobs younger than this are never collected.
    pub gc_grace: std::time::Duration,
    /// `MANIFEST_CACHE_BYTES`: memory for resolved update checks and update
    /// records; 0 turns the cache off (every request reads the database).
    pub manifest_cache_bytes: u64,
    /// `ASSET_CACHE_BYTES`: memory for recently downloaded files (up to
    /// 16 MiB each); 0 reads storage on every download.
    pub asset_cache_bytes: u64,
    /// `PATCH_BASES` (default 5; 0 turns bundle diffing off) and
    /// `PATCH_MAX_PERCENT` (default 50): which patches are made and kept.
    pub patch_policy: domain::patch::PatchPolicy,
    /// `BEST_COMPRESSION` (default true): recompress each newly published
    /// launch bundle's brotli and zstd copies at the best levels in the
    /// background. Their working set is freed back to the system afterwards
    /// (see `allocator`): measured RSS 34 MiB after two fixture publishes.
    pub best_compression: bool,
    /// `PATCH_WORKERS` (default 1): patches computed at once by this
    /// instance; each needs several times its bundle in memory. `0`: this
    /// instance computes none, and serves those other instances make.
    pub patch_workers: usize,
    /// `RATE_LIMIT_AUTH_PER_MINUTE`, `RATE_LIMIT_PUBLISH_PER_MINUTE`,
    /// `RATE_LIMIT_DEVICE_PER_SECOND` (0 turns one off) and
    /// `TRUST_FORWARDED_FOR`.
    pub rate_limits: adapter_http::RateLimitSettings,
    /// Things worth telling the operator once logging is up.
    pub warnings: Vec<String>,
}

/// A secret string that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// 512 MiB: far above a real export (a few MB of Hermes bytecode and
/// assets), far below what would strain a small server's disk.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// 64 MiB: thousands of streams (an entry is a few kB per update a device
/// could be served), small next to a server's memory.
pub const DEFAULT_MANIFEST_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// 64 MiB: the latest bundles of a few apps with their compressed copies,
/// which is what every device downloads after a publish.
pub const DEFAULT_ASSET_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Sign-ins and registrations per client address per minute: plenty for
/// people and scripts, far too few to guess passwords.
pub const DEFAULT_AUTH_PER_MINUTE: u64 = 30;

/// Publishes per project per minute: more than any release pipeline needs.
pub const DEFAULT_PUBLISH_PER_MINUTE: u64 = 60;

/// Update checks and downloads per project per second. About 20 per second
/// per million monthly users is typical, so this serves apps with hundreds
/// of millions of users, and caps what one tenant's fleet can take.
pub const DEFAULT_DEVICE_PER_SECOND: u64 = 5000;

/// Six hours between background storage clean-ups.
pub const DEFAULT_GC_INTERVAL_SECONDS: u64 = 6 * 3600;

/// An hour: no publish takes that long between storing a file and
/// committing the update that references it.
pub const DEFAULT_GC_GRACE_SECONDS: u64 = 3600;

/// The largest interval or grace period accepted.
const TEN_YEARS_SECONDS: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error("cannot read .env: {0}")]
    DotEnv(String),
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the process environment, then `.env` in the working directory
    /// for anything the environment does not set.
    pub fn from_env() -> Result<Self, ConfigError> {
        let dotenv = read_dotenv(Path::new(".env"))?;
        Self::from_lookup(env_over_dotenv(|key| std::env::var(key).ok(), dotenv))
    }

    /// Builds the configuration from any key lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let host = get("HOST").unwrap_or_else(|| "0.0.0.0".to_owned());
        let port = match get("PORT") {
            None => 8080,
            Some(raw) => raw
                .parse::<u16>()
                .map_err(|_| invalid("PORT", format!("{raw:?} is not a port number (0-65535)")))?,
        };
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".to_owned()));
        let database_url = match get("DATABASE_URL") {
            None => format!("sqlite://{}", data_dir.join("ota.db").display()),
            Some(url) if is_supported_database(&url) => url,
            Some(_) => {
                return Err(invalid(
                    "DATABASE_URL",
                    "must start with sqlite:// or postgres:// (or postgresql://)",
                ));
            }
        };
        let public_url = resolve_public_url(get("PUBLIC_URL"), get("HOSTNAME"), &mut warnings)?;
        let jwt_secret = match get("JWT_SECRET") {
            None => None,
            Some(secret) if secret.len() < adapter_crypto::MIN_SECRET_BYTES => {
                return Err(invalid(
                    "JWT_SECRET",
                    format!(
                        "is {} bytes; use at least {} (e.g. `openssl rand -hex 32`), or unset it to have one generated",
                        secret.len(),
                        adapter_crypto::MIN_SECRET_BYTES
                    ),
                ));
            }
            Some(secret) => Some(Secret::new(secret)),
        };
        let flag = |name: &'static str, default: bool| match get(name) {
            None => Ok(default),
            Some(raw) => parse_bool(&raw)
                .ok_or_else(|| invalid(name, format!("{raw:?} is not true or false"))),
        };
        let allow_registration = flag("ALLOW_REGISTRATION", true)?;
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("{other:?} is not text or json"),
                ));
            }
        };
        let storage = storage_config(&get, &data_dir)?;
        let max_upload_bytes = match get("MAX_UPLOAD_BYTES") {
            None => DEFAULT_MAX_UPLOAD_BYTES,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|bytes| *bytes > 0)
                .ok_or_else(|| {
                    invalid(
                        "MAX_UPLOAD_BYTES",
                        format!("{raw:?} is not a positive number of bytes"),
                    )
                })?,
        };
        let signing_key = match get("PRIVATE_KEY") {
            None => None,
            Some(value) => Some(signing_key_pem(value)?),
        };
        let signing_key_id = get("PRIVATE_KEY_ID").unwrap_or_else(|| "main".to_owned());
        let metrics_token = get("METRICS_TOKEN").map(Secret::new);
        let signing_key_encryption_key = match get("SIGNING_KEY_ENCRYPTION_KEY") {
            None => None,
            Some(key) if key.chars().count() >= adapter_crypto::MIN_MASTER_KEY_CHARS => {
                Some(Secret::new(key))
            }
            Some(_) => {
                return Err(invalid(
                    "SIGNING_KEY_ENCRYPTION_KEY",
                    format!(
                        "must be at least {} characters (e.g. `openssl rand -base64 32`)",
                        adapter_crypto::MIN_MASTER_KEY_CHARS
                    ),
                ));
            }
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| invalid(name, format!("{raw:?} is not a whole number"))),
            }
        };
        let retention_keep_per_branch = match get("RETENTION_KEEP_PER_BRANCH") {
            None => None,
            Some(_) => match number("RETENTION_KEEP_PER_BRANCH", 0)? {
                0 => {
                    return Err(invalid(
                        "RETENTION_KEEP_PER_BRANCH",
                        "must keep at least 1 update (leave it unset to keep all)".to_owned(),
                    ));
                }
                keep => Some(keep),
            },
        };
        // Bounded so that time arithmetic on them can never overflow.
        let at_most_ten_years = |name: &'static str, seconds: u64| {
            if seconds > TEN_YEARS_SECONDS {
                Err(invalid(
                    name,
                    format!("must be at most {TEN_YEARS_SECONDS} seconds"),
                ))
            } else {
                Ok(seconds)
            }
        };
        let gc_interval = match at_most_ten_years(
            "GC_INTERVAL_SECONDS",
            number("GC_INTERVAL_SECONDS", DEFAULT_GC_INTERVAL_SECONDS)?,
        )? {
            0 => None,
            seconds => Some(std::time::Duration::from_secs(seconds)),
        };
        let gc_grace = std::time::Duration::from_secs(at_most_ten_years(
            "GC_GRACE_SECONDS",
            number("GC_GRACE_SECONDS", DEFAULT_GC_GRACE_SECONDS)?,
        )?);
        let manifest_cache_bytes = number("MANIFEST_CACHE_BYTES", DEFAULT_MANIFEST_CACHE_BYTES)?;
        let asset_cache_bytes = number("ASSET_CACHE_BYTES", DEFAULT_ASSET_CACHE_BYTES)?;
        let asset_url_base = match get("ASSET_URL_BASE") {
            None => None,
            Some(url) if has_http_scheme(&url) => Some(url.trim_end_matches('/').to_owned()),
            Some(_) => {
                return Err(invalid(
                    "ASSET_URL_BASE",
                    "must start with http:// or https://",
                ));
            }
        };
        let presigned_redirects = flag("S3_PRESIGNED_REDIRECTS", false)?;
        if presigned_redirects && !matches!(storage, StorageConfig::S3 { .. }) {
            return Err(invalid(
                "S3_PRESIGNED_REDIRECTS",
                "needs STORAGE_TYPE=s3 (local files have no presigned URLs)",
            ));
        }
        let idle_timeout =
            std::time::Duration::from_secs(number("IDLE_TIMEOUT_SECONDS", 75)?.clamp(1, 24 * 3600));
        let insights_write_interval =
            std::time::Duration::from_secs(number("INSIGHTS_WRITE_SECONDS", 10)?.clamp(1, 3600));
        let auto_halt = match get("AUTO_HALT_FAILURE_RATE") {
            None => None,
            Some(raw) => {
                let failure_rate = raw
                    .parse::<f64>()
                    .ok()
                    .filter(|rate| *rate > 0.0 && *rate <= 1.0)
                    .ok_or_else(|| {
                        invalid(
                            "AUTO_HALT_FAILURE_RATE",
                            format!("{raw:?} is not a rate above 0 and at most 1 (e.g. 0.05)"),
                        )
                    })?;
                Some(application::AutoHalt {
                    failure_rate,
                    min_devices: number("AUTO_HALT_MIN_DEVICES", 100)?,
                })
            }
        };
        let defaults = domain::patch::PatchPolicy::default();
        let at_most = |name: &'static str, default: u32, max: u32| -> Result<u32, ConfigError> {
            let value = number(name, u64::from(default))?;
            u32::try_from(value)
                .ok()
                .filter(|value| *value <= max)
                .ok_or_else(|| invalid(name, format!("{value} is more than {max}")))
        };
        let patch_policy = domain::patch::PatchPolicy {
            bases: at_most("PATCH_BASES", defaults.bases, 50)?,
            max_percent: match at_most("PATCH_MAX_PERCENT", defaults.max_percent, 100)? {
                0 => {
                    return Err(invalid(
                        "PATCH_MAX_PERCENT",
                        "must be 1 to 100 (use PATCH_BASES=0 to turn bundle diffing off)",
                    ));
                }
                percent => percent,
            },
        };
        let best_compression = flag("BEST_COMPRESSION", true)?;
        // 0: this instance serves patches but leaves computing them to
        // the instances that do (bundle diffing itself is PATCH_BASES).
        let patch_workers = at_most("PATCH_WORKERS", 1, 64)? as usize;
        let limit = |name: &'static str, default: u64| -> Result<Option<NonZeroU32>, ConfigError> {
            let value = number(name, default)?;
            let value = u32::try_from(value)
                .map_err(|_| invalid(name, format!("{value} is more than {}", u32::MAX)))?;
            Ok(NonZeroU32::new(value))
        };
        let rate_limits = adapter_http::RateLimitSettings {
            auth_per_minute: limit("RATE_LIMIT_AUTH_PER_MINUTE", DEFAULT_AUTH_PER_MINUTE)?,
            publish_per_minute: limit("RATE_LIMIT_PUBLISH_PER_MINUTE", DEFAULT_PUBLISH_PER_MINUTE)?,
            device_per_second: limit("RATE_LIMIT_DEVICE_PER_SECOND", DEFAULT_DEVICE_PER_SECOND)?,
            trust_forwarded_for: match get("TRUST_FORWARDED_FOR") {
                None => false,
                Some(raw) => parse_bool(&raw).ok_or_else(|| {
                    invalid(
                        "TRUST_FORWARDED_FOR",
                        format!("{raw:?} is not true or false"),
                    )
                })?,
            },
        };
        Ok(Self {
            rate_limits,
            host,
            port,
            public_url,
            asset_url_base,
            presigned_redirects,
            data_dir,
            database_url,
            jwt_secret,
            allow_registration,
            log_format,
            storage,
            max_upload_bytes,
            signing_key,
            signing_key_id,
            signing_key_encryption_key,
            metrics_token,
            auto_halt,
            insights_write_interval,
            idle_timeout,
            retention_keep_per_branch,
            gc_interval,
            gc_grace,
            manifest_cache_bytes,
            asset_cache_bytes,
            patch_policy,
            patch_workers,
            best_compression,
            warnings,
        })
    }
}

/// `STORAGE_TYPE=local` (default): `DATA_DIR/updates`. `STORAGE_TYPE=s3`:
/// the `S3_*` variables, path-style unless `S3_VIRTUAL_HOSTED=true`.
fn storage_config(
    get: &impl Fn(&str) -> Option<String>,
    data_dir: &Path,
) -> Result<StorageConfig, ConfigError> {
    match get("STORAGE_TYPE").as_deref() {
        None | Some("local") => Ok(StorageConfig::Local {
            root: data_dir.join("updates"),
        }),
        Some("s3") => {
            let required = |var: &'static str| {
                get(var).ok_or_else(|| invalid(var, "is required when STORAGE_TYPE=s3"))
            };
            let endpoint = get("S3_ENDPOINT");
            if endpoint.as_deref().is_some_and(|url| !has_http_scheme(url)) {
                return Err(invalid(
                    "S3_ENDPOINT",
                    "must start with http:// or https://",
                ));
            }
            let virtual_hosted = match get("S3_VIRTUAL_HOSTED") {
                None => false,
                Some(raw) => parse_bool(&raw).ok_or_else(|| {
                    invalid("S3_VIRTUAL_HOSTED", format!("{raw:?} is not true or false"))
                })?,
            };
            Ok(StorageConfig::S3 {
                endpoint,
                bucket: required("S3_BUCKET")?,
                region: get("S3_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
                access_key: required("S3_ACCESS_KEY")?,
                secret_key: required("S3_SECRET_KEY")?,
                prefix: get("S3_PREFIX").map(|p| p.trim_matches('/').to_owned()),
                virtual_hosted,
            })
        }
        Some(other) => Err(invalid(
            "STORAGE_TYPE",
            format!("{other:?} is not local or s3"),
        )),
    }
}

/// `PRIVATE_KEY` holds PEM text (anything with `BEGIN`) or a path to a PEM file.
fn signing_key_pem(value: String) -> Result<Secret, ConfigError> {
    if value.contains("BEGIN") {
        return Ok(Secret::new(value));
    }
    std::fs::read_to_string(&value)
        .map(Secret::new)
        .map_err(|error| {
            invalid(
                "PRIVATE_KEY",
                format!("cannot read the key file {value}: {error}"),
            )
        })
}

fn is_supported_database(url: &str) -> bool {
    ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn has_http_scheme(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// `PUBLIC_URL` wins; `HOSTNAME` is honoured only when it is a URL, because
/// Docker and Kubernetes set it to the container's name in every container.
fn resolve_public_url(
    public_url: Option<String>,
    hostname: Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, ConfigError> {
    if let Some(url) = public_url {
        if !has_http_scheme(&url) {
            return Err(invalid("PUBLIC_URL", "must start with http:// or https://"));
        }
        return Ok(Some(url.trim_end_matches('/').to_owned()));
    }
    match hostname {
        Some(url) if has_http_scheme(&url) => Ok(Some(url.trim_end_matches('/').to_owned())),
        Some(name) => {
            warnings.push(format!(
                "HOSTNAME={name:?} has no http:// or https:// scheme (containers set it to their own name), so it is not used as the public URL; set PUBLIC_URL"
            ));
            Ok(None)
        }
        None => Ok(None),
    }
}

/// A lookup that asks `environment` first and falls back to the `.env` values.
fn env_over_dotenv(
    environment: impl Fn(&str) -> Option<String>,
    dotenv: HashMap<String, String>,
) -> impl Fn(&str) -> Option<String> {
    move |key| environment(key).or_else(|| dotenv.get(key).cloned())
}

/// Reads `KEY=value` lines from a `.env` file; a missing file is no error.
fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    dotenvy::from_path_iter(path)
        .and_then(Iterator::collect)
        .map_err(|error| ConfigError::DotEnv(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn delivery_settings_are_checked() {
        let defaults = config(&[]).expect("the defaults are valid");
        assert_eq!(defaults.manifest_cache_bytes, DEFAULT_MANIFEST_CACHE_BYTES);
        assert_eq!(defaults.asset_url_base, None);
        assert!(!defaults.presigned_redirects);
        let cdn = config(&[
            ("ASSET_URL_BASE", "https://cdn.example.com/ota/"),
            ("MANIFEST_CACHE_BYTES", "0"),
        ])
        .expect("a CDN base and no cache are valid");
        assert_eq!(
            cdn.asset_url_base.as_deref(),
            Some("https://cdn.example.com/ota")
        );
        assert_eq!(cdn.manifest_cache_bytes, 0);
        assert!(config(&[("ASSET_URL_BASE", "cdn.example.com")]).is_err());
        assert!(config(&[("MANIFEST_CACHE_BYTES", "lots")]).is_err());
        // Local files cannot be presigned: refused at start, not at the first download.
        assert!(config(&[("S3_PRESIGNED_REDIRECTS", "true")]).is_err());
        assert!(config(&[("S3_PRESIGNED_REDIRECTS", "maybe")]).is_err());
    }

    #[test]
    fn defaults_need_no_configuration() {
        let config = config(&[]).expect("defaults");
        assert_eq!((config.host.as_str(), config.port), ("0.0.0.0", 8080));
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.database_url, "sqlite://./data/ota.db");
        assert_eq!(config.public_url, None);
        assert!(config.jwt_secret.is_none() && config.allow_registration);
    }

    #[test]
    fn short_jwt_secrets_and_bad_values_are_refused() {
        assert!(config(&[("JWT_SECRET", &"x".repeat(31))]).is_err());
        assert!(config(&[("JWT_SECRET", &"x".repeat(32))]).is_ok());
        assert!(config(&[("PORT", "eighty")]).is_err());
        assert!(config(&[("ALLOW_REGISTRATION", "maybe")]).is_err());
        assert!(config(&[("LOG_FORMAT", "xml")]).is_err());
        assert!(config(&[("DATABASE_URL", "mysql://x")]).is_err());
        let message = config(&[("PORT", "eighty")]).err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("PORT: \"eighty\" is not a port number (0-65535)")
        );
    }

    #[test]
    fn dotenv_fills_in_what_the_environment_does_not_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "# comment\nPORT=1234\nHOST=127.0.0.2\n").expect("write");
        let dotenv = read_dotenv(&path).expect("parse");
        let environment = |key: &str| (key == "PORT").then(|| "9000".to_owned());
        let config = Config::from_lookup(env_over_dotenv(environment, dotenv)).expect("config");
        assert_eq!((config.host.as_str(), config.port), ("127.0.0.2", 9000));
        assert!(
            read_dotenv(&dir.path().join("missing"))
                .expect("no file")
                .is_empty()
        );
        std::fs::write(&path, "NOT A LINE\n").expect("write");
        assert!(read_dotenv(&path).is_err());
    }

    #[test]
    fn storage_is_local_by_default_and_s3_needs_its_variables() {
        let local = config(&[("DATA_DIR", "/srv/ota")]).expect("config");
        assert_eq!(
            local.storage,
            StorageConfig::Local {
                root: PathBuf::from("/srv/ota/updates")
            }
        );
        assert!(config(&[("STORAGE_TYPE", "ftp")]).is_err());
        let missing = config(&[("STORAGE_TYPE", "s3"), ("S3_BUCKET", "b")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            missing.as_deref(),
            Some("S3_ACCESS_KEY: is required when STORAGE_TYPE=s3")
        );
        let s3 = config(&[
            ("STORAGE_TYPE", "s3"),
            ("S3_ENDPOINT", "http://minio:9000"),
            ("S3_BUCKET", "ota"),
            ("S3_ACCESS_KEY", "ak"),
            ("S3_SECRET_KEY", "sk-secret"),
            ("S3_PREFIX", "/tenant/"),
        ])
        .expect("s3");
        let StorageConfig::S3 {
            prefix,
            virtual_hosted,
            region,
            ..
        } = &s3.storage
        else {
            panic!("not s3")
        };
        assert_eq!(
            (prefix.as_deref(), *virtual_hosted, region.as_str()),
            (Some("tenant"), false, "us-east-1")
        );
        assert!(
            !format!("{s3:?}").contains("sk-secret"),
            "the secret key is never printed"
        );
    }

    #[test]
    fn a_container_hostname_is_not_a_public_url() {
        let container = config(&[("HOSTNAME", "3f2a9c1b7d0e")]).expect("config");
        assert_eq!(container.public_url, None);
        assert_eq!(container.warnings.len(), 1);
        let with_scheme = config(&[("HOSTNAME", "https://ota.example.com/")]).expect("config");
        assert_eq!(
            with_scheme.public_url.as_deref(),
            Some("https://ota.example.com")
        );
        let public = config(&[("HOSTNAME", "https://a.io"), ("PUBLIC_URL", "https://b.io")])
            .expect("config");
        assert_eq!(public.public_url.as_deref(), Some("https://b.io"));
    }
}
