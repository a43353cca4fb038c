//! The project list, creating and renaming projects, and a project's setup
//! page: its manifest URL, the `app.json` snippet and the publish command.

use domain::id::ProjectId;
use domain::project::Project;
use maud::{Markup, html};
use poem::web::{Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;
use serde_json::json;

use super::html::{ProjectPage, Tab, copyable, csrf_field, empty_state, page, project_path, time};
use super::paths::PREFIX;
use super::session::{Action, Signed, outcome, refused};
use super::shell::error_page;
use crate::ids;
use application::ProjectChanges;

/// A project page's project with its id as the services take it (parsed
/// from the page's path), or the page that says why it cannot be shown.
pub async fn load(signed: &Signed, id: &str) -> Result<(ProjectId, Project), Response> {
    let project_id = ids::project(id).map_err(error_page)?;
    let project = signed
        .services
        .projects
        .get(&signed.user, &project_id)
        .await
        .map_err(error_page)?;
    Ok((project_id, project))
}

/// The address devices and the CLI reach this server at.
pub fn server_url(signed: &Signed) -> String {
    signed
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| signed.origin.clone())
}

#[handler]
pub async fn project_list(signed: Signed) -> Response {
    let projects = match signed.services.projects.list(&signed.user).await {
        Ok(projects) => projects,
        Err(error) => return error_page(error),
    };
    page(
        &signed,
        "Projects",
        None,
        html! {
            @if projects.is_empty() {
                (empty_state("Create your first project", html! {
                    p { "A project is one app: its updates, channels, API keys and members. Create one, then add an API key and publish with the command its Setup tab shows." }
                }))
            } @else {
                section.card aria-labelledby="projects-title" {
                    h2 id="projects-title" { "Your projects" }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Name" } th scope="col" { "Slug" } th scope="col" { "Created" } } }
                            tbody {
                                @for project in &projects {
                                    tr {
                                        td { a href=(project_path(&project.id, Tab::Updates)) { (project.name) } }
                                        td { code { (project.slug) } }
                                        td { (time(&project.created_at)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (create_form(&signed))
        },
    )
}

fn create_form(signed: &Signed) -> Markup {
    html! {
        section.card aria-labelledby="create-title" {
            h2 id="create-title" { "New project" }
            form method="post" action={(PREFIX) "/projects"} {
                (csrf_field(signed))
                div.grid {
                    div {
                        label for="project-name" { "Name" }
                        input id="project-name" type="text" name="name" required maxlength="100" placeholder="My App";
                    }
                    div {
                        label for="project-slug" { "Slug" }
                        input id="project-slug" type="text" name="slug" required pattern="[a-z0-9-]+" maxlength="100" placeholder="my-app" aria-describedby="slug-hint";
                        span.hint id="slug-hint" { "Lower-case letters, digits and dashes." }
                    }
                    div { button type="submit" { "Create project" } }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
}

#[handler]
pub async fn create_project(req: &Request, action: Action<CreateForm>) -> Response {
    let Action { signed, form } = action;
    let result = signed
        .services
        .projects
        .create(&signed.user, form.name.trim(), form.slug.trim())
        .await;
    match result {
        Ok(project) => super::session::redirect_with(
            req,
            &project_path(&project.id, Tab::Setup),
            super::session::Flash::Done(format!(
                "Project {} created. Next: create an API key, then publish.",
                project.name
            )),
        ),
        Err(error) => refused(req, PREFIX, error),
    }
}

#[derive(Deserialize, Default)]
pub struct SetupQuery {
    channel: Option<String>,
}

#[handler]
pub async fn setup_page(
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<SetupQuery>,
) -> Response {
    let (project_id, project) = match load(&signed, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let services = &signed.services;
    let caller = application::Caller::User(signed.user.clone());
    let channels = services
        .releases
        .list_channels(&caller, &project_id)
        .await
        .unwrap_or_default();
    let signing_keys = services
        .signing_keys
        .list(&signed.user, &project_id)
        .await
        .unwrap_or_default();
    let embedded_bundles = services
        .patches
        .embedded_bundles(&caller, &project_id)
        .await
        .unwrap_or_default();
    let channel = query
        .channel
        .filter(|name| domain::release::ChannelName::parse(name).is_ok())
        .unwrap_or_else(|| {
            domain::release::ChannelName::default_channel()
                .as_str()
                .to_owned()
        });
    let base = server_url(&signed);
    let manifest_url = format!("{base}/api/updates/{}/manifest", project.id);
    let newest_key = signing_keys
        .first()
        .map(|key| key.key_id.as_str().to_owned());
    let snippet = app_json(&manifest_url, &channel, newest_key.as_deref());
    // The branch the chosen channel serves (its namesake when unmapped).
    let branch = channels
        .iter()
        .find(|mapped| mapped.name.as_str() == channel)
        .map_or_else(
            || channel.clone(),
            |mapped| mapped.branch.as_str().to_owned(),
        );
    let publish = format!(
        "export EXPO_UPDATES_URL={base}\n\
         export EXPO_UPDATES_PROJECT={}\n\
         export EXPO_UPDATES_API_KEY=<the API key's secret>\n\
         npx expo export --output-dir dist\n\
         expo-updates-server publish --dir dist --branch {branch} --message \"First update\"",
        project.id
    );
    let mut channel_names: Vec<String> = channels
        .iter()
        .map(|channel| channel.name.as_str().to_owned())
        .collect();
    if !channel_names.contains(&channel) {
        channel_names.push(channel.clone());
    }
    page(
        &signed,
        "Setup",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Setup,
        }),
        html! {
            section.card aria-labelledby="manifest-title" {
                h2 id="manifest-title" { "Manifest URL" }
                p.hint { "Apps ask this address for updates." }
                (copyable("manifest-url", "Manifest URL", &manifest_url))
            }
            section.card aria-labelledby="appjson-title" {
                h2 id="appjson-title" { "app.json" }
                form.filters method="get" action=(project_path(&id, Tab::Setup)) {
                    div {
                        label for="snippet-channel" { "Channel the build listens to" }
                        select id="snippet-channel" name="channel" {
                            @for name in &channel_names {
                                option value=(name) selected[*name == channel] { (name) }
                            }
                        }
                    }
                    button.secondary type="submit" { "Show" }
                }
                p.hint { "Merge this into your app's " code { "app.json" } ", then build the app. The runtime version you publish with must match the build's." }
                @if newest_key.is_none() {
                    p.hint { "Manifests are not signed with a key of this project. Add one under " a href=(project_path(&id, Tab::Signing)) { "Code signing" } " to get the certificate and metadata lines." }
                }
                (copyable("app-json", "app.json snippet", &snippet))
            }
            section.card aria-labelledby="publish-title" {
                h2 id="publish-title" { "Publish an update" }
                p { "From your Expo project, with an " a href=(project_path(&id, Tab::Keys)) { "API key" } " of this project (the binary that runs this server is also its CLI; " code { "publish" } " without " code { "--dir" } " runs the export itself):" }
                (copyable("publish-command", "Publish command", &publish))
            }
            (super::embedded::card(&signed, &project, &embedded_bundles))
            section.card aria-labelledby="rename-title" {
                h2 id="rename-title" { "Rename project" }
                form.inline method="post" action={(project_path(&id, Tab::Updates)) "/rename"} {
                    (csrf_field(&signed))
                    div {
                        label for="rename-name" { "Name" }
                        input id="rename-name" type="text" name="name" value=(project.name) required maxlength="100";
                    }
                    button type="submit" { "Rename" }
                }
                p.hint { "Project id " code { (project.id) } ", slug " code { (project.slug) } ", created " (time(&project.created_at)) "." }
            }
        },
    )
}

/// The `expo.updates` settings an app needs for this project.
fn app_json(manifest_url: &str, channel: &str, signing_key: Option<&str>) -> String {
    let mut updates = json!({
        "url": manifest_url,
        "enabled": true,
        "checkAutomatically": "ON_LOAD",
        "requestHeaders": { "expo-channel-name": channel },
    });
    if let Some(key_id) = signing_key {
        updates["codeSigningCertificate"] = json!("./certs/certificate.pem");
        updates["codeSigningMetadata"] = json!({ "keyid": key_id, "alg": "rsa-v1_5-sha256" });
    }
    let config = json!({
        "expo": {
            "runtimeVersion": { "policy": "appVersion" },
            "updates": updates,
        }
    });
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

#[handler]
pub async fn rename_project(
    req: &Request,
    Path(id): Path<String>,
    action: Action<RenameForm>,
) -> Response {
    let Action { signed, form } = action;
    let changes = ProjectChanges {
        name: Some(form.name.trim().to_owned()),
        slug: None,
        patch_from_embedded: None,
    };
    let result = async {
        let project = ids::project(&id)?;
        signed
            .services
            .projects
            .update(&signed.user, &project, changes)
            .await
    }
    .await;
    outcome(req, &project_path(&id, Tab::Setup), result, |project| {
        format!("Project renamed to {}.", project.name)
    })
}

#[expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_names_the_channel_and_the_signing_key() {
        let snippet: serde_json::Value = serde_json::from_str(&app_json(
            "https://ota.example/api/updates/p/manifest",
            "production",
            Some("main"),
        ))
        .unwrap();
        let updates = &snippet["expo"]["updates"];
        assert_eq!(updates["url"], "https://ota.example/api/updates/p/manifest");
        assert_eq!(updates["requestHeaders"]["expo-channel-name"], "production");
        assert_eq!(updates["codeSigningMetadata"]["keyid"], "main");
        assert_eq!(updates["codeSigningMetadata"]["alg"], "rsa-v1_5-sha256");
        let unsigned: serde_json::Value =
            serde_json::from_str(&app_json("u", "main", None)).unwrap();
        assert!(
            unsigned["expo"]["updates"]
                .get("codeSigningMetadata")
                .is_none()
        );
    }
}
