//! The setup page's card on patches from the bundle embedded in the app:
//! whether they are served, the switch (owners), and the uploaded bundles.

use domain::embedded::EmbeddedBundle;
use domain::project::Project;
use maud::{Markup, html};
use poem::web::Path;
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::html::{Tab, csrf_field, human, project_path, time};
use super::session::{Action, Signed, outcome};
use crate::ids;
use application::ProjectChanges;

/// The card, for a project and its uploaded embedded bundles.
pub fn card(signed: &Signed, project: &Project, bundles: &[EmbeddedBundle]) -> Markup {
    let on = project.patch_from_embedded;
    html! {
        section.card aria-labelledby="embedded-title" {
            h2 id="embedded-title" { "Patches from the embedded bundle" }
            p {
                @if on {
                    "On: devices still running the update built into their app get a patch against its bundle."
                } @else {
                    "Off: devices still running the update built into their app download the whole bundle."
                }
            }
            p.hint { "Needs expo-updates 57.0.23 or later on Android: older Android clients download such a patch, throw it away and download the full file. Upload a build's bundle with " code { "expo-updates-server embedded upload" } "." }
            form.inline method="post" action={(project_path(&project.id, Tab::Setup)) "/embedded"} {
                (csrf_field(signed))
                input type="hidden" name="on" value=(if on { "false" } else { "true" });
                button.secondary type="submit" { @if on { "Turn off" } @else { "Turn on" } }
            }
            @if bundles.is_empty() {
                p.hint { "No embedded bundles uploaded." }
            } @else {
                table {
                    thead { tr { th { "Embedded update" } th { "Platform" } th { "Runtime" } th { "Size" } th { "Uploaded" } } }
                    tbody {
                        @for bundle in bundles {
                            tr {
                                td { code { (bundle.update_id) } }
                                td { (bundle.platform.as_str()) }
                                td { (bundle.runtime_version.as_str()) }
                                td { (human(bundle.size)) }
                                td { (time(&bundle.uploaded_at)) " by " (bundle.uploaded_by) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    on: String,
}

/// Turns serving patches from embedded bundles on or off (owners).
#[handler]
pub async fn switch(req: &Request, Path(id): Path<String>, action: Action<SwitchForm>) -> Response {
    let Action { signed, form } = action;
    let changes = ProjectChanges {
        name: None,
        slug: None,
        patch_from_embedded: Some(form.on == "true"),
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
    outcome(
        req,
        &project_path(&id, Tab::Setup),
        result,
        |project| match project.patch_from_embedded {
            true => "Patches from embedded bundles are on.".to_owned(),
            false => "Patches from embedded bundles are off.".to_owned(),
        },
    )
}
