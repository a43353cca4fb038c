//! `embedded`: the launch bundle built into an app binary, uploaded so that
//! devices still running it get a patch instead of their first update's
//! whole bundle, and the project switch that lets the server serve those
//! patches.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Retry, read_json, segment};
use crate::args::{EmbeddedCommand, OnePlatform, PlatformChoice};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::export;
use crate::output::{Output, table};

const COLUMNS: [(&str, &str); 6] = [
    ("UPDATE ID", "updateId"),
    ("PLATFORM", "platform"),
    ("RUNTIME", "runtimeVersion"),
    ("SIZE", "size"),
    ("UPLOADED", "uploadedAt"),
    ("BY", "uploadedBy"),
];

pub async fn run(context: &Context, out: Output, command: EmbeddedCommand) -> CliResult<()> {
    match command {
        EmbeddedCommand::Upload {
            dir,
            platform,
            update_id,
            manifest,
            runtime_version,
        } => {
            let update_id = match (update_id, manifest) {
                (Some(id), None) => id,
                (None, Some(manifest)) => id_of_manifest(&manifest)?,
                _ => {
                    return Err(CliError::Usage(
                        "give the embedded update's id: --update-id, or --manifest with the \
                         build's app.manifest"
                            .to_owned(),
                    ));
                }
            };
            let (api, prefix) = context.release_api().await?;
            let bundle = read_bundle(&dir, platform, runtime_version.as_deref()).await?;
            let query = [
                ("updateId", update_id.as_str()),
                ("runtimeVersion", bundle.runtime_version.as_str()),
                ("platform", platform.as_str()),
            ];
            let path = format!("{prefix}/embedded-bundles");
            // Uploading the same id again replaces it: safe to repeat.
            let response = api
                .send_with_retries(Retry::Always, || {
                    api.request(Method::POST, &path)
                        .query(&query)
                        .header("content-type", "application/octet-stream")
                        .body(bundle.bytes.clone())
                        .send()
                })
                .await?;
            let uploaded = read_json(response).await?;
            out.print(&uploaded, |uploaded| {
                format!(
                    "Uploaded the {} embedded bundle of update {} ({} bytes). Patches from it \
                     are served once the project has `embedded enable`.",
                    platform.as_str(),
                    crate::output::field(uploaded, "updateId"),
                    crate::output::field(uploaded, "size"),
                )
            });
            Ok(())
        }
        EmbeddedCommand::List => {
            let (api, prefix) = context.release_api().await?;
            let bundles = api.get(&format!("{prefix}/embedded-bundles")).await?;
            let rows = bundles.as_array().map(Vec::as_slice).unwrap_or_default();
            out.print(&bundles, |_| {
                table(rows, &COLUMNS, "No embedded bundles uploaded.")
            });
            Ok(())
        }
        EmbeddedCommand::Delete { update_id } => {
            let (api, prefix) = context.release_api().await?;
            let path = format!("{prefix}/embedded-bundles/{}", segment(&update_id));
            api.json(Method::DELETE, &path, None).await?;
            out.done(
                json!({ "deleted": update_id }),
                &format!("Forgot the embedded bundle of update {update_id}."),
            );
            Ok(())
        }
        EmbeddedCommand::Enable | EmbeddedCommand::Disable => {
            let on = matches!(command, EmbeddedCommand::Enable);
            let api = context.user_api()?;
            let path = format!("/api/projects/{}", segment(&context.project()?));
            let body = json!({ "patchFromEmbedded": on });
            let project = api.json(Method::PATCH, &path, Some(&body)).await?;
            let sentence = match on {
                true => {
                    "Devices running their build's embedded update now get patches against its uploaded bundle."
                }
                false => "Devices running their build's embedded update get full bundles again.",
            };
            out.print(&project, |_| sentence.to_owned());
            Ok(())
        }
    }
}

/// The chosen platform's bundle of an export, with its runtime version.
struct ExportBundle {
    bytes: Bytes,
    runtime_version: String,
}

async fn read_bundle(
    dir: &Path,
    platform: OnePlatform,
    runtime_version: Option<&str>,
) -> CliResult<ExportBundle> {
    let choice = match platform {
        OnePlatform::Android => PlatformChoice::Android,
        OnePlatform::Ios => PlatformChoice::Ios,
    };
    let checked = export::check(dir, choice, runtime_version).await?;
    let listed = domain::export::parse_metadata(&checked.metadata)
        .map_err(|error| CliError::Rejected(error.0))?;
    let bundle_path = listed
        .values()
        .next()
        .map(|files| files.bundle.clone())
        .ok_or_else(|| CliError::Rejected("the export lists no bundle".to_owned()))?;
    let file = checked
        .files
        .iter()
        .find(|file| file.path == bundle_path)
        .ok_or_else(|| CliError::Rejected(format!("the export has no {bundle_path}")))?;
    let bytes = tokio::fs::read(&file.location).await.map_err(|error| {
        CliError::Rejected(format!(
            "{} cannot be read: {error}",
            file.location.display()
        ))
    })?;
    Ok(ExportBundle {
        bytes: Bytes::from(bytes),
        runtime_version: checked.runtime_version.as_str().to_owned(),
    })
}

/// The `id` of a build's `app.manifest` (Android: in the APK's assets;
/// iOS: `EXUpdates.bundle/app.manifest` in the app).
fn id_of_manifest(path: &PathBuf) -> CliResult<String> {
    let text = std::fs::read(path)
        .map_err(|error| CliError::Usage(format!("--manifest {}: {error}", path.display())))?;
    let manifest: Value = serde_json::from_slice(&text).map_err(|error| {
        CliError::Usage(format!("--manifest {}: not JSON ({error})", path.display()))
    })?;
    manifest
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--manifest {}: it has no \"id\"; is it the build's app.manifest?",
                path.display()
            ))
        })
}
