//! The promotion commit: written with git2 straight into the object
//! database on top of a base commit, on a branch of its own. No working tree
//! or index is read or touched, so a promotion from a developer's clone
//! leaves their checkout as it was, and the content promoted is the
//! committed content of the base, never uncommitted edits.

use std::path::{Path, PathBuf};

use git2::{Commit, FileMode, ObjectType, Oid, Repository, Signature};

use super::Author;
use crate::source::Auth;

/// Largest file read from a commit (as for every spec file).
const MAX_BYTES: usize = 1 << 20;

/// Errors of the promotion's Git side.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `--repo` is not inside a Git repository.
    #[error(
        "{dir} is not inside a Git repository ({message}); keelson promote writes a commit, so run \
         it in a clone of the environments repository"
    )]
    NotARepository {
        /// The directory given.
        dir: PathBuf,
        /// libgit2's reason.
        message: String,
    },
    /// The base revision does not name a commit.
    #[error(
        "--base {rev}: no such commit ({message}); fetch it first, e.g. `git fetch origin main`"
    )]
    UnknownRevision {
        /// The revision.
        rev: String,
        /// libgit2's reason.
        message: String,
    },
    /// A file of the base commit cannot be used.
    #[error("{path} in commit {commit}: {message}")]
    File {
        /// Path in the repository.
        path: String,
        /// Short commit id.
        commit: String,
        /// What is wrong.
        message: String,
    },
    /// The branch exists and holds something else.
    #[error(
        "branch `{branch}` already exists at {at} with other content; delete it \
         (`git branch -D {branch}`) or name another with --branch"
    )]
    BranchExists {
        /// Branch name.
        branch: String,
        /// Short id of its head.
        at: String,
    },
    /// No author is configured.
    #[error(
        "no commit author: set promotion.author (name, email) in keelson.yaml, or user.name and \
         user.email in Git's config ({message})"
    )]
    NoAuthor {
        /// libgit2's reason.
        message: String,
    },
    /// Pushing failed.
    #[error("cannot push branch `{branch}` to remote `{remote}`: {message}")]
    Push {
        /// Branch.
        branch: String,
        /// Remote name.
        remote: String,
        /// Cause (URLs with credentials are masked).
        message: String,
    },
    /// Any other libgit2 failure.
    #[error("git: {0}")]
    Git(String),
}

fn git(e: git2::Error) -> GitError {
    GitError::Git(e.message().to_string())
}

/// The environments repository as promotion sees it: a Git repository and
/// the folder of it that holds `environments/` (the `--repo` directory).
pub struct Repo {
    repo: Repository,
    /// `--repo`, relative to the repository's top, `/`-separated (may be empty).
    prefix: String,
}

/// The short form of a commit id, as shown to people.
pub fn short(id: Oid) -> String {
    id.to_string()[..12].to_string()
}

impl Repo {
    /// Open the repository holding `dir`.
    pub fn open(dir: &Path) -> Result<Repo, GitError> {
        let not_repo = |message: String| GitError::NotARepository {
            dir: dir.to_path_buf(),
            message,
        };
        let repo = Repository::discover(dir).map_err(|e| not_repo(e.message().to_string()))?;
        let top = repo
            .workdir()
            .or_else(|| repo.path().parent())
            .ok_or_else(|| not_repo("no working tree".into()))?
            .to_path_buf();
        let canonical = |p: &Path| p.canonicalize().map_err(|e| not_repo(e.to_string()));
        let rel = canonical(dir)?
            .strip_prefix(canonical(&top)?)
            .map(Path::to_path_buf)
            .map_err(|_| not_repo("it is outside the repository's working tree".into()))?;
        let prefix = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        Ok(Repo { repo, prefix })
    }

    /// The libgit2 repository.
    pub fn inner(&self) -> &Repository {
        &self.repo
    }

    /// The path inside the repository of `rel` (relative to `--repo`).
    pub fn path_of(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// The commit `rev` names (`HEAD`, `main`, `origin/main`, an id).
    pub fn commit(&self, rev: &str) -> Result<Commit<'_>, GitError> {
        self.repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| GitError::UnknownRevision {
                rev: rev.to_string(),
                message: e.message().to_string(),
            })
    }

    /// The text of `rel` (relative to `--repo`) in `commit`, `None` when it
    /// is absent. A symlink, a non-file, an oversized or non-UTF-8 file is an
    /// error: promotion reads only regular files inside the repository.
    pub fn read(&self, commit: &Commit<'_>, rel: &str) -> Result<Option<String>, GitError> {
        let path = self.path_of(rel);
        let err = |message: &str| GitError::File {
            path: path.clone(),
            commit: short(commit.id()),
            message: message.to_string(),
        };
        let tree = commit.tree().map_err(git)?;
        let entry = match tree.get_path(Path::new(&path)) {
            Ok(e) => e,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(git(e)),
        };
        if entry.filemode() == i32::from(FileMode::Link) {
            return Err(err(
                "is a symbolic link; promotion edits regular files only",
            ));
        }
        if entry.kind() != Some(ObjectType::Blob) {
            return Err(err("is not a file"));
        }
        let blob = self.repo.find_blob(entry.id()).map_err(git)?;
        if blob.size() > MAX_BYTES {
            return Err(err("is over the 1 MiB limit"));
        }
        String::from_utf8(blob.content().to_vec())
            .map(Some)
            .map_err(|_| err("is not valid UTF-8"))
    }

    /// The author and committer of promotion commits: `author` when given,
    /// else Git's `user.name` and `user.email`.
    pub fn signature(&self, author: Option<&Author>) -> Result<Signature<'static>, GitError> {
        match author {
            Some(a) => Signature::now(&a.name, &a.email),
            None => self.repo.signature(),
        }
        .map_err(|e| GitError::NoAuthor {
            message: e.message().to_string(),
        })
    }

    /// Write `files` (each `(path relative to --repo, text)`) on top of
    /// `base` as one commit, and point `refs/heads/<branch>` at it. A branch
    /// that already holds exactly this change on this base is reused (a
    /// re-run after a failed push); one holding anything else is refused.
    /// Returns the commit id.
    pub fn commit_on_branch(
        &self,
        base: &Commit<'_>,
        branch: &str,
        files: &[(String, String)],
        sig: &Signature<'_>,
        message: &str,
    ) -> Result<Oid, GitError> {
        let base_tree = base.tree().map_err(git)?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (rel, text) in files {
            let path = self.path_of(rel);
            let mode = base_tree
                .get_path(Path::new(&path))
                .map(|e| e.filemode())
                .unwrap_or(i32::from(FileMode::Blob));
            let mode = if mode == i32::from(FileMode::BlobExecutable) {
                FileMode::BlobExecutable
            } else {
                FileMode::Blob
            };
            let blob = self.repo.blob(text.as_bytes()).map_err(git)?;
            update.upsert(path.as_str(), blob, mode);
        }
        let tree_id = update.create_updated(&self.repo, &base_tree).map_err(git)?;
        let refname = format!("refs/heads/{branch}");
        if !git2::Reference::is_valid_name(&refname) {
            return Err(GitError::Git(format!(
                "`{branch}` is not a valid branch name"
            )));
        }
        if let Ok(existing) = self.repo.find_reference(&refname) {
            let head = existing.peel_to_commit().map_err(git)?;
            let same = head.tree_id() == tree_id
                && head.parent_count() == 1
                && head.parent_id(0).ok() == Some(base.id());
            if same {
                return Ok(head.id());
            }
            return Err(GitError::BranchExists {
                branch: branch.to_string(),
                at: short(head.id()),
            });
        }
        let tree = self.repo.find_tree(tree_id).map_err(git)?;
        let id = self
            .repo
            .commit(None, sig, sig, message, &tree, &[base])
            .map_err(git)?;
        self.repo
            .reference(&refname, id, false, "keelson promote")
            .map_err(git)?;
        Ok(id)
    }

    /// Push `branch` to `remote` (a configured remote name), with `auth`
    /// when the remote asks for credentials. Not forced: a branch of the
    /// same name holding other commits on the remote is refused by it.
    pub fn push(&self, remote: &str, branch: &str, auth: &Auth) -> Result<(), GitError> {
        let push_err = |message: String| GitError::Push {
            branch: branch.to_string(),
            remote: remote.to_string(),
            message,
        };
        let mut r = self
            .repo
            .find_remote(remote)
            .map_err(|e| push_err(e.message().to_string()))?;
        let mut callbacks = git2::RemoteCallbacks::new();
        let mut attempts = 0;
        let auth = auth.clone();
        callbacks.credentials(move |_url, user, allowed| {
            attempts += 1;
            if attempts > 3 {
                return Err(git2::Error::from_str("credentials were refused"));
            }
            crate::source::credentials(&auth, user, allowed)
        });
        // libgit2 reports a refused ref here, not as the push's error.
        let refused = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let seen = refused.clone();
        callbacks.push_update_reference(move |name, status| {
            if let Some(s) = status {
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{name}: {s}"));
            }
            Ok(())
        });
        let mut opts = git2::PushOptions::new();
        opts.remote_callbacks(callbacks);
        let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
        r.push(&[spec.as_str()], Some(&mut opts))
            .map_err(|e| push_err(crate::source::redact_url(e.message())))?;
        if let Some(why) = refused.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(push_err(format!("the remote refused {why}")));
        }
        Ok(())
    }

    /// The URL of `remote`, with any credentials in it masked.
    pub fn remote_url(&self, remote: &str) -> Option<String> {
        let r = self.repo.find_remote(remote).ok()?;
        r.url().ok().map(crate::source::redact_url)
    }
}
