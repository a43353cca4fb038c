//! Channels: which branch each channel serves, and splits of a channel's
//! devices between two branches.

use application::{Caller, ChannelChange, Patch};
use domain::release::Channel;
use maud::html;
use poem::web::Path;
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::confirm::{Confirmation, confirm, is_confirmed};
use super::html::{ProjectPage, Tab, csrf_field, project_path, time};
use super::projects::load;
use super::session::{Action, Signed, outcome, refused};
use super::shell::error_page;
use crate::ids;

fn describe(channel: &Channel) -> String {
    match &channel.split {
        Some(split) => format!(
            "branch {} for {} % of devices, branch {} for the rest",
            split.branch.as_str(),
            split.percentage.value(),
            channel.branch.as_str()
        ),
        None => format!("branch {}", channel.branch.as_str()),
    }
}

#[handler]
pub async fn channel_list(signed: Signed, Path(id): Path<String>) -> Response {
    let (project_id, project) = match load(&signed, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let caller = Caller::User(signed.user.clone());
    let channels = match signed
        .services
        .releases
        .list_channels(&caller, &project_id)
        .await
    {
        Ok(channels) => channels,
        Err(error) => return error_page(error),
    };
    let branches: Vec<String> = signed
        .services
        .releases
        .branches(&caller, &project_id)
        .await
        .map(|branches| branches.into_iter().map(|branch| branch.name).collect())
        .unwrap_or_default();
    let base = project_path(&id, Tab::Channels);
    super::html::page(
        &signed,
        "Channels",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Channels,
        }),
        html! {
            section.card aria-labelledby="channels-title" {
                h2 id="channels-title" { "Channels" }
                p.hint { "A build asks for updates on one channel (its " code { "expo-channel-name" } " header). A channel without a mapping serves the branch of the same name; " code { "main" } " when the header is absent." }
                @if channels.is_empty() {
                    p { "No channel has a mapping yet: every channel serves its namesake branch." }
                } @else {
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Channel" } th scope="col" { "Serves" } th scope="col" { "Changed" } th scope="col" { "Actions" } } }
                            tbody {
                                @for channel in &channels {
                                    @let name = channel.name.as_str();
                                    tr data-channel=(name) {
                                        td { code { (name) } }
                                        td { (describe(channel)) }
                                        td { (time(&channel.updated_at)) }
                                        td {
                                            @if channel.split.is_some() {
                                                form.inline method="post" action={(base) "/unsplit"} {
                                                    (csrf_field(&signed))
                                                    input type="hidden" name="channel" value=(name);
                                                    button.secondary type="submit" { "End split" }
                                                }
                                            }
                                            form.inline method="post" action={(base) "/delete"} {
                                                (csrf_field(&signed))
                                                input type="hidden" name="channel" value=(name);
                                                button.secondary type="submit" { "Remove mapping" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            datalist id="branch-names" { @for branch in &branches { option value=(branch) {} } }
            div.row {
                section.card aria-labelledby="point-title" {
                    h2 id="point-title" { "Point a channel at a branch" }
                    form method="post" action={(base) "/point"} {
                        (csrf_field(&signed))
                        p {
                            label for="point-channel" { "Channel" }
                            input id="point-channel" type="text" name="channel" required placeholder="production";
                        }
                        p {
                            label for="point-branch" { "Branch" }
                            input id="point-branch" type="text" name="branch" required list="branch-names" placeholder="main";
                        }
                        button type="submit" { "Point channel" }
                    }
                }
                section.card aria-labelledby="split-title" {
                    h2 id="split-title" { "Split a channel between two branches" }
                    form method="post" action={(base) "/split"} {
                        (csrf_field(&signed))
                        p {
                            label for="split-channel" { "Channel" }
                            input id="split-channel" type="text" name="channel" required placeholder="production";
                        }
                        p {
                            label for="split-branch" { "Second branch" }
                            input id="split-branch" type="text" name="branch" required list="branch-names" placeholder="staging";
                        }
                        p {
                            label for="split-percentage" { "Share of devices on the second branch " output id="split-value" for="split-percentage" { "10 %" } }
                            input id="split-percentage" type="range" name="percentage" min="0" max="100" step="1" value="10" data-output="split-value";
                        }
                        button type="submit" { "Split channel" }
                    }
                }
            }
        },
    )
}

/// Makes a confirmed change and returns to the channels page, saying what
/// the channel serves now.
async fn apply(
    req: &Request,
    signed: &Signed,
    id: &str,
    name: &str,
    change: &ChannelChange,
) -> Response {
    let caller = Caller::User(signed.user.clone());
    let result = async {
        let project = ids::project(id)?;
        signed
            .services
            .releases
            .change_channel(&caller, &project, name, change)
            .await
    }
    .await;
    outcome(req, &project_path(id, Tab::Channels), result, |channel| {
        format!(
            "Channel {} now serves {}.",
            channel.name.as_str(),
            describe(&channel)
        )
    })
}

async fn current(signed: &Signed, id: &str, name: &str) -> Option<Channel> {
    let caller = Caller::User(signed.user.clone());
    let project = ids::project(id).ok()?;
    signed
        .services
        .releases
        .list_channels(&caller, &project)
        .await
        .ok()?
        .into_iter()
        .find(|channel| channel.name.as_str() == name)
}

#[derive(Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    branch: String,
    percentage: Option<String>,
    confirmed: Option<String>,
}

async fn confirm_change(
    req: &Request,
    signed: &Signed,
    id: &str,
    form: &ChannelForm,
    after: String,
) -> Response {
    let before = current(signed, id, form.channel.trim()).await.map_or_else(
        || format!("branch {}", form.channel.trim()),
        |channel| describe(&channel),
    );
    let mut fields = vec![
        ("channel", form.channel.clone()),
        ("branch", form.branch.clone()),
    ];
    if let Some(percentage) = &form.percentage {
        fields.push(("percentage", percentage.clone()));
    }
    confirm(
        signed,
        id,
        Tab::Channels,
        Confirmation {
            title: "Change this channel?",
            changes: vec![
                format!("Channel {} now serves {before}.", form.channel.trim()),
                format!("After this change it serves {after}, from every device's next check."),
            ],
            action: req.original_uri().path().to_owned(),
            fields,
            button: "Change channel",
            cancel: project_path(id, Tab::Channels),
            danger: false,
        },
    )
    .await
}

#[handler]
pub async fn point_channel(
    req: &Request,
    Path(id): Path<String>,
    action: Action<ChannelForm>,
) -> Response {
    let Action { signed, form } = action;
    let name = form.channel.trim().to_owned();
    let branch = form.branch.trim().to_owned();
    if !is_confirmed(form.confirmed.as_deref()) {
        return confirm_change(req, &signed, &id, &form, format!("branch {branch}")).await;
    }
    let change = ChannelChange {
        branch: Some(branch),
        rollout_branch: Patch::Clear,
        rollout_percentage: Patch::Clear,
    };
    apply(req, &signed, &id, &name, &change).await
}

#[handler]
pub async fn split_channel(
    req: &Request,
    Path(id): Path<String>,
    action: Action<ChannelForm>,
) -> Response {
    let Action { signed, form } = action;
    let name = form.channel.trim().to_owned();
    let second = form.branch.trim().to_owned();
    let back = project_path(&id, Tab::Channels);
    let Some(percentage) = form
        .percentage
        .as_deref()
        .and_then(|p| p.trim().parse::<i64>().ok())
    else {
        return refused(
            req,
            &back,
            application::AppError::Invalid(
                "The share must be a whole number from 0 to 100.".to_owned(),
            ),
        );
    };
    if !is_confirmed(form.confirmed.as_deref()) {
        let main = current(&signed, &id, &name).await.map_or_else(
            || name.clone(),
            |channel| channel.branch.as_str().to_owned(),
        );
        let after =
            format!("branch {second} for {percentage} % of devices, branch {main} for the rest");
        return confirm_change(req, &signed, &id, &form, after).await;
    }
    let change = ChannelChange {
        branch: None,
        rollout_branch: Patch::Set(second),
        rollout_percentage: Patch::Set(percentage),
    };
    apply(req, &signed, &id, &name, &change).await
}

#[derive(Deserialize)]
pub struct NamedChannel {
    #[serde(default)]
    channel: String,
    confirmed: Option<String>,
}

#[handler]
pub async fn end_split(
    req: &Request,
    Path(id): Path<String>,
    action: Action<NamedChannel>,
) -> Response {
    let Action { signed, form } = action;
    let name = form.channel.trim().to_owned();
    let back = project_path(&id, Tab::Channels);
    if !is_confirmed(form.confirmed.as_deref()) {
        let Some(channel) = current(&signed, &id, &name).await else {
            return refused(
                req,
                &back,
                application::AppError::NotFound(format!("Channel {name} has no mapping.")),
            );
        };
        return confirm(
            &signed,
            &id,
            Tab::Channels,
            Confirmation {
                title: "End this split?",
                changes: vec![
                    format!("Channel {name} now serves {}.", describe(&channel)),
                    format!(
                        "After this change every device on it gets branch {}.",
                        channel.branch.as_str()
                    ),
                ],
                action: req.original_uri().path().to_owned(),
                fields: vec![("channel", name.clone())],
                button: "End split",
                cancel: back,
                danger: false,
            },
        )
        .await;
    }
    let change = ChannelChange {
        branch: None,
        rollout_branch: Patch::Clear,
        rollout_percentage: Patch::Clear,
    };
    apply(req, &signed, &id, &name, &change).await
}

#[handler]
pub async fn delete_mapping(
    req: &Request,
    Path(id): Path<String>,
    action: Action<NamedChannel>,
) -> Response {
    let Action { signed, form } = action;
    let name = form.channel.trim().to_owned();
    let back = project_path(&id, Tab::Channels);
    if !is_confirmed(form.confirmed.as_deref()) {
        let before = current(&signed, &id, &name)
            .await
            .map_or_else(|| "no mapping".to_owned(), |channel| describe(&channel));
        return confirm(
            &signed,
            &id,
            Tab::Channels,
            Confirmation {
                title: "Remove this channel's mapping?",
                changes: vec![
                    format!("Channel {name} now serves {before}."),
                    format!("Afterwards it serves branch {name} (its namesake)."),
                ],
                action: req.original_uri().path().to_owned(),
                fields: vec![("channel", name.clone())],
                button: "Remove mapping",
                cancel: back,
                danger: true,
            },
        )
        .await;
    }
    let caller = Caller::User(signed.user.clone());
    let result = async {
        let project = ids::project(&id)?;
        signed
            .services
            .releases
            .delete_channel(&caller, &project, &name)
            .await
    }
    .await;
    outcome(req, &back, result, |()| {
        format!("Channel {name} now serves branch {name}.")
    })
}
