//! One function per client subcommand: each sends a request or two over
//! [`Api`] and prints the answer. The rules live in the server.

use std::io::{BufRead, IsTerminal, Write};

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::segment;
use crate::args::{
    ChannelsCommand, KeysCommand, MembersCommand, ProjectsCommand, PublishArgs, RolloutCommand,
    UpdatesCommand,
};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{Output, field, rows, table};
use crate::publish::{self, human_bytes};
use crate::session::{self, Session};

pub async fn login(context: &Context, out: Output, username: Option<String>) -> CliResult<()> {
    let url = context.login_url()?;
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let username = match username {
        Some(username) => username,
        None if stdin_is_terminal => prompt("Username or email: ")?,
        None => {
            return Err(CliError::Usage(
                "pass --username when the password comes from stdin".to_owned(),
            ));
        }
    };
    let password = read_password(stdin_is_terminal, "Password: ")?;
    let api = crate::api::Api::new(&url, None)?;
    let session = api
        .json(
            Method::POST,
            "/api/auth/login",
            Some(&json!({ "login": username, "password": password })),
        )
        .await?;
    keep_session(out, &url, &session)
}

pub async fn register(
    context: &Context,
    out: Output,
    username: String,
    email: String,
) -> CliResult<()> {
    let url = context.login_url()?;
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let password = read_password(stdin_is_terminal, "Choose a password: ")?;
    if stdin_is_terminal && read_password(true, "Repeat it: ")? != password {
        return Err(CliError::Usage("the passwords differ".to_owned()));
    }
    let api = crate::api::Api::new(&url, None)?;
    let session = api
        .json(
            Method::POST,
            "/api/auth/register",
            Some(&json!({ "username": username, "email": email, "password": password })),
        )
        .await?;
    keep_session(out, &url, &session)
}

/// The password from a prompt that does not echo, or the first line of
/// stdin when it is not a terminal (never from a flag, which other users
/// of the machine could read).
fn read_password(stdin_is_terminal: bool, label: &str) -> CliResult<String> {
    let password = if stdin_is_terminal {
        rpassword::prompt_password(label)
            .map_err(|error| CliError::Other(format!("cannot read the password: {error}")))?
    } else {
        read_line()?
    };
    if password.is_empty() {
        return Err(CliError::Usage(
            "no password: type it at the prompt, or pipe it on stdin".to_owned(),
        ));
    }
    Ok(password)
}

/// Stores the session a login or registration answered with.
fn keep_session(out: Output, url: &str, answer: &Value) -> CliResult<()> {
    let token = answer
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::Other("the server's answer has no token".to_owned()))?;
    let user = answer.get("user").cloned().unwrap_or(Value::Null);
    let name = field(&user, "username");
    let path = session::save(&Session {
        url: url.to_owned(),
        username: name.clone(),
        token: token.to_owned(),
    })?;
    out.done(
        json!({ "url": url, "user": user }),
        &format!(
            "Logged in to {url} as {name} (session in {}).",
            path.display()
        ),
    );
    Ok(())
}

pub fn logout(out: Output) -> CliResult<()> {
    let removed = session::remove()?;
    out.done(
        json!({ "loggedOut": removed }),
        if removed {
            "Logged out."
        } else {
            "Not logged in."
        },
    );
    Ok(())
}

pub async fn whoami(context: &Context, out: Output) -> CliResult<()> {
    let mut answer = serde_json::Map::new();
    let mut lines = Vec::new();
    if context.session()?.is_some() {
        let api = context.user_api()?;
        let user = api.get("/api/auth/me").await?;
        lines.push(format!(
            "{} <{}> at {}",
            field(&user, "username"),
            field(&user, "email"),
            api.base_url()
        ));
        answer.insert("user".into(), user);
    }
    if let Some(api) = context.key_api()? {
        let key = api.get("/api/keys/current").await?;
        lines.push(format!(
            "API key {} ({}) of project {}",
            field(&key, "name"),
            field(&key, "keyPrefix"),
            field(&key, "projectId")
        ));
        answer.insert("apiKey".into(), key);
    }
    if answer.is_empty() {
        return Err(CliError::Usage(
            "not logged in and no API key: run `expo-updates-server login` or set EXPO_UPDATES_API_KEY"
                .to_owned(),
        ));
    }
    out.print(&Value::Object(answer), |_| lines.join("\n"));
    Ok(())
}

pub async fn projects(context: &Context, out: Output, command: ProjectsCommand) -> CliResult<()> {
    let api = context.user_api()?;
    match command {
        ProjectsCommand::List => {
            let projects = api.get("/api/projects").await?;
            out.print(&projects, |value| {
                table(
                    rows(value, "projects"),
                    &[("ID", "id"), ("SLUG", "slug"), ("NAME", "name"), ("CREATED", "createdAt")],
                    "No projects yet: create one with `expo-updates-server projects create <name>`.",
                )
            });
        }
        ProjectsCommand::Create { name, slug } => {
            let slug = slug.unwrap_or_else(|| slugify(&name));
            let project = api
                .json(
                    Method::POST,
                    "/api/projects",
                    Some(&json!({ "name": name, "slug": slug })),
                )
                .await?;
            out.print(&project, |project| {
                format!(
                    "Created project {} ({}): id {}\nNext: `expo-updates-server keys create --project {}`",
                    field(project, "name"),
                    field(project, "slug"),
                    field(project, "id"),
                    field(project, "id")
                )
            });
        }
    }
    Ok(())
}

/// A slug from a project name: lowercase ASCII letters and digits, runs of
/// anything else as one dash.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for character in name.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

pub async fn members(context: &Context, out: Output, command: MembersCommand) -> CliResult<()> {
    let (api, base) = context.project_api()?;
    let path = format!("{base}/users");
    match command {
        MembersCommand::List => {
            let members = api.get(&path).await?;
            out.print(&members, |value| {
                table(
                    rows(value, "members"),
                    &[
                        ("USER ID", "userId"),
                        ("USERNAME", "username"),
                        ("EMAIL", "email"),
                        ("ROLE", "role"),
                    ],
                    "No members.",
                )
            });
        }
        MembersCommand::Add { user, role } => {
            let who = if user.contains('@') {
                "email"
            } else {
                "username"
            };
            let member = api
                .json(
                    Method::POST,
                    &path,
                    Some(&json!({ who: user, "role": role.as_str() })),
                )
                .await?;
            out.print(&member, |member| {
                format!(
                    "Added {user} as {} (user id {}).",
                    field(member, "role"),
                    field(member, "userId")
                )
            });
        }
        MembersCommand::Remove { user } => {
            let members = api.get(&path).await?;
            let member = rows(&members, "members")
                .iter()
                .find(|member| {
                    // Usernames and emails compare case-insensitively, as the server does.
                    ["userId", "username", "email"]
                        .iter()
                        .filter_map(|name| member.get(*name).and_then(Value::as_str))
                        .any(|value| value.eq_ignore_ascii_case(&user))
                })
                .ok_or_else(|| {
                    CliError::NotFound(format!("{user} is not a member of this project"))
                })?;
            let user_id = field(member, "userId");
            api.json(
                Method::DELETE,
                &format!("{path}/{}", segment(&user_id)),
                None,
            )
            .await?;
            out.done(json!({ "removed": user_id }), &format!("Removed {user}."));
        }
    }
    Ok(())
}

pub async fn keys(context: &Context, out: Output, command: KeysCommand) -> CliResult<()> {
    let (api, base) = context.project_api()?;
    let path = format!("{base}/keys");
    match command {
        KeysCommand::List => {
            let keys = api.get(&path).await?;
            out.print(&keys, |value| {
                table(
                    rows(value, "keys"),
                    &[
                        ("ID", "id"),
                        ("NAME", "name"),
                        ("PREFIX", "keyPrefix"),
                        ("CREATED", "createdAt"),
                        ("LAST USED", "lastUsedAt"),
                    ],
                    "No API keys: create one with `expo-updates-server keys create --name ci`.",
                )
            });
        }
        KeysCommand::Create { name } => {
            let body = name
                .map(|name| json!({ "name": name }))
                .unwrap_or_else(|| json!({}));
            let created = api.json(Method::POST, &path, Some(&body)).await?;
            out.print(&created, |created| {
                let key = created.get("key").cloned().unwrap_or(Value::Null);
                format!(
                    "Created key {} (id {}). Its secret, shown only this once:\n{}\nUse it as EXPO_UPDATES_API_KEY with EXPO_UPDATES_PROJECT={}.",
                    field(&key, "name"),
                    field(&key, "id"),
                    field(created, "secret"),
                    field(&key, "projectId")
                )
            });
        }
        KeysCommand::Rename { key_id, name } => {
            api.json(
                Method::PATCH,
                &format!("{path}/{}", segment(&key_id)),
                Some(&json!({ "name": name })),
            )
            .await?;
            out.done(
                json!({ "id": key_id, "name": name }),
                &format!("Renamed key {key_id} to {name}."),
            );
        }
        KeysCommand::Revoke { key_id } => {
            api.json(
                Method::DELETE,
                &format!("{path}/{}", segment(&key_id)),
                None,
            )
            .await?;
            out.done(
                json!({ "revoked": key_id }),
                &format!("Revoked key {key_id}."),
            );
        }
    }
    Ok(())
}

const CHANNEL_COLUMNS: [(&str, &str); 4] = [
    ("CHANNEL", "name"),
    ("BRANCH", "branch"),
    ("ROLLOUT BRANCH", "rolloutBranch"),
    ("ROLLOUT %", "rolloutPercentage"),
];

pub async fn channels(context: &Context, out: Output, command: ChannelsCommand) -> CliResult<()> {
    let (api, base) = context.release_api().await?;
    match command {
        ChannelsCommand::List => {
            let channels = api.get(&format!("{base}/channels")).await?;
            out.print(&channels, |value| {
                table(
                    rows(value, "channels"),
                    &CHANNEL_COLUMNS,
                    "No channel mappings: each channel serves the branch of its own name.",
                )
            });
        }
        ChannelsCommand::Set {
            name,
            branch,
            rollout_branch,
            rollout_percentage,
        } => {
            let body = match rollout_branch {
                Some(rollout_branch) => json!({
                    "branch": branch,
                    "rolloutBranch": rollout_branch,
                    "rolloutPercentage": rollout_percentage,
                }),
                None => json!({ "branch": branch, "rolloutBranch": null }),
            };
            let channel = api
                .json(
                    Method::PATCH,
                    &format!("{base}/channels/{}", segment(&name)),
                    Some(&body),
                )
                .await?;
            out.print(&channel, |channel| {
                table(std::slice::from_ref(channel), &CHANNEL_COLUMNS, "")
            });
        }
    }
    Ok(())
}

const UPDATE_COLUMNS: [(&str, &str); 8] = [
    ("ID", "id"),
    ("BRANCH", "branch"),
    ("RUNTIME", "runtimeVersion"),
    ("PLATFORMS", "platforms"),
    ("KIND", "kind"),
    ("ROLLOUT %", "rolloutPercentage"),
    ("CREATED", "createdAt"),
    ("MESSAGE", "message"),
];

pub async fn updates(context: &Context, out: Output, command: UpdatesCommand) -> CliResult<()> {
    let (api, base) = context.release_api().await?;
    match command {
        UpdatesCommand::List {
            branch,
            runtime_version,
            platform,
            limit,
            cursor,
        } => {
            let mut query = vec![("limit".to_owned(), limit.to_string())];
            let filters = [
                ("branch", branch),
                ("runtimeVersion", runtime_version),
                (
                    "platform",
                    platform.map(|platform| platform.as_str().to_owned()),
                ),
                ("cursor", cursor),
            ];
            query.extend(
                filters
                    .into_iter()
                    .filter_map(|(name, value)| value.map(|value| (name.to_owned(), value))),
            );
            let query: Vec<String> = query
                .iter()
                .map(|(name, value)| format!("{name}={}", segment(value)))
                .collect();
            let page = api
                .get(&format!("{base}/updates?{}", query.join("&")))
                .await?;
            out.print(&page, |page| {
                let mut text = table(rows(page, "updates"), &UPDATE_COLUMNS, "No updates match.");
                if let Some(cursor) = page.get("nextCursor").and_then(Value::as_str) {
                    text.push_str(&format!("\nMore: --cursor {cursor}"));
                }
                text
            });
        }
        UpdatesCommand::View { update_id } => {
            let path = format!("{base}/updates/{}", segment(&update_id));
            let mut update = api.get(&path).await?;
            let patches = api.get(&format!("{path}/patches")).await?;
            if let Value::Object(fields) = &mut update {
                fields.insert("patches".into(), patches);
            }
            out.print(&update, describe_update);
        }
        UpdatesCommand::Republish {
            update_id,
            branch,
            message,
            rollout,
        } => {
            let body =
                json!({ "branch": branch, "message": message, "rolloutPercentage": rollout });
            let update = api
                .json(
                    Method::POST,
                    &format!("{base}/updates/{}/republish", segment(&update_id)),
                    Some(&without_nulls(body)),
                )
                .await?;
            out.print(&update, |update| {
                format!(
                    "Republished {update_id} as {} on branch {}.",
                    field(update, "id"),
                    field(update, "branch")
                )
            });
        }
        UpdatesCommand::Rollback {
            runtime_version,
            platform,
            branch,
            message,
        } => {
            let body = json!({
                "runtimeVersion": runtime_version,
                "platforms": platform.names(),
                "branch": branch,
                "message": message,
            });
            let published = api
                .json(
                    Method::POST,
                    &format!("{base}/rollback"),
                    Some(&without_nulls(body)),
                )
                .await?;
            out.print(&published, |published| {
                format!(
                    "Rollback {} published: devices on {runtime_version} ({}) of branch {} will run their embedded update.",
                    field(published, "updateId"),
                    field(published, "platforms"),
                    field(published, "branch")
                )
            });
        }
        UpdatesCommand::Delete { update_id } => {
            api.json(
                Method::DELETE,
                &format!("{base}/updates/{}", segment(&update_id)),
                None,
            )
            .await?;
            out.done(
                json!({ "deleted": update_id }),
                &format!("Deleted update {update_id}."),
            );
        }
    }
    Ok(())
}

pub async fn rollout(context: &Context, out: Output, command: RolloutCommand) -> CliResult<()> {
    let RolloutCommand::Set { update_id, percent } = command;
    let (api, base) = context.release_api().await?;
    let update = api
        .json(
            Method::PATCH,
            &format!("{base}/updates/{}", segment(&update_id)),
            Some(&json!({ "rolloutPercentage": percent })),
        )
        .await?;
    out.print(&update, |update| {
        format!(
            "Update {update_id} now serves {}% of devices.",
            field(update, "rolloutPercentage")
        )
    });
    Ok(())
}

pub async fn publish(context: &Context, out: Output, args: PublishArgs) -> CliResult<()> {
    let api = context.key_api()?.ok_or_else(|| {
        CliError::Usage(
            "publishing needs a project API key: set EXPO_UPDATES_API_KEY (`expo-updates-server keys create` makes one)"
                .to_owned(),
        )
    })?;
    let project = context.key_project(&api).await?;
    let mut report = publish::publish(&api, &project, &args).await?;
    let patches_path = format!(
        "/api/updates/{}/updates/{}/patches",
        segment(&project),
        segment(&field(&report, "updateId"))
    );
    let patches = match args.wait_patches {
        true => publish::wait_for_patches(&api, &patches_path).await?,
        false => api.get(&patches_path).await?,
    };
    if let Value::Object(fields) = &mut report {
        fields.insert("patches".into(), patches);
    }
    out.print(&report, |body| {
        let patches = body.get("patches").map_or_else(String::new, patch_summary);
        format!(
            "Published update {}\n  branch:          {}\n  platforms:       {}\n  runtime version: {}\n  rollout:         {}%\n  uploaded:        {} files ({}); {} files ({}) were already on the server\n  manifest URL:    {}",
            field(body, "updateId"),
            field(body, "branch"),
            field(body, "platforms"),
            field(body, "runtimeVersion"),
            field(body, "rolloutPercentage"),
            field(body, "uploadedFiles"),
            human_bytes(body.get("uploadedBytes").and_then(Value::as_u64).unwrap_or(0)),
            field(body, "reusedFiles"),
            human_bytes(body.get("reusedBytes").and_then(Value::as_u64).unwrap_or(0)),
            field(body, "manifestUrl"),
        ) + &patches
    });
    Ok(())
}

/// The bundle patches of an update in a line per platform (after a
/// publish), or nothing when bundle diffing is off.
fn patch_summary(patches: &Value) -> String {
    if patches.get("enabled").and_then(Value::as_bool) != Some(true) {
        return String::new();
    }
    let mut text = String::new();
    for platform in rows(patches, "platforms") {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for patch in rows(platform, "patches") {
            let state = field(patch, "state");
            match counts.iter_mut().find(|(known, _)| *known == state) {
                Some((_, count)) => *count += 1,
                None => counts.push((state, 1)),
            }
        }
        let summary = match counts.is_empty() {
            true => "none (no earlier bundle to patch from)".to_owned(),
            false => counts
                .iter()
                .map(|(state, count)| format!("{count} {state}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        text.push_str(&format!(
            "\n  patches ({}): {summary}",
            field(platform, "platform")
        ));
    }
    text
}

/// An update with its files, for `updates view`.
fn describe_update(update: &Value) -> String {
    let mut text = table(std::slice::from_ref(update), &UPDATE_COLUMNS, "");
    for platform in rows(update, "platformUpdates") {
        text.push_str(&format!(
            "\n\n{} (manifest id {}):\n",
            field(platform, "platform"),
            field(platform, "manifestId")
        ));
        text.push_str(&table(
            rows(platform, "assets"),
            &[
                ("PATH", "path"),
                ("TYPE", "contentType"),
                ("SIZE", "size"),
                ("LAUNCH", "isLaunchAsset"),
            ],
            "(no files)",
        ));
    }
    if let Some(patches) = update.get("patches") {
        for platform in rows(patches, "platforms") {
            let full = platform.get("fullSize").and_then(Value::as_u64);
            text.push_str(&format!(
                "\n\n{} bundle patches (full download {}):\n",
                field(platform, "platform"),
                full.map_or_else(|| "unknown".to_owned(), human_bytes)
            ));
            let described: Vec<Value> = rows(platform, "patches")
                .iter()
                .map(|patch| {
                    let size = patch.get("size").and_then(Value::as_u64);
                    let share = match (size, full) {
                        (Some(size), Some(full)) if full > 0 => {
                            format!("{}%", size * 100 / full)
                        }
                        _ => String::new(),
                    };
                    let base = field(patch, "baseBundleSha256");
                    json!({
                        "base": base.get(..12).unwrap_or(&base),
                        "state": field(patch, "state"),
                        "size": size.map(human_bytes).unwrap_or_default(),
                        "share": share,
                        "error": patch.get("error").and_then(Value::as_str).unwrap_or_default(),
                    })
                })
                .collect();
            text.push_str(&table(
                &described,
                &[
                    ("FROM BUNDLE", "base"),
                    ("STATE", "state"),
                    ("SIZE", "size"),
                    ("OF FULL", "share"),
                    ("ERROR", "error"),
                ],
                "(none: no earlier bundle to patch from)",
            ));
        }
    }
    text
}

/// Drops null fields, so the server's defaults apply to what was not given.
fn without_nulls(mut body: Value) -> Value {
    if let Value::Object(fields) = &mut body {
        fields.retain(|_, value| !value.is_null());
    }
    body
}

fn prompt(label: &str) -> CliResult<String> {
    eprint!("{label}");
    std::io::stderr().flush().ok();
    read_line()
}

/// One line from stdin, without its line ending.
fn read_line() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CliError::Other(format!("cannot read stdin: {error}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_joined_by_dashes() {
        assert_eq!(slugify("My Great App!"), "my-great-app");
        assert_eq!(slugify("  app__2 "), "app-2");
    }
}
