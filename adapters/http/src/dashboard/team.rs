//! Who may work on a project (members and their roles) and what may publish
//! to it (API keys, whose secret is shown once).

use application::{CreatedApiKey, MemberRef};
use domain::member::Role;
use maud::html;
use poem::http::{HeaderValue, header};
use poem::web::Path;
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::confirm::{Confirmation, confirm, is_confirmed};
use super::html::{ProjectPage, Tab, copyable, csrf_field, empty_state, page, project_path, time};
use super::projects::load;
use super::session::{Action, Signed, outcome, refused};
use super::shell::error_page;
use crate::ids;

#[handler]
pub async fn member_list(signed: Signed, Path(id): Path<String>) -> Response {
    let (project_id, project) = match load(&signed, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let members = match signed
        .services
        .members
        .list(&signed.user, &project_id)
        .await
    {
        Ok(members) => members,
        Err(error) => return error_page(error),
    };
    let base = project_path(&id, Tab::Members);
    page(
        &signed,
        "Members",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Members,
        }),
        html! {
            section.card aria-labelledby="members-title" {
                h2 id="members-title" { "Members" }
                p.hint { "Owners manage members, keys and code signing, and may delete updates; members publish and steer releases." }
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "User" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Actions" } } }
                        tbody {
                            @for member in &members {
                                @let user_id = &member.membership.user_id;
                                @let role_id = format!("role-{user_id}");
                                tr data-member=(member.username) {
                                    td { (member.username) @if **user_id == *signed.user.id { " (you)" } }
                                    td { (member.email) }
                                    td {
                                        form.inline method="post" action={(base) "/" (user_id) "/role"} {
                                            (csrf_field(&signed))
                                            label.visually-hidden for=(role_id) { "Role of " (member.username) }
                                            select id=(role_id) name="role" aria-label={"Role of " (member.username)} {
                                                option value="member" selected[member.membership.role == Role::Member] { "member" }
                                                option value="owner" selected[member.membership.role == Role::Owner] { "owner" }
                                            }
                                            button.secondary type="submit" { "Change role" }
                                        }
                                    }
                                    td {
                                        form.inline method="post" action={(base) "/" (user_id) "/remove"} {
                                            (csrf_field(&signed))
                                            input type="hidden" name="username" value=(member.username);
                                            button.secondary type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="add-member-title" {
                h2 id="add-member-title" { "Add a member" }
                form method="post" action=(base) {
                    (csrf_field(&signed))
                    div.grid {
                        div {
                            label for="member-who" { "Username or email" }
                            input id="member-who" type="text" name="who" required;
                        }
                        div {
                            label for="member-role" { "Role" }
                            select id="member-role" name="role" {
                                option value="member" { "member" }
                                option value="owner" { "owner" }
                            }
                        }
                        div { button type="submit" { "Add member" } }
                    }
                    p.hint { "They need an account on this server first." }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct AddMemberForm {
    #[serde(default)]
    who: String,
    #[serde(default)]
    role: String,
}

#[handler]
pub async fn add_member(
    req: &Request,
    Path(id): Path<String>,
    action: Action<AddMemberForm>,
) -> Response {
    let Action { signed, form } = action;
    let who = form.who.trim().to_owned();
    let reference = if who.contains('@') {
        MemberRef::Email(who.clone())
    } else {
        MemberRef::Username(who.clone())
    };
    let result = async {
        let project = ids::project(&id)?;
        signed
            .services
            .members
            .add(&signed.user, &project, reference, &form.role)
            .await
    }
    .await;
    outcome(
        req,
        &project_path(&id, Tab::Members),
        result,
        |membership| format!("{who} added as {}.", membership.role.as_str()),
    )
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

#[handler]
pub async fn change_role(
    req: &Request,
    Path((id, user)): Path<(String, String)>,
    action: Action<RoleForm>,
) -> Response {
    let Action { signed, form } = action;
    let result = async {
        let (project, user) = (ids::project(&id)?, ids::member(&user)?);
        signed
            .services
            .members
            .change_role(&signed.user, &project, &user, &form.role)
            .await
    }
    .await;
    outcome(
        req,
        &project_path(&id, Tab::Members),
        result,
        |membership| format!("Role changed to {}.", membership.role.as_str()),
    )
}

#[derive(Deserialize)]
pub struct RemoveMemberForm {
    #[serde(default)]
    username: String,
    confirmed: Option<String>,
}

#[handler]
pub async fn remove_member(
    req: &Request,
    Path((id, user)): Path<(String, String)>,
    action: Action<RemoveMemberForm>,
) -> Response {
    let Action { signed, form } = action;
    let back = project_path(&id, Tab::Members);
    if !is_confirmed(form.confirmed.as_deref()) {
        let (project_id, project) = match load(&signed, &id).await {
            Ok(loaded) => loaded,
            Err(response) => return response,
        };
        // Named from the server's data, not the form's.
        let username = match signed
            .services
            .members
            .list(&signed.user, &project_id)
            .await
        {
            Ok(members) => members
                .into_iter()
                .find(|member| *member.membership.user_id == *user)
                .map(|member| member.username),
            Err(error) => return error_page(error),
        };
        let Some(username) = username else {
            return error_page(application::error::not_found::member());
        };
        return confirm(
            &signed,
            &id,
            Tab::Members,
            Confirmation {
                title: "Remove this member?",
                changes: vec![format!(
                    "{username} loses access to {}: its updates, channels and keys.",
                    project.name
                )],
                action: req.original_uri().path().to_owned(),
                fields: vec![("username", username.clone())],
                button: "Remove member",
                cancel: back,
                danger: true,
            },
        )
        .await;
    }
    let result = async {
        let (project, user) = (ids::project(&id)?, ids::member(&user)?);
        signed
            .services
            .members
            .remove(&signed.user, &project, &user)
            .await
    }
    .await;
    outcome(req, &back, result, |()| {
        format!("{} removed.", form.username)
    })
}

#[handler]
pub async fn key_list(signed: Signed, Path(id): Path<String>) -> Response {
    keys_page(signed, id, None).await
}

async fn keys_page(signed: Signed, id: String, created: Option<CreatedApiKey>) -> Response {
    let (project_id, project) = match load(&signed, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let keys = match signed
        .services
        .api_keys
        .list(&signed.user, &project_id)
        .await
    {
        Ok(keys) => keys,
        Err(error) => return error_page(error),
    };
    let base = project_path(&id, Tab::Keys);
    let mut response = page(
        &signed,
        "API keys",
        Some(ProjectPage {
            id: &id,
            name: &project.name,
            tab: Tab::Keys,
        }),
        html! {
            @if let Some(created) = &created {
                section.card.secret role="status" aria-labelledby="secret-title" {
                    h2 id="secret-title" { "Key “" (created.key.name) "” created" }
                    p { strong { "Copy the secret now: it is shown this once." } " The server keeps only its hash. Reloading this page would create another key." }
                    (copyable("new-key-secret", "API key secret", &created.secret))
                    p { "Publish with it: " a href=(project_path(&id, Tab::Setup)) { "the command is on the Setup tab" } "." }
                }
            }
            @if keys.is_empty() {
                (empty_state("No API keys yet", html! {
                    p { "Release pipelines and the CLI publish with an API key. Create one below, then follow the " a href=(project_path(&id, Tab::Setup)) { "Setup" } " tab's command." }
                }))
            } @else {
                section.card aria-labelledby="keys-title" {
                    h2 id="keys-title" { "API keys" }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Name" } th scope="col" { "Starts with" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Actions" } } }
                            tbody {
                                @for key in &keys {
                                    @let rename_id = format!("rename-{}", key.id);
                                    tr data-key=(key.name) {
                                        td { (key.name) }
                                        td { code { (key.key_prefix) "…" } }
                                        td { (time(&key.created_at)) }
                                        td { @match &key.last_used_at { Some(at) => (time(at)), None => "never" } }
                                        td {
                                            form.inline method="post" action={(base) "/" (key.id) "/rename"} {
                                                (csrf_field(&signed))
                                                input id=(rename_id) type="text" name="name" value=(key.name) required aria-label={"New name for " (key.name)};
                                                button.secondary type="submit" { "Rename" }
                                            }
                                            form.inline method="post" action={(base) "/" (key.id) "/revoke"} {
                                                (csrf_field(&signed))
                                                input type="hidden" name="name" value=(key.name);
                                                button.secondary type="submit" { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="create-key-title" {
                h2 id="create-key-title" { "Create an API key" }
                form.inline method="post" action=(base) {
                    (csrf_field(&signed))
                    div {
                        label for="key-name" { "Name" }
                        input id="key-name" type="text" name="name" placeholder="ci" maxlength="100";
                    }
                    button type="submit" { "Create key" }
                }
            }
        },
    );
    if created.is_some() {
        // A page holding a secret is never kept, not even in history.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[derive(Deserialize)]
pub struct KeyNameForm {
    #[serde(default)]
    name: String,
    confirmed: Option<String>,
}

#[handler]
pub async fn create_key(
    req: &Request,
    Path(id): Path<String>,
    action: Action<KeyNameForm>,
) -> Response {
    let Action { signed, form } = action;
    let name = form.name.trim();
    let result = async {
        let project = ids::project(&id)?;
        signed
            .services
            .api_keys
            .create(&signed.user, &project, (!name.is_empty()).then_some(name))
            .await
    }
    .await;
    match result {
        // Shown in this answer, never in a redirect: the secret must not
        // pass through a cookie or a URL.
        Ok(created) => keys_page(signed, id, Some(created)).await,
        Err(error) => refused(req, &project_path(&id, Tab::Keys), error),
    }
}

#[handler]
pub async fn rename_key(
    req: &Request,
    Path((id, key)): Path<(String, String)>,
    action: Action<KeyNameForm>,
) -> Response {
    let Action { signed, form } = action;
    let name = form.name.trim().to_owned();
    let result = async {
        let (project, key) = (ids::project(&id)?, ids::api_key(&key)?);
        signed
            .services
            .api_keys
            .rename(&signed.user, &project, &key, &name)
            .await
    }
    .await;
    outcome(req, &project_path(&id, Tab::Keys), result, |()| {
        format!("Key renamed to {name}.")
    })
}

#[handler]
pub async fn revoke_key(
    req: &Request,
    Path((id, key)): Path<(String, String)>,
    action: Action<KeyNameForm>,
) -> Response {
    let Action { signed, form } = action;
    let back = project_path(&id, Tab::Keys);
    if !is_confirmed(form.confirmed.as_deref()) {
        // Named from the server's data, not the form's.
        let listed = async {
            let project = ids::project(&id)?;
            signed.services.api_keys.list(&signed.user, &project).await
        }
        .await;
        let name = match listed {
            Ok(keys) => keys
                .into_iter()
                .find(|stored| *stored.id == *key)
                .map(|stored| stored.name),
            Err(error) => return error_page(error),
        };
        let Some(name) = name else {
            return error_page(application::AppError::NotFound(
                "API key not found.".to_owned(),
            ));
        };
        return confirm(
            &signed,
            &id,
            Tab::Keys,
            Confirmation {
                title: "Revoke this API key?",
                changes: vec![
                    format!("Key “{name}” stops working at once."),
                    "Pipelines that publish with it get 401 until they use another key.".to_owned(),
                ],
                action: req.original_uri().path().to_owned(),
                fields: vec![("name", name.clone())],
                button: "Revoke key",
                cancel: back,
                danger: true,
            },
        )
        .await;
    }
    let result = async {
        let (project, key) = (ids::project(&id)?, ids::api_key(&key)?);
        signed
            .services
            .api_keys
            .revoke(&signed.user, &project, &key)
            .await
    }
    .await;
    outcome(req, &back, result, |()| {
        format!("Key “{}” revoked.", form.name)
    })
}
