//! The `controller:` section of `keelson.yaml`, and loading the config file
//! with the same diagnostics as specs (file:line:col, snippet, hint).
//!
//! ```yaml
//! controller:
//!   repository:
//!     url: https://git.example.com/platform/environments.git   # or a local path
//!     branch: main
//!     auth: { tokenFile: /etc/keelson/git-token }              # or sshKeyFile, tokenEnv
//!   pollInterval: 1m
//!   driftInterval: 5m
//!   selfHeal: true
//!   listen: 0.0.0.0:8080
//!   webhook: { secretEnv: KEELSON_WEBHOOK_SECRET }
//!   commitStatus: { provider: github, repository: platform/environments, tokenEnv: GITHUB_TOKEN }
//! ```
//! Credentials are always read from files or environment variables named
//! here, never from the environments repository.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::engine::Settings;
use super::previews::PreviewSettings;
use super::report::{Provider, ReporterConfig};
use crate::config::Config;
use crate::diag::{self, Diagnostic};
use crate::source::{Auth, RepoSpec, Secret};
use crate::yaml::Node;

/// The `controller:` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerConfig {
    /// The environments repository.
    pub repository: RepositoryConfig,
    /// How often to fetch (`30s`, `1m`, ...). Default `1m`.
    #[serde(default)]
    pub poll_interval: Option<String>,
    /// How often to re-check every environment for drift. Default `5m`.
    #[serde(default)]
    pub drift_interval: Option<String>,
    /// Re-apply when drift is found (otherwise only report it).
    #[serde(default)]
    pub self_heal: bool,
    /// Environments reconciled at the same time. Default 4.
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// Address of the HTTP server. Default `127.0.0.1:8080`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Longest wait between retries of a failing environment. Default `5m`.
    #[serde(default)]
    pub max_backoff: Option<String>,
    /// Push webhooks (`POST /hooks/git`).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Commit statuses posted back to GitHub or GitLab.
    #[serde(default)]
    pub commit_status: Option<CommitStatusConfig>,
    /// Share the environments between replicas through Leases.
    #[serde(default)]
    pub leases: Option<super::lease_config::LeasesConfig>,
}

/// Where the environments live.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryConfig {
    /// URL or local path (relative paths are relative to the config file).
    pub url: String,
    /// Branch to follow. Default `main`.
    #[serde(default)]
    pub branch: Option<String>,
    /// Credentials.
    #[serde(default)]
    pub auth: Option<GitAuthConfig>,
    /// Watch a local repository for changes (default true; ignored for remote URLs).
    #[serde(default)]
    pub watch: Option<bool>,
}

/// Git credentials, by reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitAuthConfig {
    /// HTTPS user name (default `x-access-token`).
    #[serde(default)]
    pub username: Option<String>,
    /// File holding an HTTPS token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding an HTTPS token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// SSH private key file.
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    /// Environment variable holding the SSH key's passphrase.
    #[serde(default)]
    pub ssh_passphrase_env: Option<String>,
}

/// Webhook verification secret, by reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfig {
    /// File holding the secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// Where to post commit statuses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitStatusConfig {
    /// `github` or `gitlab`.
    pub provider: String,
    /// API base URL (default `https://api.github.com` / `https://gitlab.com/api/v4`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// `owner/name` on GitHub; project id or `group/project` path on GitLab.
    pub repository: String,
    /// File holding the API token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the API token.
    #[serde(default)]
    pub token_env: Option<String>,
}

pub use crate::config::ConfigError;

/// A loaded config file and the controller settings it describes.
#[derive(Debug)]
pub struct Loaded {
    /// The whole file.
    pub config: Config,
    /// The controller section, resolved (durations parsed, secrets read).
    pub settings: Settings,
}

/// Load `path` and resolve its `controller:` section into [`Settings`].
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = crate::config::read_config(path)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut checker = Checker {
        file: path,
        node: &file.node,
        base,
        diags: Vec::new(),
    };
    let settings = checker.settings(&file.config);
    match settings {
        Some(settings) if checker.diags.is_empty() => Ok(Loaded {
            config: file.config,
            settings,
        }),
        _ => Err(ConfigError {
            rendered: diag::render(&checker.diags, &file.sources, false),
            diagnostics: checker.diags,
        }),
    }
}

pub(super) struct Checker<'a> {
    file: &'a Path,
    node: &'a Node,
    base: &'a Path,
    diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn error(&mut self, pointer: &str, message: impl Into<String>, help: &str) {
        let span = self.node.locate(pointer, false);
        self.diags
            .push(Diagnostic::error("config", self.file, Some(span), message).with_help(help));
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    pub(super) fn duration(
        &mut self,
        pointer: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
        let Some(text) = value else { return default };
        match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_millis(100) => d,
            Ok(_) => {
                self.error(
                    pointer,
                    format!("`{text}` is too short"),
                    "use at least 100ms, e.g. `30s` or `1m`",
                );
                default
            }
            Err(e) => {
                self.error(
                    pointer,
                    format!("`{text}` is not a duration: {e}"),
                    "write e.g. `30s`, `1m`, `5m` or `1h`",
                );
                default
            }
        }
    }

    /// Read a secret named by a file or an environment variable (exactly one).
    fn secret(
        &mut self,
        pointer: &str,
        file: Option<&PathBuf>,
        env: Option<&String>,
        what: &str,
    ) -> Option<Secret> {
        match (file, env) {
            (Some(_), Some(_)) => {
                self.error(
                    pointer,
                    format!("both a file and a variable are given for the {what}"),
                    "keep one of them",
                );
                None
            }
            (Some(f), None) => match std::fs::read_to_string(self.resolve(f)) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::new(v)),
                Ok(_) => {
                    self.error(
                        pointer,
                        format!("the {what} file {} is empty", f.display()),
                        "write the secret into it",
                    );
                    None
                }
                Err(e) => {
                    self.error(
                        pointer,
                        format!("cannot read the {what} file {}: {e}", f.display()),
                        "check the path and its permissions",
                    );
                    None
                }
            },
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::new(v)),
                _ => {
                    self.error(
                        pointer,
                        format!("environment variable `{var}` (the {what}) is not set"),
                        "export it before starting keelson",
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn settings(&mut self, config: &Config) -> Option<Settings> {
        if config.kind != "Config" || config.api_version != "keelson.dev/v1" {
            self.error(
                "/kind",
                format!(
                    "expected apiVersion keelson.dev/v1 and kind Config, found {} {}",
                    config.api_version, config.kind
                ),
                "is this the keelson config file? Pass it with `--config PATH`",
            );
        }
        let Some(c) = &config.controller else {
            self.error(
                "",
                "the config has no `controller:` section",
                "add `controller: { repository: { url: ... } }` (see docs/controller.md)",
            );
            return None;
        };
        let r = &c.repository;
        if r.url.trim().is_empty() {
            self.error(
                "/controller/repository/url",
                "the repository URL is empty",
                "give an https://, ssh:// or file:// URL, or a local path",
            );
        }
        if crate::source::redact_url(&r.url) != r.url {
            self.error(
                "/controller/repository/url",
                "the repository URL carries a password or token",
                "remove it from the URL and set `auth.tokenFile` or `auth.tokenEnv`; the config file is no place for secrets",
            );
        }
        let branch = r.branch.clone().unwrap_or_else(|| "main".into());
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            self.error(
                "/controller/repository/branch",
                format!("`{branch}` is not a valid branch name"),
                "use the branch name as in `git branch`, e.g. `main`",
            );
        }
        let mut auth = Auth::default();
        if let Some(a) = &r.auth {
            let p = "/controller/repository/auth";
            auth.username = a.username.clone();
            auth.token = self.secret(p, a.token_file.as_ref(), a.token_env.as_ref(), "Git token");
            if let Some(key) = &a.ssh_key_file {
                let key = self.resolve(key);
                if !key.is_file() {
                    self.error(
                        &format!("{p}/sshKeyFile"),
                        format!("SSH key file {} does not exist", key.display()),
                        "check the path",
                    );
                }
                auth.ssh_key = Some(key);
            }
            auth.ssh_passphrase =
                self.secret(p, None, a.ssh_passphrase_env.as_ref(), "SSH key passphrase");
        }
        let mut url = r.url.clone();
        let spec = RepoSpec {
            url: url.clone(),
            branch: branch.clone(),
            auth: Auth::default(),
        };
        if let Some(local) = spec.local_path() {
            let resolved = self.resolve(&local);
            if !resolved.exists() {
                self.error(
                    "/controller/repository/url",
                    format!("local repository {} does not exist", resolved.display()),
                    "give an existing path or a remote URL",
                );
            }
            url = std::fs::canonicalize(&resolved)
                .unwrap_or(resolved)
                .display()
                .to_string();
        }
        let poll = self.duration(
            "/controller/pollInterval",
            c.poll_interval.as_deref(),
            Duration::from_secs(60),
        );
        let drift = self.duration(
            "/controller/driftInterval",
            c.drift_interval.as_deref(),
            Duration::from_secs(300),
        );
        let max_backoff = self.duration(
            "/controller/maxBackoff",
            c.max_backoff.as_deref(),
            Duration::from_secs(300),
        );
        let listen_text = c.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().unwrap_or_else(|_| {
            self.error(
                "/controller/listen",
                format!("`{listen_text}` is not an address:port"),
                "write e.g. `0.0.0.0:8080` or `127.0.0.1:8080`",
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let max_parallel = c.max_parallel.unwrap_or(4);
        if max_parallel == 0 {
            self.error(
                "/controller/maxParallel",
                "maxParallel must be at least 1",
                "use e.g. 4",
            );
        }
        let webhook_secret = c.webhook.as_ref().and_then(|w| {
            let s = self.secret(
                "/controller/webhook",
                w.secret_file.as_ref(),
                w.secret_env.as_ref(),
                "webhook secret",
            );
            if s.is_none() && w.secret_file.is_none() && w.secret_env.is_none() {
                self.error(
                    "/controller/webhook",
                    "the webhook has no secret",
                    "set `secretFile` or `secretEnv`; unsigned webhooks are never accepted",
                );
            }
            s
        });
        let commit_status = c
            .commit_status
            .as_ref()
            .and_then(|cs| self.commit_status(cs));
        let state_dir = match &config.state_dir {
            Some(d) => self.resolve(d),
            None => self.base.join(".keelson"),
        };
        let mut settings = Settings::new(RepoSpec { url, branch, auth }, state_dir);
        settings.poll_interval = poll;
        settings.drift_interval = drift;
        settings.max_backoff = max_backoff;
        settings.self_heal = c.self_heal;
        settings.max_parallel = max_parallel.max(1);
        settings.listen = listen;
        settings.webhook_secret = webhook_secret;
        settings.commit_status = commit_status;
        settings.watch_local = r.watch.unwrap_or(true);
        settings.leases = c.leases.as_ref().and_then(|l| self.leases(l, config));
        settings.previews = self.previews(config);
        // A bad backup schedule is a config error here, before anything runs.
        for (name, cluster) in &config.clusters {
            let Some(etcd) = &cluster.etcd else { continue };
            if let Err(e) = crate::backup::schedule::validate(name, etcd) {
                use crate::backup::schedule::ScheduleError as E;
                let field = match e {
                    E::Cron { .. } | E::NoNextRun { .. } => "/schedule",
                    E::NoEndpoints(_) => "/endpoints",
                    E::Retain(_) => "/retain",
                    E::TimeZone { .. } => "/timeZone",
                    _ => "",
                };
                self.error(
                    &format!(
                        "/clusters/{}/etcd{field}",
                        name.replace('~', "~0").replace('/', "~1")
                    ),
                    e.to_string(),
                    "see docs/backup.md for the etcd settings",
                );
            }
        }
        if config.clusters.values().any(|c| c.etcd.is_some()) {
            // Snapshots live under the same state directory as the status
            // store, resolved against the config file rather than the cwd.
            let mut backups = config.clone();
            backups.state_dir = Some(settings.state_dir.clone());
            settings.backups = Some(std::sync::Arc::new(backups));
        }
        Some(settings)
    }

    /// The preview loop's settings: the forge client (its token read now,
    /// so a missing one is a config error at its key) and the poll interval.
    /// `None` (no loop) unless the config has a `previews:` or `forge:`
    /// section.
    fn previews(&mut self, config: &Config) -> Option<std::sync::Arc<PreviewSettings>> {
        if config.previews.is_none() && config.forge.is_none() {
            return None;
        }
        let interval = self.duration(
            "/previews/pollInterval",
            config
                .previews
                .as_ref()
                .and_then(|p| p.poll_interval.as_deref()),
            super::previews::DEFAULT_POLL,
        );
        let forge = match &config.forge {
            Some(f) => match crate::forge::Forge::from_config(f, self.base) {
                Ok(forge) => Some(forge),
                Err(e) => {
                    self.error(
                        "/forge",
                        e.to_string(),
                        "see the README's \"Preview environments\" for the forge section",
                    );
                    None
                }
            },
            None => None,
        };
        Some(std::sync::Arc::new(PreviewSettings {
            forge,
            interval,
            config: std::sync::Arc::new(config.clone()),
            options: crate::reconcile::Options::default(),
        }))
    }

    fn commit_status(&mut self, cs: &CommitStatusConfig) -> Option<ReporterConfig> {
        let p = "/controller/commitStatus";
        let provider = match cs.provider.as_str() {
            "github" => Provider::GitHub,
            "gitlab" => Provider::GitLab,
            other => {
                self.error(
                    &format!("{p}/provider"),
                    format!("unknown provider `{other}`"),
                    "use `github` or `gitlab`",
                );
                return None;
            }
        };
        if provider == Provider::GitHub
            && cs.repository.split('/').filter(|s| !s.is_empty()).count() != 2
        {
            self.error(
                &format!("{p}/repository"),
                format!("`{}` is not `owner/name`", cs.repository),
                "write the GitHub repository as `owner/name`",
            );
        }
        let token = self.secret(
            p,
            cs.token_file.as_ref(),
            cs.token_env.as_ref(),
            "commit status token",
        );
        if token.is_none() && cs.token_file.is_none() && cs.token_env.is_none() {
            self.error(
                p,
                "commitStatus has no token",
                "set `tokenFile` or `tokenEnv`",
            );
        }
        let api_url = cs
            .api_url
            .clone()
            .unwrap_or_else(|| provider.default_api_url().to_string());
        Some(ReporterConfig {
            provider,
            api_url,
            repository: cs.repository.clone(),
            token: token?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keelson.yaml");
        std::fs::write(&path, text).unwrap();
        std::fs::create_dir(dir.path().join("repo")).unwrap();
        load(&path)
    }

    #[test]
    fn defaults_apply() {
        let l = load_text("controller:\n  repository:\n    url: repo\n").unwrap();
        let s = &l.settings;
        assert_eq!(s.poll_interval, Duration::from_secs(60));
        assert_eq!(s.drift_interval, Duration::from_secs(300));
        assert_eq!(s.repo.branch, "main");
        assert!(s.repo.local_path().unwrap().ends_with("repo"));
        assert!(!s.self_heal);
    }

    #[test]
    fn secrets_are_read_from_files_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("repo")).unwrap();
        std::fs::write(dir.path().join("token"), "tok-very-secret\n").unwrap();
        std::fs::write(dir.path().join("hook"), "hook-very-secret").unwrap();
        let path = dir.path().join("keelson.yaml");
        std::fs::write(
            &path,
            "controller:\n  repository:\n    url: repo\n    auth: { tokenFile: token }\n  webhook: { secretFile: hook }\n",
        )
        .unwrap();
        let l = load(&path).unwrap();
        let token = l.settings.repo.auth.token.as_ref().unwrap();
        assert_eq!(
            token.expose(),
            "tok-very-secret",
            "trailing newline trimmed"
        );
        let shown = format!("{:?}", l.settings);
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn unknown_fields_point_at_the_key_with_a_hint() {
        let e = load_text("controller:\n  repository:\n    url: repo\n  pollIntervall: 1m\n")
            .unwrap_err();
        let d = &e.diagnostics[0];
        assert_eq!((d.line, d.column), (4, 3), "{}", e.rendered);
        assert_eq!(d.help.as_deref(), Some("did you mean `pollInterval`?"));
    }

    #[test]
    fn a_bad_backup_schedule_is_a_config_error() {
        let e = load_text(
            "clusters:\n  prod:\n    etcd:\n      endpoints: [\"http://127.0.0.1:2379\"]\n      schedule: \"every day\"\ncontroller:\n  repository:\n    url: repo\n",
        )
        .unwrap_err();
        let d = &e.diagnostics[0];
        assert_eq!((d.line, d.column), (5, 17), "{}", e.rendered);
        assert!(d.message.contains("every day"), "{}", e.rendered);
    }

    #[test]
    fn another_kind_of_file_is_refused() {
        let e = load_text("apiVersion: keelson.dev/v1\nkind: Environment\ncontroller:\n  repository:\n    url: repo\n")
            .unwrap_err();
        assert_eq!(e.diagnostics[0].line, 2, "{}", e.rendered);
    }

    #[test]
    fn bad_values_are_all_reported_with_positions() {
        let e = load_text(
            "controller:\n  repository:\n    url: repo\n  pollInterval: soon\n  listen: nowhere\n  webhook: {}\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = e.diagnostics.iter().map(|d| d.line).collect();
        assert_eq!(lines, [4, 5, 6], "{}", e.rendered);
        assert!(
            e.rendered.contains("`soon` is not a duration"),
            "{}",
            e.rendered
        );
    }
}
