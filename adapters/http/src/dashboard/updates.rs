//! The updates timeline (per branch and runtime version, filterable by
//! platform, with each update's insights) and the actions on updates:
//! rollout percentage, halt, republish, roll back to embedded, delete.

use application::{
    Caller, HistoryRequest, InsightSummary, RepublishRequest, RollbackRequest, UpdateGroup,
};
use chrono::NaiveDate;
use domain::id::PublishId;
use domain::update::UpdateKind;
use maud::{Markup, html};
use poem::web::{Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::confirm::{Confirmation, confirm, is_confirmed};
use super::html::{ProjectPage, Tab, copyable, csrf_field, empty_state, page, project_path, time};
use super::projects::{load, server_url};
use super::session::{Action, Signed, is_local, outcome, refused};
use super::shell::error_page;
use crate::ids;

/// Publishes per timeline page.
const PAGE_SIZE: u64 = 20;
/// Days the insights chart shows.
const CHART_DAYS: usize = 14;

#[derive(Deserialize, Default)]
pub struct TimelineQuery {
    branch: Option<String>,
    runtime: Option<String>,
    platform: Option<String>,
    cursor: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

#[handler]
pub async fn timeline(
    req: &Request,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> Response {
    let (project_id, project) = match load(&signed, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let services = &signed.services;
    let caller = Caller::User(signed.user.clone());
    let branches = match services.releases.branches(&caller, &project_id).await {
        Ok(branches) => branches,
        Err(error) => return error_page(error),
    };
    let filters = TimelineQuery {
        branch: non_empty(query.branch),
        runtime: non_empty(query.runtime),
        platform: non_empty(query.platform),
        cursor: non_empty(query.cursor),
    };
    let request = HistoryRequest {
        branch: filters.branch.clone(),
        runtime_version: filters.runtime.clone(),
        platform: filters.platform.clone(),
        cursor: filters.cursor.clone(),
        limit: Some(PAGE_SIZE),
    };
    let history = match services
        .releases
        .history(&caller, &project_id, &request)
        .await
    {
        Ok(history) => history,
        Err(error) => return error_page(error),
    };
    let publish_ids: Vec<PublishId> = history
        .updates
        .iter()
        .map(|group| group.publish_id.clone())
        .collect();
    let insights: Vec<Option<application::UpdateInsights>> = match services
        .insights
        .insights_of_page(&signed.user, &project_id, &publish_ids)
        .await
    {
        Ok(page) => page.into_iter().map(Some).collect(),
        Err(_) => vec![None; publish_ids.len()],
    };
    let mut runtimes: Vec<String> = branches
        .iter()
        .flat_map(|branch| {
            branch
                .latest
                .iter()
                .map(|update| update.runtime_version.clone())
        })
        .collect();
    runtimes.sort();
    runtimes.dedup();
    let here = req
        .original_uri()
        .path_and_query()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| project_path(&id, Tab::Updates));
    let sections = sections(&history.updates);
    page(
        &signed,
        "Updates",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Updates,
        }),
        html! {
            @if branches.is_empty() {
                (empty_state("No updates yet", html! {
                    ol {
                        li { a href=(project_path(&id, Tab::Keys)) { "Create an API key" } " for your release pipeline." }
                        li { "Point your app at this server: the " a href=(project_path(&id, Tab::Setup)) { "Setup" } " tab has the app.json lines." }
                        li { "Publish from your Expo project:" }
                    }
                    (copyable("empty-publish-command", "Publish command", &format!(
                        "EXPO_UPDATES_URL={} EXPO_UPDATES_PROJECT={} EXPO_UPDATES_API_KEY=<key> \\\n  expo-updates-server publish --dir dist --branch main --message \"First update\"",
                        server_url(&signed), id
                    )))
                    p.hint data-refresh="3" { "This page looks for new updates every few seconds and shows the first one as soon as it is published." }
                }))
            } @else {
                (filter_form(&id, &filters, &branches, &runtimes))
                @if sections.is_empty() {
                    p { "No update matches these filters." }
                }
                @for section in &sections {
                    section.timeline aria-labelledby=(section.heading_id) {
                        h2 id=(section.heading_id) {
                            "Branch " code { (section.branch) } " · runtime " code { (section.runtime) }
                        }
                        (rollback_form(&signed, &id, section.branch, section.runtime, &here))
                        @for (group, insight) in section.entries.iter().map(|&index| (&history.updates[index], &insights[index])) {
                            (update_card(&signed, &id, group, insight.as_ref(), &here))
                        }
                    }
                }
                @if let Some(cursor) = &history.next_cursor {
                    p {
                        a.button.secondary href=(older_link(&id, &filters, cursor)) { "Older updates" }
                    }
                }
            }
        },
    )
}

/// Consecutive publishes grouped by branch and runtime version, in the
/// order the newest of each appears.
struct Section<'a> {
    branch: &'a str,
    runtime: &'a str,
    heading_id: String,
    entries: Vec<usize>,
}

fn sections(groups: &[UpdateGroup]) -> Vec<Section<'_>> {
    let mut sections: Vec<Section<'_>> = Vec::new();
    for (index, group) in groups.iter().enumerate() {
        let branch = group.branch.as_str();
        let runtime = group.runtime_version.as_str();
        match sections
            .iter_mut()
            .find(|section| section.branch == branch && section.runtime == runtime)
        {
            Some(section) => section.entries.push(index),
            None => {
                let heading_id = format!("section-{}", sections.len());
                sections.push(Section {
                    branch,
                    runtime,
                    heading_id,
                    entries: vec![index],
                });
            }
        }
    }
    sections
}

fn filter_form(
    id: &str,
    filters: &TimelineQuery,
    branches: &[application::BranchSummary],
    runtimes: &[String],
) -> Markup {
    let selected = |value: &Option<String>, option: &str| value.as_deref() == Some(option);
    html! {
        form.filters.card method="get" action=(project_path(id, Tab::Updates)) aria-label="Filter updates" {
            div {
                label for="filter-branch" { "Branch" }
                select id="filter-branch" name="branch" {
                    option value="" { "All branches" }
                    @for branch in branches {
                        option value=(branch.name) selected[selected(&filters.branch, &branch.name)] { (branch.name) }
                    }
                }
            }
            div {
                label for="filter-runtime" { "Runtime version" }
                select id="filter-runtime" name="runtime" {
                    option value="" { "All runtime versions" }
                    @for runtime in runtimes {
                        option value=(runtime) selected[selected(&filters.runtime, runtime)] { (runtime) }
                    }
                }
            }
            div {
                label for="filter-platform" { "Platform" }
                select id="filter-platform" name="platform" {
                    option value="" { "All platforms" }
                    option value="ios" selected[selected(&filters.platform, "ios")] { "iOS" }
                    option value="android" selected[selected(&filters.platform, "android")] { "Android" }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
    }
}

fn older_link(id: &str, filters: &TimelineQuery, cursor: &str) -> String {
    let mut pairs = vec![("cursor", cursor)];
    for (name, value) in [
        ("branch", &filters.branch),
        ("runtime", &filters.runtime),
        ("platform", &filters.platform),
    ] {
        if let Some(value) = value {
            pairs.push((name, value.as_str()));
        }
    }
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    format!("{}?{query}", project_path(id, Tab::Updates))
}

fn rollback_form(signed: &Signed, id: &str, branch: &str, runtime: &str, here: &str) -> Markup {
    html! {
        form.inline method="post" action={(project_path(id, Tab::Updates)) "/rollback"} {
            (csrf_field(signed))
            input type="hidden" name="branch" value=(branch);
            input type="hidden" name="runtime" value=(runtime);
            input type="hidden" name="back" value=(here);
            button.secondary type="submit" { "Roll back to embedded…" }
        }
    }
}

fn platforms(group: &UpdateGroup) -> String {
    group
        .platforms
        .iter()
        .map(|platform| platform.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(group: &UpdateGroup) -> String {
    let message = group.message.as_deref().unwrap_or("(no message)");
    format!(
        "“{message}” ({}, branch {}, runtime {}, {})",
        short(group.publish_id.as_str()),
        group.branch.as_str(),
        group.runtime_version,
        platforms(group)
    )
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn update_card(
    signed: &Signed,
    id: &str,
    group: &UpdateGroup,
    insights: Option<&application::UpdateInsights>,
    here: &str,
) -> Markup {
    let rollout = group.rollout.value();
    let action = |what: &str| {
        format!(
            "{}/updates/{}/{what}",
            project_path(id, Tab::Updates),
            group.publish_id
        )
    };
    let is_rollback = group.kind == UpdateKind::Rollback;
    let slider_id = format!("rollout-{}", group.publish_id);
    let output_id = format!("rollout-value-{}", group.publish_id);
    let title_id = format!("update-{}", group.publish_id);
    html! {
        article.card.update.rollback[is_rollback] aria-labelledby=(title_id) data-update-id=(group.publish_id.as_str()) {
            h3 id=(title_id) {
                @if is_rollback { "Roll back to embedded" } @else { (group.message.as_deref().unwrap_or("(no message)")) }
            }
            p.meta {
                (time(&group.created_at))
                " · by " (group.published_by.as_ref().map_or("unknown", |actor| actor.name.as_str()))
                " · " (platforms(group))
                " · id " code { (group.publish_id.as_str()) }
                @if let Some(source) = &group.republished_from { " · republished from " code { (short(source)) } }
            }
            p {
                @if rollout == 100 {
                    span.badge { "rollout 100 %" }
                } @else if rollout == 0 {
                    span.badge.halted { "halted (0 %)" }
                } @else {
                    span.badge.partial { "rollout " (rollout) " %" }
                }
            }
            @if let Some(insights) = insights { (insight_view(insights, group.publish_id.as_str())) }
            div.actions {
                @if !is_rollback {
                    form.inline method="post" action=(action("rollout")) {
                        (csrf_field(signed))
                        input type="hidden" name="back" value=(here);
                        div {
                            label for=(slider_id) { "Rollout " output id=(output_id) for=(slider_id) { (rollout) " %" } }
                            input id=(slider_id) type="range" name="percentage" min="0" max="100" step="1" value=(rollout) data-output=(output_id);
                        }
                        button type="submit" { "Set rollout" }
                    }
                    @if rollout > 0 {
                        form.inline method="post" action=(action("rollout")) {
                            (csrf_field(signed))
                            input type="hidden" name="back" value=(here);
                            input type="hidden" name="percentage" value="0";
                            input type="hidden" name="halt" value="yes";
                            button.secondary type="submit" { "Halt" }
                        }
                    }
                }
                form.inline method="post" action=(action("republish")) {
                    (csrf_field(signed))
                    input type="hidden" name="back" value=(here);
                    button.secondary type="submit" { "Republish (roll back to this)" }
                }
                form.inline method="post" action=(action("delete")) {
                    (csrf_field(signed))
                    input type="hidden" name="back" value=(here);
                    button.secondary type="submit" { "Delete" }
                }
            }
        }
    }
}

/// The totals over every platform, and the checks of each of the last
/// days as a small bar chart.
fn insight_view(insights: &application::UpdateInsights, publish_id: &str) -> Markup {
    let total = |pick: fn(&InsightSummary) -> u64| insights.totals.iter().map(pick).sum::<u64>();
    let mut days: Vec<(NaiveDate, u64)> = Vec::new();
    for day in &insights.days {
        let Some(date) = day.day else { continue };
        match days.iter_mut().find(|(known, _)| *known == date) {
            Some((_, checks)) => *checks += day.checks,
            None => days.push((date, day.checks)),
        }
    }
    days.sort();
    let days: Vec<(NaiveDate, u64)> = days.into_iter().rev().take(CHART_DAYS).rev().collect();
    let peak = days
        .iter()
        .map(|(_, checks)| *checks)
        .max()
        .unwrap_or(0)
        .max(1);
    let summary = days
        .iter()
        .map(|(day, checks)| format!("{day}: {checks}"))
        .collect::<Vec<_>>()
        .join(", ");
    let chart_label = format!("Checks per day: {summary}");
    html! {
        ul.stats aria-label="Insights" data-insights=(publish_id) {
            li { strong data-stat="checks" { (total(|s| s.checks)) } " checks" }
            li { strong data-stat="devices" { (total(|s| s.unique_devices)) } " devices" }
            li { strong data-stat="downloads" { (total(|s| s.launch_asset_downloads)) } " downloads" }
            li { strong data-stat="failures" { (total(|s| s.failure_reports)) } " failures" }
        }
        @if !days.is_empty() {
            p.chart-caption aria-hidden="true" { "Checks per day, last " (days.len()) " day(s)" }
            svg.chart role="img" aria-label=(chart_label) width="280" height="48" viewBox="0 0 280 48" {
                title { (chart_label) }
                @for (index, (_, checks)) in days.iter().enumerate() {
                    @let height = (checks * 44).div_ceil(peak).max(1);
                    rect x=(index * 20 + 2) y=(46 - height) width="16" height=(height) {}
                }
            }
        }
    }
}

/// Where an action returns to: the page it was sent from, when that is a
/// page of this project.
fn back_to(id: &str, back: Option<&str>) -> String {
    let project = project_path(id, Tab::Updates);
    back.filter(|path| {
        is_local(path)
            && path
                .strip_prefix(project.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    })
    .map(str::to_owned)
    .unwrap_or(project)
}

#[derive(Deserialize)]
pub struct RolloutForm {
    #[serde(default)]
    percentage: String,
    halt: Option<String>,
    back: Option<String>,
    confirmed: Option<String>,
}

#[handler]
pub async fn change_rollout(
    req: &Request,
    Path((id, update)): Path<(String, String)>,
    action: Action<RolloutForm>,
) -> Response {
    let Action { signed, form } = action;
    let back = back_to(&id, form.back.as_deref());
    let Ok(percentage) = form.percentage.trim().parse::<i64>() else {
        return refused(
            req,
            &back,
            application::AppError::Invalid(
                "The rollout must be a whole number from 0 to 100.".to_owned(),
            ),
        );
    };
    let caller = Caller::User(signed.user.clone());
    if !is_confirmed(form.confirmed.as_deref()) {
        let group = match load_update(&signed, &caller, &id, &update).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        let halting = form.halt.is_some();
        let from = group.rollout.value();
        let mut changes = vec![format!(
            "Rollout of {} goes from {from} % to {percentage} %.",
            describe(&group)
        )];
        changes.push(if i64::from(from) < percentage {
            "More devices get this update on their next check; devices that have it keep it.".to_owned()
        } else {
            "Devices outside the new percentage get the branch's previous update on their next check; devices that already run this update keep it until then.".to_owned()
        });
        return confirm(
            &signed,
            &id,
            Tab::Updates,
            Confirmation {
                title: if halting {
                    "Halt this rollout?"
                } else {
                    "Change the rollout?"
                },
                changes,
                action: req.original_uri().path().to_owned(),
                fields: vec![
                    ("percentage", percentage.to_string()),
                    ("back", back.clone()),
                ],
                button: if halting {
                    "Halt rollout"
                } else {
                    "Change rollout"
                },
                cancel: back,
                danger: halting,
            },
        )
        .await;
    }
    let result = async {
        let (project, update) = (ids::project(&id)?, ids::update(&update)?);
        signed
            .services
            .releases
            .set_rollout(&caller, &project, &update, percentage)
            .await
    }
    .await;
    outcome(req, &back, result, |group| {
        format!(
            "Rollout of {} is now {} %.",
            describe(&group),
            group.rollout.value()
        )
    })
}

async fn load_update(
    signed: &Signed,
    caller: &Caller,
    id: &str,
    update: &str,
) -> Result<UpdateGroup, Response> {
    let found = async {
        let (project, update) = (ids::project(id)?, ids::update(update)?);
        signed
            .services
            .releases
            .get(caller, &project, &update)
            .await
    };
    found.await.map_err(error_page)
}

#[derive(Deserialize)]
pub struct PlainAction {
    back: Option<String>,
    confirmed: Option<String>,
}

#[handler]
pub async fn republish(
    req: &Request,
    Path((id, update)): Path<(String, String)>,
    action: Action<PlainAction>,
) -> Response {
    let Action { signed, form } = action;
    let back = back_to(&id, form.back.as_deref());
    let caller = Caller::User(signed.user.clone());
    if !is_confirmed(form.confirmed.as_deref()) {
        let group = match load_update(&signed, &caller, &id, &update).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        return confirm(
            &signed,
            &id,
            Tab::Updates,
            Confirmation {
                title: "Republish this update?",
                changes: vec![
                    format!("A copy of {} becomes the newest update of branch {}, at 100 %.", describe(&group), group.branch.as_str()),
                    "Devices on that branch and runtime version get it on their next check, instead of the updates published after it.".to_owned(),
                ],
                action: req.original_uri().path().to_owned(),
                fields: vec![("back", back.clone())],
                button: "Republish",
                cancel: back,
                danger: false,
            },
        )
        .await;
    }
    let request = RepublishRequest::default();
    let result = async {
        let (project, update) = (ids::project(&id)?, ids::update(&update)?);
        signed
            .services
            .publish
            .republish(&caller, &project, &update, &request)
            .await
    }
    .await;
    outcome(req, &back, result, |published| {
        format!("Republished as {}.", published.publish_id)
    })
}

#[handler]
pub async fn delete_update(
    req: &Request,
    Path((id, update)): Path<(String, String)>,
    action: Action<PlainAction>,
) -> Response {
    let Action { signed, form } = action;
    let back = back_to(&id, form.back.as_deref());
    let caller = Caller::User(signed.user.clone());
    if !is_confirmed(form.confirmed.as_deref()) {
        let group = match load_update(&signed, &caller, &id, &update).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        return confirm(
            &signed,
            &id,
            Tab::Updates,
            Confirmation {
                title: "Delete this update?",
                changes: vec![
                    format!("{} is deleted, with its history entry.", describe(&group)),
                    "Devices get the branch's previous update on their next check. This cannot be undone.".to_owned(),
                ],
                action: req.original_uri().path().to_owned(),
                fields: vec![("back", back.clone())],
                button: "Delete update",
                cancel: back,
                danger: true,
            },
        )
        .await;
    }
    let result = async {
        let (project, publish) = (ids::project(&id)?, ids::update(&update)?);
        signed
            .services
            .releases
            .delete(&caller, &project, &publish)
            .await
    }
    .await;
    outcome(req, &back, result, |()| {
        format!("Update {} deleted.", short(&update))
    })
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    branch: String,
    #[serde(default)]
    runtime: String,
    back: Option<String>,
    confirmed: Option<String>,
}

#[handler]
pub async fn roll_back(
    req: &Request,
    Path(id): Path<String>,
    action: Action<RollbackForm>,
) -> Response {
    let Action { signed, form } = action;
    let back = back_to(&id, form.back.as_deref());
    if !is_confirmed(form.confirmed.as_deref()) {
        return confirm(
            &signed,
            &id,
            Tab::Updates,
            Confirmation {
                title: "Roll back to the embedded update?",
                changes: vec![
                    format!(
                        "Devices on branch {} with runtime version {}, on every platform, go back to the update built into their app on their next check.",
                        form.branch, form.runtime
                    ),
                    "Publishing or republishing an update afterwards rolls them forward again."
                        .to_owned(),
                ],
                action: req.original_uri().path().to_owned(),
                fields: vec![
                    ("branch", form.branch.clone()),
                    ("runtime", form.runtime.clone()),
                    ("back", back.clone()),
                ],
                button: "Roll back to embedded",
                cancel: back,
                danger: true,
            },
        ).await;
    }
    let request = RollbackRequest {
        runtime_version: form.runtime.clone(),
        platforms: None,
        branch: Some(form.branch.clone()),
        message: Some("Rolled back to embedded from the dashboard".to_owned()),
    };
    let caller = Caller::User(signed.user.clone());
    let result = async {
        let project = ids::project(&id)?;
        signed
            .services
            .publish
            .rollback(&caller, &project, &request)
            .await
    }
    .await;
    outcome(req, &back, result, |_| {
        format!(
            "Branch {} (runtime {}) now rolls devices back to their embedded update.",
            form.branch, form.runtime
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_return_only_to_pages_of_their_project() {
        let project = project_path("p1", Tab::Updates);
        assert_eq!(
            back_to("p1", Some("/dashboard/projects/p1?branch=main")),
            "/dashboard/projects/p1?branch=main"
        );
        assert_eq!(back_to("p1", Some("/dashboard/projects/p2")), project);
        assert_eq!(back_to("p1", Some("/dashboard/projects/p10")), project);
        assert_eq!(back_to("p1", Some("https://evil.example/")), project);
        assert_eq!(back_to("p1", None), project);
    }
}
