//! Who a command speaks as and to which project: the options and
//! environment, then the stored login session.

use serde_json::Value;

use crate::api::{Api, segment};
use crate::args::ClientOptions;
use crate::error::{CliError, CliResult};
use crate::session::{self, Session};

pub struct Context {
    pub options: ClientOptions,
    pub session: Option<Session>,
}

impl Context {
    pub fn load(options: ClientOptions) -> CliResult<Self> {
        Ok(Self {
            options,
            session: session::load()?,
        })
    }

    /// The server URL: the option or environment, else the login's.
    pub fn url(&self) -> CliResult<String> {
        let url = self
            .options
            .url
            .clone()
            .filter(|url| !url.is_empty())
            .or_else(|| self.session.as_ref().map(|session| session.url.clone()))
            .ok_or_else(|| {
                CliError::Usage(
                    "no server URL: pass --url or set EXPO_UPDATES_URL (e.g. http://localhost:8080)"
                        .to_owned(),
                )
            })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "the server URL {url:?} must start with http:// or https://"
            )));
        }
        Ok(url.trim_end_matches('/').to_owned())
    }

    /// A client speaking as the logged-in user.
    pub fn user_api(&self) -> CliResult<Api> {
        let url = self.url()?;
        let session = self.session.as_ref().ok_or_else(|| {
            CliError::Usage("not logged in: run `expo-updates-server login` first".to_owned())
        })?;
        if session.url.trim_end_matches('/') != url {
            return Err(CliError::Usage(format!(
                "logged in to {}, not {url}: run `expo-updates-server login --url {url}`",
                session.url
            )));
        }
        Api::new(&url, Some(session.token.clone()))
    }

    /// A client speaking with the project API key, when one is configured.
    pub fn key_api(&self) -> CliResult<Option<Api>> {
        match self
            .options
            .api_key
            .as_deref()
            .filter(|key| !key.is_empty())
        {
            Some(key) => Ok(Some(Api::new(&self.url()?, Some(key.to_owned()))?)),
            None => Ok(None),
        }
    }

    /// The project given by option or environment.
    pub fn project(&self) -> CliResult<String> {
        self.options
            .project
            .clone()
            .filter(|project| !project.is_empty())
            .ok_or_else(|| {
                CliError::Usage(
                    "no project: pass --project or set EXPO_UPDATES_PROJECT (the id `projects list` shows)"
                        .to_owned(),
                )
            })
    }

    /// The project of an API key: the configured one, else the key's own.
    pub async fn key_project(&self, api: &Api) -> CliResult<String> {
        if let Ok(project) = self.project() {
            return Ok(project);
        }
        let key = api.get("/api/keys/current").await?;
        key.get("projectId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                CliError::Other("the server did not say which project the key is for".to_owned())
            })
    }

    /// A client and route prefix for the release routes both credentials
    /// may use: `/api/updates/{project}` with an API key, else
    /// `/api/projects/{id}` as the logged-in user.
    pub async fn release_api(&self) -> CliResult<(Api, String)> {
        match self.key_api()? {
            Some(api) => {
                let project = self.key_project(&api).await?;
                Ok((api, format!("/api/updates/{}", segment(&project))))
            }
            None => {
                let api = self.user_api()?;
                Ok((api, format!("/api/projects/{}", segment(&self.project()?))))
            }
        }
    }

    /// The user's client and `/api/projects/{id}` for member-only routes.
    pub fn project_api(&self) -> CliResult<(Api, String)> {
        let api = self.user_api()?;
        Ok((api, format!("/api/projects/{}", segment(&self.project()?))))
    }
}
