//! Source: a local mirror of one branch of the environments repository.
//!
//! The mirror is a bare repository in the state directory. Each fetch force-
//! updates the branch ref, so a force-push simply moves the head; the old
//! commits stay in the mirror's object store, which keeps "the last good
//! commit" available even when the remote is unreachable. Trees are exported
//! as plain files for the pipeline, never checked out in place.

pub mod changes;
pub mod compact;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{Cred, CredentialType, FetchOptions, ObjectType, Oid, RemoteCallbacks, Repository};
use serde::{Deserialize, Serialize};

pub use changes::{Affected, affected_environments};

/// A secret value (token, passphrase) that never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into().trim_end_matches(['\n', '\r']).to_string())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How to authenticate to the remote.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// HTTPS user name sent with the token (`x-access-token` when absent).
    pub username: Option<String>,
    /// HTTPS token.
    pub token: Option<Secret>,
    /// SSH private key file.
    pub ssh_key: Option<PathBuf>,
    /// Passphrase of the SSH key.
    pub ssh_passphrase: Option<Secret>,
}

/// Which repository and branch to follow.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    /// URL (`https://`, `ssh://`, `git@host:path`, `file://`) or local path.
    pub url: String,
    /// Branch name.
    pub branch: String,
    /// Credentials.
    pub auth: Auth,
}

impl RepoSpec {
    /// The URL for logs and status: a password or token written into it
    /// (`https://user:token@host/...`) is masked.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The local directory of the repository, when the URL is a local path
    /// or a `file://` URL (such repositories are watched for changes).
    pub fn local_path(&self) -> Option<PathBuf> {
        if let Some(p) = self.url.strip_prefix("file://") {
            return Some(PathBuf::from(p));
        }
        let scp_like = self.url.contains('@') && self.url.contains(':');
        (!self.url.contains("://") && !scp_like).then(|| PathBuf::from(&self.url))
    }
}

/// One commit, as shown in status and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Full id.
    pub id: String,
    /// `Name <email>`.
    pub author: String,
    /// First line of the message.
    pub summary: String,
}

/// Errors of the Git source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The mirror could not be created or opened.
    #[error("cannot open the Git mirror at {path}: {message}. Check the state directory")]
    Mirror {
        /// Mirror directory.
        path: PathBuf,
        /// Cause.
        message: String,
    },
    /// Fetching failed (remote unreachable, auth refused, ...).
    #[error(
        "cannot fetch branch `{branch}` from {url}: {message}. Check the URL, the network and the \
         credentials in the controller config; the last fetched commit stays in use"
    )]
    Fetch {
        /// Remote URL.
        url: String,
        /// Branch.
        branch: String,
        /// Cause from libgit2.
        message: String,
    },
    /// The remote does not advertise the branch: it was never there, or it was
    /// deleted. The last fetched commit stays in the mirror and in use.
    #[error(
        "branch `{branch}` was not found in {url}: it was deleted or renamed, or \
         `controller.repository.branch` is wrong; the last fetched commit stays applied"
    )]
    NoBranch {
        /// Remote URL.
        url: String,
        /// Branch.
        branch: String,
    },
    /// A commit or tree could not be read or written out.
    #[error("cannot read commit {commit}: {message}")]
    Read {
        /// Commit id.
        commit: String,
        /// Cause.
        message: String,
    },
}

/// A tree exported to disk; the directory is removed when the last handle goes.
#[derive(Debug)]
pub struct Checkout {
    /// The commit.
    pub commit: CommitInfo,
    /// Root directory of the exported tree.
    pub path: PathBuf,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The mirror of one branch.
pub struct GitSource {
    repo: Repository,
    spec: RepoSpec,
    trees_dir: PathBuf,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.spec.url)
            .field("branch", &self.spec.branch)
            .finish()
    }
}

static EXPORTS: AtomicU64 = AtomicU64::new(0);

impl GitSource {
    /// Open (or create) the mirror under `state_dir/mirror`, with exported
    /// trees under `state_dir/trees` (cleared here: they do not outlive a run).
    pub fn open(spec: RepoSpec, state_dir: &Path) -> Result<GitSource, SourceError> {
        let path = state_dir.join("mirror");
        let mirror_err = |e: &dyn std::fmt::Display| SourceError::Mirror {
            path: path.clone(),
            message: e.to_string(),
        };
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(|e| mirror_err(&e))?,
        };
        match repo.find_remote("origin") {
            Ok(r) if r.url().ok() == Some(spec.url.as_str()) => {}
            Ok(_) => repo
                .remote_set_url("origin", &spec.url)
                .map_err(|e| mirror_err(&e))?,
            Err(_) => {
                repo.remote("origin", &spec.url)
                    .map_err(|e| mirror_err(&e))?;
            }
        }
        let trees_dir = state_dir.join("trees");
        let _ = std::fs::remove_dir_all(&trees_dir);
        std::fs::create_dir_all(&trees_dir).map_err(|e| mirror_err(&e))?;
        Ok(GitSource {
            repo,
            spec,
            trees_dir,
        })
    }

    /// What this source follows.
    pub fn spec(&self) -> &RepoSpec {
        &self.spec
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.spec.branch)
    }

    /// Fetch the branch and return its head. A force-push is accepted (the
    /// refspec is forced): the new head is simply a different commit.
    ///
    /// A fetch of a branch the remote no longer has succeeds in libgit2 and
    /// leaves the tracking ref where it was, so the remote's reference
    /// advertisement is checked every time: a branch it does not list is
    /// [`SourceError::NoBranch`], even though the old head is still in the
    /// mirror (and [`GitSource::local_head`] still returns it).
    pub fn fetch(&mut self) -> Result<CommitInfo, SourceError> {
        let fetch_err = |message: String| SourceError::Fetch {
            url: self.spec.display_url(),
            branch: self.spec.branch.clone(),
            message,
        };
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| fetch_err(e.message().to_string()))?;
        let auth = self.spec.auth.clone();
        let mut callbacks = RemoteCallbacks::new();
        let mut attempts = 0;
        callbacks.credentials(move |_url, user_from_url, allowed| {
            attempts += 1;
            if attempts > 3 {
                return Err(git2::Error::from_str("credentials were refused"));
            }
            credentials(&auth, user_from_url, allowed)
        });
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks);
        opts.download_tags(git2::AutotagOption::None);
        let refspec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.spec.branch);
        remote
            .fetch(&[refspec.as_str()], Some(&mut opts), None)
            .map_err(|e| fetch_err(e.message().to_string()))?;
        // The advertisement stays readable after the fetch disconnects.
        let wanted = format!("refs/heads/{}", self.spec.branch);
        let advertised = remote
            .list()
            .map_err(|e| fetch_err(e.message().to_string()))?
            .iter()
            .any(|head| head.name() == wanted);
        drop(remote);
        if !advertised {
            return Err(SourceError::NoBranch {
                url: self.spec.display_url(),
                branch: self.spec.branch.clone(),
            });
        }
        compact::after_fetch(&mut self.repo).map_err(|e| fetch_err(e.message().to_string()))?;
        self.local_head().ok_or_else(|| SourceError::NoBranch {
            url: self.spec.display_url(),
            branch: self.spec.branch.clone(),
        })
    }

    /// The head fetched last (also across restarts), if any.
    pub fn local_head(&self) -> Option<CommitInfo> {
        let oid = self.repo.refname_to_id(&self.tracking_ref()).ok()?;
        self.commit_info(&oid.to_string()).ok()
    }

    /// Id, author and summary of `commit`.
    pub fn commit_info(&self, commit: &str) -> Result<CommitInfo, SourceError> {
        let c = self.find_commit(commit)?;
        let author = c.author();
        Ok(CommitInfo {
            id: c.id().to_string(),
            author: format!(
                "{} <{}>",
                author.name().unwrap_or("?"),
                author.email().unwrap_or("?")
            ),
            summary: c.summary().ok().flatten().unwrap_or("").to_string(),
        })
    }

    fn find_commit(&self, commit: &str) -> Result<git2::Commit<'_>, SourceError> {
        let read_err = |e: git2::Error| SourceError::Read {
            commit: commit.to_string(),
            message: e.message().to_string(),
        };
        let oid = Oid::from_str(commit).map_err(read_err)?;
        self.repo.find_commit(oid).map_err(read_err)
    }

    /// Write the tree of `commit` to a fresh directory under the state dir.
    /// Symlinks are written as the same symlinks, so that the spec loader
    /// applies one rule to the CLI and the controller: a link inside the
    /// tree works, a link out of it is an error naming it (skipping it would
    /// silently drop what it defines, and prune it). Submodules are skipped.
    pub fn export(&self, commit: &str) -> Result<Checkout, SourceError> {
        let read_err = |message: String| SourceError::Read {
            commit: commit.to_string(),
            message,
        };
        let c = self.find_commit(commit)?;
        let info = self.commit_info(commit)?;
        let tree = c.tree().map_err(|e| read_err(e.message().to_string()))?;
        let n = EXPORTS.fetch_add(1, Ordering::Relaxed);
        let dir = self.trees_dir.join(format!("{}-{n}", &info.id[..12]));
        let checkout = Checkout {
            commit: info,
            path: dir.clone(),
        };
        export_tree(&self.repo, &tree, &dir).map_err(read_err)?;
        Ok(checkout)
    }

    /// Paths (relative to the repository root) that differ between two commits.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>, SourceError> {
        let tree_of = |commit: &str| -> Result<git2::Tree<'_>, SourceError> {
            self.find_commit(commit)?
                .tree()
                .map_err(|e| SourceError::Read {
                    commit: commit.to_string(),
                    message: e.message().to_string(),
                })
        };
        let (a, b) = (tree_of(from)?, tree_of(to)?);
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&a), Some(&b), None)
            .map_err(|e| SourceError::Read {
                commit: to.to_string(),
                message: e.message().to_string(),
            })?;
        let mut paths = Vec::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(p) = file.path().and_then(Path::to_str)
                    && !paths.iter().any(|x| x == p)
                {
                    paths.push(p.to_string());
                }
            }
        }
        Ok(paths)
    }
}

/// Write `tree` of `repo` under `dir` (created): files as files, symlinks as
/// the same symlinks, submodules skipped. The spec loader then applies one
/// rule everywhere (`spec::confine`): a link inside the tree works, a link
/// out of it is an error naming the link (skipping it would silently drop
/// what it defines, and prune it). Errors name the file.
pub fn export_tree(repo: &Repository, tree: &git2::Tree<'_>, dir: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt as _;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        let Ok(name) = entry.name() else {
            return git2::TreeWalkResult::Skip;
        };
        let path = dir.join(parent).join(name);
        let result = match entry.kind() {
            Some(ObjectType::Tree) => std::fs::create_dir_all(&path).map_err(|e| e.to_string()),
            // A link is written as a link: loading the tree then follows it
            // when it stays inside and names it as an error when it leaves
            // (`spec::confine`), as in a working copy.
            Some(ObjectType::Blob) if entry.filemode() == 0o120000 => repo
                .find_blob(entry.id())
                .map_err(|e| e.message().to_string())
                .and_then(|b| {
                    let target = std::ffi::OsStr::from_bytes(b.content());
                    std::os::unix::fs::symlink(target, &path).map_err(|e| e.to_string())
                }),
            Some(ObjectType::Blob) => repo
                .find_blob(entry.id())
                .map_err(|e| e.message().to_string())
                .and_then(|b| std::fs::write(&path, b.content()).map_err(|e| e.to_string())),
            _ => Ok(()),
        };
        match result {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(format!("{}: {e}", path.display()));
                git2::TreeWalkResult::Abort
            }
        }
    })
    .map_err(|e| e.message().to_string())
    .or_else(|e| if failure.is_some() { Ok(()) } else { Err(e) })?;
    match failure {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// Mask the password part of a URL's user info.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        _ => url.to_string(),
    }
}

/// The credentials libgit2 asks for, from `auth`: an SSH key, a token
/// (HTTPS basic auth), or a user name. Shared by fetches and promotion pushes.
pub fn credentials(
    auth: &Auth,
    user_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    if allowed.contains(CredentialType::SSH_KEY)
        && let Some(key) = &auth.ssh_key
    {
        return Cred::ssh_key(
            user_from_url.unwrap_or("git"),
            None,
            key,
            auth.ssh_passphrase.as_ref().map(Secret::expose),
        );
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
        && let Some(token) = &auth.token
    {
        let user = auth.username.as_deref().unwrap_or("x-access-token");
        return Cred::userpass_plaintext(user, token.expose());
    }
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(user_from_url.unwrap_or("git"));
    }
    Err(git2::Error::from_str(
        "the remote asks for credentials and none that fit are configured \
         (set controller.repository.auth.tokenFile/tokenEnv or sshKeyFile)",
    ))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn tokens_in_urls_are_masked() {
        assert_eq!(
            redact_url("https://x-access-token:ghp_abc@github.com/o/r.git"),
            "https://x-access-token:***@github.com/o/r.git"
        );
        assert_eq!(
            redact_url("https://github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            redact_url("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(redact_url("/srv/envs"), "/srv/envs");
        assert_eq!(
            redact_url("ssh://git@host/o/r.git"),
            "ssh://git@host/o/r.git"
        );
    }
}
