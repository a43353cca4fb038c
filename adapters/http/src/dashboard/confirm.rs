//! Confirmation pages: what an action will change, asked before it is
//! taken.

use maud::html;
use poem::Response;

use super::html::{ProjectPage, Tab, csrf_field, page};
use super::projects::load;
use super::session::Signed;

/// What a confirmation page asks about.
pub struct Confirmation {
    pub title: &'static str,
    /// Each change, in words, as the user will see it happen.
    pub changes: Vec<String>,
    pub action: String,
    /// The fields to send again, with `confirmed=yes`.
    pub fields: Vec<(&'static str, String)>,
    pub button: &'static str,
    pub cancel: String,
    pub danger: bool,
}

/// A page that names what an action will change and asks to go ahead.
/// Works without JavaScript; the action is taken only by its button.
pub async fn confirm(
    signed: &Signed,
    project_id: &str,
    tab: Tab,
    confirmation: Confirmation,
) -> Response {
    let project = match load(signed, project_id).await {
        Ok((_, project)) => project,
        Err(response) => return response,
    };
    page(
        signed,
        confirmation.title,
        Some(ProjectPage {
            id: project_id,
            name: &project.name,
            tab,
        }),
        html! {
            section.card.confirm aria-labelledby="confirm-title" {
                h2 id="confirm-title" { (confirmation.title) }
                ul { @for change in &confirmation.changes { li { (change) } } }
                form method="post" action=(confirmation.action) {
                    (csrf_field(signed))
                    @for (name, value) in &confirmation.fields {
                        input type="hidden" name=(name) value=(value);
                    }
                    input type="hidden" name="confirmed" value="yes";
                    div.actions {
                        button.danger[confirmation.danger] type="submit" autofocus { (confirmation.button) }
                        a.button.secondary href=(confirmation.cancel) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// Whether a form was sent from its confirmation page.
pub fn is_confirmed(field: Option<&str>) -> bool {
    field == Some("yes")
}
