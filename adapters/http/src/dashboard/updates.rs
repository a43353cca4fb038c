//! The actions on updates, posted from the timeline: rollout percentage,
//! halt, republish, roll back to embedded, delete.

use application::{Caller, RepublishRequest, RollbackRequest, UpdateGroup};
use poem::web::Path;
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::confirm::{Confirmation, confirm, is_confirmed};
use super::html::{Tab, project_path};
use super::session::{Action, Signed, is_local, outcome, refused};
use super::shell::error_page;
use super::timeline::{platforms, short};
use crate::ids;

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
