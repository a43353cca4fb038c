//! An update's bundle patches: per platform, the earlier bundles devices
//! get a patch from, and each patch's size against the full download.

use application::PatchesPage;
use domain::patch::PatchState;
use maud::html;
use poem::web::Path;
use poem::{Response, handler};

use super::html::{ProjectPage, Tab, empty_state, human, page, project_path, time};
use super::session::Signed;
use super::shell::error_page;
use super::timeline::short;
use crate::ids;

#[handler]
pub async fn update_patches(
    signed: Signed,
    Path((id, update)): Path<(String, String)>,
) -> Response {
    let (project_id, publish_id) = match (ids::project(&id), ids::update(&update)) {
        (Ok(project_id), Ok(publish_id)) => (project_id, publish_id),
        (Err(error), _) | (_, Err(error)) => return error_page(error),
    };
    let PatchesPage {
        project,
        policy,
        platforms,
    } = match signed
        .services
        .patches_page(&signed.user, &project_id, &publish_id)
        .await
    {
        Ok(page) => page,
        Err(error) => return error_page(error),
    };
    page(
        &signed,
        "Bundle patches",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Updates,
        }),
        html! {
            h2 { "Bundle patches of update " code { (short(publish_id.as_str())) } }
            p.hint {
                "A device running one of the earlier bundles below downloads the patch instead of the whole bundle. "
                a href=(project_path(&id, Tab::Updates)) { "Back to the updates" }
            }
            @if !policy.enabled() {
                p.flash.bad role="status" { "Bundle diffing is off on this server (PATCH_BASES=0)." }
            }
            @for platform in &platforms {
                section.card aria-label={ (platform.platform.as_str()) " bundle patches" } {
                    h3 { (platform.platform.as_str()) }
                    p.meta {
                        "bundle " code { (short(&platform.target_sha256)) }
                        " · full download "
                        (platform.full_size.map_or_else(|| "unknown".to_owned(), human))
                    }
                    @if platform.patches.is_empty() {
                        p { "No patches: there was no earlier bundle to patch from." }
                    } @else {
                        table {
                            thead { tr { th { "From bundle" } th { "State" } th { "Size" } th { "Of the full download" } th { "Updated" } } }
                            tbody {
                                @for patch in &platform.patches {
                                    @let size = match &patch.state {
                                        PatchState::Ready { size } | PatchState::NotWorthIt { size } => Some(*size),
                                        _ => None,
                                    };
                                    tr data-state=(patch.state.as_str()) {
                                        td { code { (short(&patch.key.base_sha256)) } }
                                        td {
                                            @match &patch.state {
                                                PatchState::Pending => "being computed",
                                                PatchState::Ready { .. } => "served",
                                                PatchState::NotWorthIt { .. } => "not served: too large",
                                                PatchState::Failed { error } => { "failed: " (error) },
                                            }
                                        }
                                        td { (size.map(human).unwrap_or_default()) }
                                        td {
                                            @if let (Some(size), Some(full)) = (size, platform.full_size.filter(|full| *full > 0)) {
                                                (size * 100 / full) " %"
                                            }
                                        }
                                        td { (time(&patch.updated_at)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if platforms.is_empty() {
                (empty_state("No bundles", html! { p { "This update ships no launch bundle (a rollback to the embedded update)." } }))
            }
        },
    )
}
