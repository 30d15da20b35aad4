//! A small client of the GitHub and GitLab REST APIs: what previews and
//! promotion need of a forge, and nothing more.
//!
//! - list the open merge requests of a repository, with their labels, head
//!   branch, head commit and web page (GitHub `GET /repos/{owner}/{repo}/pulls?state=open`,
//!   GitLab `GET /projects/:id/merge_requests?state=opened&labels=...`);
//! - read one merge request's state: open, closed or merged
//!   (`GET .../pulls/{number}`, `GET .../merge_requests/:iid`);
//! - open a merge request and return its web page
//!   (`POST /repos/{owner}/{repo}/pulls`, `POST /projects/:id/merge_requests`).
//!
//! "Merge request" is GitLab's term and keelson's; GitHub calls it a pull
//! request and numbers it `number`, GitLab numbers it `iid` within its
//! project. Both are [`MergeRequest::number`] here.
//!
//! The `forge:` section of the keelson config says where the API is and
//! which file or environment variable holds the token: credentials never
//! come from the environments repository, and the token is sent only in
//! its header (`Authorization: Bearer` to GitHub, `PRIVATE-TOKEN` to
//! GitLab), never in a URL, and never printed. TLS is verified; plain
//! `http://` is accepted only for a loopback address.

mod client;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use client::Forge;

/// `forge.apiUrl` for GitHub when the config names none.
pub const GITHUB_API: &str = "https://api.github.com";

/// `forge.apiUrl` for GitLab when the config names none.
pub const GITLAB_API: &str = "https://gitlab.com/api/v4";

/// Which API a forge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// GitHub or GitHub Enterprise Server (REST API v3, `X-GitHub-Api-Version: 2022-11-28`).
    Github,
    /// GitLab (REST API v4).
    Gitlab,
}

impl std::fmt::Display for ForgeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ForgeKind::Github => "github",
            ForgeKind::Gitlab => "gitlab",
        })
    }
}

/// The `forge:` section of the keelson config.
///
/// ```yaml
/// forge:
///   kind: gitlab                          # or github
///   apiUrl: https://gitlab.example.com/api/v4   # default https://api.github.com / https://gitlab.com/api/v4
///   repository: platform/environments     # GitHub owner/name; GitLab project path or numeric id
///   tokenFile: /etc/keelson/forge-token   # or tokenEnv: GITLAB_TOKEN
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForgeConfig {
    /// `github` or `gitlab`.
    pub kind: ForgeKind,
    /// API base URL (default [`GITHUB_API`] / [`GITLAB_API`]; GitHub
    /// Enterprise Server: `https://HOST/api/v3`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// The repository merge requests are opened in and read from when a
    /// caller names none: `owner/name` on GitHub, the project's path
    /// (`group/name`) or numeric id on GitLab.
    #[serde(default)]
    pub repository: Option<String>,
    /// File holding the API token (relative paths: to the config file).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the API token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// PEM bundle of extra certificate authorities to trust (beside the
    /// system's), for a forge behind a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl ForgeConfig {
    /// The API base URL, without a trailing `/`.
    pub fn api_url(&self) -> String {
        let url = self.api_url.as_deref().unwrap_or(match self.kind {
            ForgeKind::Github => GITHUB_API,
            ForgeKind::Gitlab => GITLAB_API,
        });
        url.trim_end_matches('/').to_string()
    }

    /// `path` as the config means it: relative to the config file's folder.
    fn resolve(path: &Path, base: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        }
    }
}

/// Where a merge request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MergeRequestState {
    /// Open (GitHub `open`; GitLab `opened`, or `locked` while it merges).
    Open,
    /// Closed without being merged.
    Closed,
    /// Merged (GitHub: `closed` with `merged_at`; GitLab `merged`).
    Merged,
}

impl std::fmt::Display for MergeRequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MergeRequestState::Open => "open",
            MergeRequestState::Closed => "closed",
            MergeRequestState::Merged => "merged",
        })
    }
}

/// One merge request, as either forge describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeRequest {
    /// GitHub's pull request `number`, GitLab's `iid`.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Open, closed or merged.
    pub state: MergeRequestState,
    /// Label names.
    pub labels: Vec<String>,
    /// The branch it merges (GitHub `head.ref`, GitLab `source_branch`).
    pub head_branch: String,
    /// The commit at the head of that branch (GitHub `head.sha`, GitLab `sha`).
    pub head_sha: String,
    /// The branch it merges into (GitHub `base.ref`, GitLab `target_branch`).
    pub base_branch: String,
    /// Its page for people (GitHub `html_url`, GitLab `web_url`).
    pub web_url: String,
}

impl MergeRequest {
    /// Whether it carries `label` (exact, case-sensitive, as both forges
    /// filter).
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }
}

/// A merge request to open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMergeRequest {
    /// Title.
    pub title: String,
    /// Description, Markdown (GitHub `body`, GitLab `description`).
    pub description: String,
    /// The branch to merge, already pushed.
    pub head_branch: String,
    /// The branch to merge into.
    pub base_branch: String,
}

/// Why the forge could not be used. No variant carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    /// The `forge:` section cannot be used (token, URL, CA file).
    #[error("forge config: {0}")]
    Config(String),
    /// The caller named no repository and the config names none.
    #[error(
        "no repository to ask: set forge.repository in the keelson config (GitHub owner/name, GitLab project path or id)"
    )]
    NoRepository,
    /// The forge could not be reached.
    #[error("{method} {url}: {message}")]
    Transport {
        /// HTTP method.
        method: String,
        /// URL (it never holds the token).
        url: String,
        /// Why, with its causes.
        message: String,
    },
    /// The forge answered with an error status.
    #[error("{method} {url}: HTTP {status}: {message}{}", hint(*.status))]
    Refused {
        /// HTTP method.
        method: String,
        /// URL.
        url: String,
        /// Status code.
        status: u16,
        /// The forge's own message (its `message` or `error` field), cut to 300 characters.
        message: String,
    },
    /// The answer is not what the API documents.
    #[error("{url}: unexpected answer: {message}")]
    Unexpected {
        /// URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// What to check after an error status.
fn hint(status: u16) -> &'static str {
    match status {
        401 => " (the token was refused: check forge.tokenFile / forge.tokenEnv)",
        403 => " (the token lacks a permission or a rate limit was hit)",
        404 => " (no such repository or merge request, or the token cannot see it)",
        422 => " (the forge refused the request's content)",
        _ => "",
    }
}

impl ForgeError {
    /// The HTTP status the forge answered, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ForgeError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
