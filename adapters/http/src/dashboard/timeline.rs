//! The updates timeline: per branch and runtime version, filterable by
//! platform, with each update's insights. The actions its forms post to are
//! in `updates`.

use application::{HistoryRequest, InsightSummary, TimelinePage, UpdateGroup};
use chrono::NaiveDate;
use domain::update::UpdateKind;
use maud::{Markup, html};
use poem::web::{Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::html::{ProjectPage, Tab, copyable, csrf_field, empty_state, page, project_path, time};
use super::projects::server_url;
use super::session::Signed;
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
    let project_id = match ids::project(&id) {
        Ok(project_id) => project_id,
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
    let TimelinePage {
        project,
        branches,
        history,
        insights,
    } = match signed
        .services
        .timeline(&signed.user, &project_id, &request)
        .await
    {
        Ok(page) => page,
        Err(error) => return error_page(error),
    };
    let insights_unavailable = insights.is_none();
    let insights: Vec<Option<application::UpdateInsights>> = match insights {
        Some(insights) => insights.into_iter().map(Some).collect(),
        None => vec![None; history.updates.len()],
    };
    let mut runtimes: Vec<String> = branches
        .iter()
        .flat_map(|branch| {
            branch
                .latest
                .iter()
                .map(|update| update.runtime_version.to_string())
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
                @if insights_unavailable {
                    p.flash.bad role="status" { "Insights are unavailable right now." }
                }
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

pub(super) fn platforms(group: &UpdateGroup) -> String {
    group
        .platforms
        .iter()
        .map(|platform| platform.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn short(id: &str) -> &str {
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
                @if let Some(source) = &group.republished_from { " · republished from " code { (short(source.as_str())) } }
                @if !is_rollback { " · " a href=(action("patches")) { "bundle patches" } }
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
            @if total(|s| s.patch_downloads) > 0 {
                li { strong data-stat="patch-downloads" { (total(|s| s.patch_downloads)) } " as patches, saving " (saved_bytes(total(|s| s.bytes_saved))) }
            }
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

/// Bytes saved, as people read them.
fn saved_bytes(bytes: u64) -> String {
    match bytes {
        0..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}
