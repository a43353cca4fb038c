//! The server binary as a child process, and the HTTP calls tests make against it
//! (blocking: these tests run no runtime of their own), plus `psql` and `sqlite3` for what
//! the server stored.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};

use super::{BINARY, free_port};

/// The HTTP client of these tests: no proxy, a minute at most per request.
pub fn http() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A running server (`serve`); killed (SIGKILL) and reaped on drop, its log printed when the
/// test fails.
pub struct Server {
    child: Child,
    pub port: u16,
    /// `http://127.0.0.1:<port>`, also its `PUBLIC_URL`.
    pub url: String,
    log: PathBuf,
    /// The data directory of [`Server::start_fresh`].
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `serve` with `env` on a cleared environment and test defaults (`HOST`, `PORT`
    /// and `PUBLIC_URL` on a free port, no background collection, rate limits out of the
    /// way; `env` overrides them) and waits for `/readyz`. Its output is appended to `log`.
    pub fn start<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)], log: &Path) -> Server {
        Self::spawn(env, log, None)
    }

    /// [`Server::start`] on a data directory of its own (removed on drop), logging into it.
    pub fn start_fresh<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_owned();
        let mut command_env: Vec<(&OsStr, &OsStr)> = vec![("DATA_DIR".as_ref(), dir.as_ref())];
        command_env.extend(
            env.iter()
                .map(|(key, value)| (key.as_ref(), value.as_ref())),
        );
        Self::spawn(&command_env, &dir.join("server.log"), Some(data))
    }

    fn spawn<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        env: &[(K, V)],
        log: &Path,
        data: Option<tempfile::TempDir>,
    ) -> Server {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("PUBLIC_URL", &url)
            // Collections happen when the test asks for them.
            .env("GC_INTERVAL_SECONDS", "0")
            // Stored copies stay as the publish made them: a test that looks
            // at storage sees no background recompression (its own env may
            // turn it on).
            .env("BEST_COMPRESSION", "false")
            .env("RATE_LIMIT_AUTH_PER_MINUTE", "1000000")
            .env("RATE_LIMIT_PUBLISH_PER_MINUTE", "1000000")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::from(output.try_clone().unwrap()))
            .stderr(Stdio::from(output))
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            port,
            url,
            log: log.to_owned(),
            _data: data,
        };
        let started = Instant::now();
        loop {
            let ready = http()
                .get(format!("{}/readyz", server.url))
                .timeout(Duration::from_secs(5))
                .send()
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "the server exited ({status}) at start-up:\n{}",
                    server.log()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server was not ready within 30 s:\n{}",
                server.log()
            );
            sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET or POST with a JSON body; the status and the JSON answer.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = http().request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
    }

    /// Registers `name` (`<name>@example.com`); returns the session token.
    pub fn register(&self, name: &str) -> String {
        let (status, body) = self.post(
            "/api/auth/register",
            None,
            &json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "password": "correct-horse-battery",
            }),
        );
        assert_eq!(status, 201, "register: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// A project of `token`'s user and an API key for it: (project id, secret).
    pub fn project_with_key(&self, token: &str, slug: &str) -> (String, String) {
        let (status, project) = self.post(
            "/api/projects",
            Some(token),
            &json!({ "name": slug, "slug": slug }),
        );
        assert_eq!(status, 201, "create project: {project}");
        let project_id = project["id"].as_str().unwrap().to_owned();
        let (status, key) = self.post(
            &format!("/api/projects/{project_id}/keys"),
            Some(token),
            &json!({ "name": "ci" }),
        );
        assert_eq!(status, 201, "create key: {key}");
        (project_id, key["secret"].as_str().unwrap().to_owned())
    }

    /// Logs in; the user id on success, `None` on a 401.
    pub fn login(&self, login: &str, password: &str) -> Option<String> {
        let body = serde_json::json!({ "login": login, "password": password });
        let (status, answer) =
            self.call(reqwest::Method::POST, "/api/auth/login", None, Some(&body));
        match status {
            200 => Some(answer["user"]["id"].as_str().unwrap().to_owned()),
            401 => None,
            other => panic!("login answered {other}: {answer}"),
        }
    }

    /// An update check; the status, the part name (`manifest`/`directive`; `manifest` for
    /// an answer in JSON, as to `accept: application/json`), its JSON, and its
    /// `expo-signature` part header.
    pub fn check(&self, project: &str, headers: &[(&str, &str)]) -> UpdateCheck {
        let mut request = http().get(format!("{}/api/updates/{project}/manifest", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().unwrap().to_vec();
        if status != 200 {
            return UpdateCheck {
                status,
                part: String::new(),
                json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                raw: body,
                signature: None,
            };
        }
        if !content_type.starts_with("multipart/") {
            return UpdateCheck {
                status,
                part: "manifest".to_owned(),
                json: serde_json::from_slice(&body).unwrap(),
                raw: body,
                signature: None,
            };
        }
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .unwrap()
            .trim_matches('"')
            .to_owned();
        let text = String::from_utf8(body).unwrap();
        let first = text
            .split(&format!("--{boundary}"))
            .map(str::trim_start)
            .find(|part| !part.is_empty() && !part.starts_with("--"))
            .unwrap();
        let (head, content) = first.split_once("\r\n\r\n").unwrap();
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let disposition = header("content-disposition").unwrap_or_default();
        let part = disposition
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned();
        UpdateCheck {
            status,
            part,
            json: serde_json::from_str(content).unwrap(),
            raw: content.as_bytes().to_vec(),
            signature: header("expo-signature"),
        }
    }

    /// The bytes at a URL of this server (absolute, or a path).
    pub fn download(&self, url: &str) -> (u16, Vec<u8>) {
        let url = match url.starts_with("http") {
            true => url.to_owned(),
            false => format!("{}{url}", self.url),
        };
        let response = http().get(url).send().unwrap();
        (
            response.status().as_u16(),
            response.bytes().unwrap().to_vec(),
        )
    }

    /// SIGKILL (`Child::kill` on Unix): no shutdown, no flush, nothing.
    pub fn kill_9(mut self) {
        use std::os::unix::process::ExitStatusExt;
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "not killed by SIGKILL: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("the log of the server at {}:\n{}", self.url, self.log());
        }
    }
}

/// One update check's answer.
#[derive(Debug)]
pub struct UpdateCheck {
    pub status: u16,
    /// `manifest` or `directive`.
    pub part: String,
    pub json: Value,
    /// The part's body bytes: what the signature covers.
    pub raw: Vec<u8>,
    pub signature: Option<String>,
}

/// Runs one statement with `psql`; its rows as `|`-separated text.
pub fn psql(url: &str, statement: &str) -> String {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-c", statement])
        .output()
        .expect("run psql (PostgreSQL tests never skip)");
    assert!(
        output.status.success(),
        "psql {statement:?} against {url} failed (is PostgreSQL running? set TEST_POSTGRES_URL): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs one query with the `sqlite3` command-line shell, read-only.
pub fn sqlite(path: &Path, query: &str) -> String {
    let output = Command::new("sqlite3")
        .arg("-readonly")
        .arg(path)
        .arg(query)
        .output()
        .expect("run sqlite3 (apt-get install sqlite3)");
    assert!(
        output.status.success(),
        "sqlite3 {query:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
