//! The project's audit log, newest first, a page at a time (owners).

use domain::audit::ActorKind;
use maud::html;
use poem::web::{Path, Query};
use poem::{Response, handler};
use serde::Deserialize;

use super::html::{ProjectPage, Tab, page as render, project_path, time};
use super::projects::load;
use super::session::Signed;
use super::shell::error_page;

const PAGE_SIZE: u64 = 50;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    cursor: Option<String>,
}

#[handler]
pub async fn audit_log(
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Response {
    let (project_id, project) = match load(&signed, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let cursor = query.cursor.filter(|cursor| !cursor.is_empty());
    let log = match signed
        .services
        .audit
        .list(
            &signed.user,
            &project_id,
            cursor.as_deref(),
            Some(PAGE_SIZE),
        )
        .await
    {
        Ok(log) => log,
        Err(error) => return error_page(error),
    };
    render(
        &signed,
        "Audit log",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Audit,
        }),
        html! {
            section.card aria-labelledby="audit-title" {
                h2 id="audit-title" { "Audit log" }
                @if log.events.is_empty() {
                    p { "Nothing has happened in this project yet." }
                } @else {
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Details" } } }
                            tbody {
                                @for event in &log.events {
                                    tr data-action=(event.action) {
                                        td { (time(&event.created_at)) }
                                        td {
                                            (event.actor.name)
                                            @match event.actor.kind {
                                                ActorKind::ApiKey => " (API key)",
                                                ActorKind::System => " (server)",
                                                ActorKind::User => "",
                                            }
                                        }
                                        td { code { (event.action) } }
                                        td { code { (event.details) } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &log.next_cursor {
                    p { a.button.secondary href={(project_path(&id, Tab::Audit)) "?cursor=" (next)} { "Older events" } }
                }
            }
        },
    )
}
