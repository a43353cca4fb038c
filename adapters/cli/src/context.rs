//! Who a command speaks as and to which project: the options and
//! environment, then the stored login session.

use serde_json::Value;

use crate::api::{Api, segment};
use crate::args::ClientOptions;
use crate::error::{CliError, CliResult};
use crate::session::{self, Session};

pub struct Context {
    pub options: ClientOptions,
}

impl Context {
    pub fn new(options: ClientOptions) -> Self {
        Self { options }
    }

    /// The URL given by option or environment, checked.
    fn explicit_url(&self) -> CliResult<Option<String>> {
        let Some(url) = self.options.url.as_deref().filter(|url| !url.is_empty()) else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "the server URL {url:?} must start with http:// or https://"
            )));
        }
        Ok(Some(url.trim_end_matches('/').to_owned()))
    }

    /// Where `login` and `register` go: the URL given, else the last login's.
    pub fn login_url(&self) -> CliResult<String> {
        if let Some(url) = self.explicit_url()? {
            return Ok(url);
        }
        session::load()?.map(|session| session.url).ok_or_else(|| {
            CliError::Usage(
                "no server URL: pass --url or set EXPO_UPDATES_URL (e.g. http://localhost:8080)"
                    .to_owned(),
            )
        })
    }

    /// The stored session, read only by the commands that need it, so a
    /// CI runner with an API key never depends on a config directory.
    pub fn session(&self) -> CliResult<Option<Session>> {
        session::load()
    }

    /// A client speaking as the logged-in user.
    pub fn user_api(&self) -> CliResult<Api> {
        let session = self.session()?.ok_or_else(|| {
            CliError::Usage("not logged in: run `expo-updates-server login` first".to_owned())
        })?;
        let url = match self.explicit_url()? {
            Some(url) => url,
            None => session.url.clone(),
        };
        if session.url.trim_end_matches('/') != url {
            return Err(CliError::Usage(format!(
                "logged in to {}, not {url}: run `expo-updates-server login --url {url}`",
                session.url
            )));
        }
        Api::new(&url, Some(session.token))
    }

    /// A client speaking with the project API key, when one is configured.
    /// The URL must be given with it: a key is never sent to the server of
    /// some earlier login.
    pub fn key_api(&self) -> CliResult<Option<Api>> {
        let Some(key) = self
            .options
            .api_key
            .as_deref()
            .filter(|key| !key.is_empty())
        else {
            return Ok(None);
        };
        let url = self.explicit_url()?.ok_or_else(|| {
            CliError::Usage(
                "an API key needs the server URL with it: pass --url or set EXPO_UPDATES_URL"
                    .to_owned(),
            )
        })?;
        Ok(Some(Api::new(&url, Some(key.to_owned()))?))
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
