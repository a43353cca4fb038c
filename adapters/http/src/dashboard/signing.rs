//! A project's code-signing keys: generate one (and download its
//! certificate), upload one, rotate to a new one, remove an old one.

use application::NewSigningKey;
use maud::html;
use poem::http::{StatusCode, header};
use poem::web::{Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::confirm::{Confirmation, confirm, is_confirmed};
use super::html::{ProjectPage, Tab, csrf_field, empty_state, page as render, project_path, time};
use super::projects::load;
use super::session::{Action, Signed, outcome, refused};
use super::shell::{error_page, plain_error};
use crate::ids;

fn certificate_path(id: &str, key_id: &str) -> String {
    let query = serde_urlencoded::to_string([("key", key_id)]).unwrap_or_default();
    format!("{}/certificate?{query}", project_path(id, Tab::Signing))
}

#[handler]
pub async fn key_page(signed: Signed, Path(id): Path<String>) -> Response {
    let (project_id, project) = match load(&signed, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let keys = match signed
        .services
        .signing_keys
        .list(&signed.user, &project_id)
        .await
    {
        Ok(keys) => keys,
        Err(error) => return error_page(error),
    };
    let base = project_path(&id, Tab::Signing);
    let suggested = if keys.is_empty() {
        "main".to_owned()
    } else {
        format!("key-{}", chrono::Utc::now().format("%Y%m%d"))
    };
    render(
        &signed,
        "Code signing",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Signing,
        }),
        html! {
            @if !signed.services.signing_keys.is_configured() {
                section.card.bad role="note" aria-labelledby="unconfigured-title" {
                    h2 id="unconfigured-title" { "This server cannot store signing keys yet" }
                    p { "Project keys are kept encrypted under a master key the server reads from " code { "SIGNING_KEY_ENCRYPTION_KEY" } ". Set it (for example to the output of " code { "openssl rand -base64 32" } ") and restart the server; until then, keys cannot be added here." }
                }
            }
            @if keys.is_empty() {
                (empty_state("Manifests of this project are not signed with its own key", html! {
                    p { "Generate a key below: the server keeps the private key (sealed) and gives you the certificate to put in your app as " code { "updates.codeSigningCertificate" } ". The " a href=(project_path(&id, Tab::Setup)) { "Setup" } " tab then shows the matching app.json lines." }
                }))
            } @else {
                section.card aria-labelledby="keys-title" {
                    h2 id="keys-title" { "Signing keys" }
                    p.hint { "Apps that name a key id get that key's signature; the newest key signs for apps that name none. To rotate, add a new key, ship builds with its certificate, then remove the old key." }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Key id" } th scope="col" { "Added" } th scope="col" { "Certificate" } th scope="col" { "Actions" } } }
                            tbody {
                                @for (index, key) in keys.iter().enumerate() {
                                    @let key_id = key.key_id.as_str();
                                    tr data-signing-key=(key_id) {
                                        td { code { (key_id) } @if index == 0 { " " span.badge { "default" } } }
                                        td { (time(&key.created_at)) }
                                        td {
                                            @if key.certificate_pem.is_some() {
                                                a href=(certificate_path(&id, key_id)) download={(key_id) "-certificate.pem"} { "Download certificate" }
                                            } @else { "none uploaded" }
                                        }
                                        td {
                                            form.inline method="post" action={(base) "/remove"} {
                                                (csrf_field(&signed))
                                                input type="hidden" name="key_id" value=(key_id);
                                                button.secondary type="submit" { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.row {
                section.card aria-labelledby="generate-title" {
                    h2 id="generate-title" { @if keys.is_empty() { "Generate a key" } @else { "Rotate: generate a new key" } }
                    form method="post" action={(base) "/generate"} {
                        (csrf_field(&signed))
                        p {
                            label for="generate-key-id" { "Key id" }
                            input id="generate-key-id" type="text" name="key_id" value=(suggested) required;
                        }
                        p {
                            label for="generate-cn" { "Certificate common name" }
                            input id="generate-cn" type="text" name="common_name" value=(project.name);
                        }
                        p {
                            label for="generate-years" { "Valid for (years)" }
                            input id="generate-years" type="number" name="validity_years" min="1" max="30" value="10";
                        }
                        button type="submit" { @if keys.is_empty() { "Generate key" } @else { "Generate new key" } }
                    }
                }
                section.card aria-labelledby="upload-title" {
                    h2 id="upload-title" { "Upload a key" }
                    form method="post" action={(base) "/upload"} {
                        (csrf_field(&signed))
                        p {
                            label for="upload-key-id" { "Key id" }
                            input id="upload-key-id" type="text" name="key_id" value=(suggested) required;
                        }
                        p {
                            label for="upload-key-file" { "Private key file (PEM)" }
                            input id="upload-key-file" type="file" accept=".pem,.key" data-into="upload-private-key";
                        }
                        p {
                            label for="upload-private-key" { "Private key (PEM, PKCS#1 or PKCS#8)" }
                            textarea id="upload-private-key" name="private_key" required spellcheck="false" autocomplete="off" {}
                        }
                        p {
                            label for="upload-cert-file" { "Certificate file (PEM, optional)" }
                            input id="upload-cert-file" type="file" accept=".pem,.crt" data-into="upload-certificate";
                        }
                        p {
                            label for="upload-certificate" { "Certificate (PEM, optional)" }
                            textarea id="upload-certificate" name="certificate" spellcheck="false" {}
                        }
                        button type="submit" { "Upload key" }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct GenerateForm {
    #[serde(default)]
    key_id: String,
    common_name: Option<String>,
    validity_years: Option<String>,
    confirmed: Option<String>,
}

#[handler]
pub async fn generate_key(
    req: &Request,
    Path(id): Path<String>,
    action: Action<GenerateForm>,
) -> Response {
    let Action { signed, form } = action;
    let back = project_path(&id, Tab::Signing);
    let key_id = form.key_id.trim().to_owned();
    let validity_years = match form
        .validity_years
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(years) => match years.parse::<u32>() {
            Ok(years) => Some(years),
            Err(_) => {
                return refused(
                    req,
                    &back,
                    application::AppError::Invalid(
                        "Validity must be a whole number of years.".to_owned(),
                    ),
                );
            }
        },
    };
    let existing = async {
        let project = ids::project(&id)?;
        signed
            .services
            .signing_keys
            .list(&signed.user, &project)
            .await
    }
    .await
    .unwrap_or_default();
    if let Some(newest) = existing.first()
        && !is_confirmed(form.confirmed.as_deref())
    {
        let mut fields = vec![("key_id", key_id.clone())];
        if let Some(name) = &form.common_name {
            fields.push(("common_name", name.clone()));
        }
        if let Some(years) = &form.validity_years {
            fields.push(("validity_years", years.clone()));
        }
        return confirm(
            &signed,
            &id,
            Tab::Signing,
            Confirmation {
                title: "Rotate to a new signing key?",
                changes: vec![
                    format!(
                        "New key {key_id} signs for every app that names no key id, instead of {}.",
                        newest.key_id.as_str()
                    ),
                    format!(
                        "Key {} keeps signing for apps that ask for it by key id, until you remove it.",
                        newest.key_id.as_str()
                    ),
                ],
                action: req.original_uri().path().to_owned(),
                fields,
                button: "Generate new key",
                cancel: back,
                danger: false,
            },
        ).await;
    }
    let new_key = NewSigningKey::Generate {
        key_id: key_id.clone(),
        common_name: form.common_name.filter(|name| !name.trim().is_empty()),
        validity_years,
    };
    let result = async {
        let project = ids::project(&id)?;
        signed
            .services
            .signing_keys
            .add(&signed.user, &project, new_key)
            .await
    }
    .await;
    outcome(req, &back, result, |key| {
        format!(
            "Key “{}” generated. Download its certificate and put it in your app.",
            key.key_id.as_str()
        )
    })
}

#[derive(Deserialize)]
pub struct UploadForm {
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    private_key: String,
    certificate: Option<String>,
}

#[handler]
pub async fn upload_key(
    req: &Request,
    Path(id): Path<String>,
    action: Action<UploadForm>,
) -> Response {
    let Action { signed, form } = action;
    let new_key = NewSigningKey::Upload {
        key_id: form.key_id.trim().to_owned(),
        private_key_pem: form.private_key,
        certificate_pem: form.certificate.filter(|pem| !pem.trim().is_empty()),
    };
    let result = async {
        let project = ids::project(&id)?;
        signed
            .services
            .signing_keys
            .add(&signed.user, &project, new_key)
            .await
    }
    .await;
    outcome(req, &project_path(&id, Tab::Signing), result, |key| {
        format!("Key “{}” uploaded.", key.key_id.as_str())
    })
}

#[derive(Deserialize)]
pub struct NamedKey {
    #[serde(default)]
    key_id: String,
    confirmed: Option<String>,
}

#[handler]
pub async fn remove_key(
    req: &Request,
    Path(id): Path<String>,
    action: Action<NamedKey>,
) -> Response {
    let Action { signed, form } = action;
    let key = form.key_id.clone();
    let back = project_path(&id, Tab::Signing);
    if !is_confirmed(form.confirmed.as_deref()) {
        return confirm(
            &signed,
            &id,
            Tab::Signing,
            Confirmation {
                title: "Remove this signing key?",
                changes: vec![
                    format!("Key {key} is deleted; its private key cannot be recovered."),
                    format!(
                        "Apps that ask for key {key} get an error instead of an update until they are rebuilt with another certificate."
                    ),
                ],
                action: req.original_uri().path().to_owned(),
                fields: vec![("key_id", key.clone())],
                button: "Remove key",
                cancel: back,
                danger: true,
            },
        ).await;
    }
    let result = async {
        let (project, key_id) = (ids::project(&id)?, ids::signing_key(&key)?);
        signed
            .services
            .signing_keys
            .remove(&signed.user, &project, &key_id)
            .await
    }
    .await;
    outcome(req, &back, result, |()| format!("Key “{key}” removed."))
}

#[derive(Deserialize)]
pub struct CertificateQuery {
    #[serde(default)]
    key: String,
}

#[handler]
pub async fn download_certificate(
    signed: Signed,
    Path(id): Path<String>,
    Query(CertificateQuery { key }): Query<CertificateQuery>,
) -> Response {
    let listed = async {
        let project = ids::project(&id)?;
        signed
            .services
            .signing_keys
            .list(&signed.user, &project)
            .await
    }
    .await;
    let keys = match listed {
        Ok(keys) => keys,
        Err(error) => return error_page(error),
    };
    let Some(pem) = keys
        .into_iter()
        .find(|stored| stored.key_id.as_str() == key)
        .and_then(|stored| stored.certificate_pem)
    else {
        return plain_error(StatusCode::NOT_FOUND, "This key has no certificate.");
    };
    let file_name: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    pem.with_content_type("application/x-pem-file")
        .with_header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}-certificate.pem\""),
        )
        .into_response()
}
