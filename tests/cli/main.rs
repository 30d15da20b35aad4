//! The command line as a user meets it: the plan's text and markdown, the
//! offline `--against-ref` plan, flags, errors and exit codes, the README's
//! commands, and the CI examples' comment-posting script.

mod against_ref;
mod ci_examples;
mod errors;
mod output;
mod plan;
mod post_comment;
mod readme;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The project root, which is also the example repository.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the keelson binary with `args` in `dir`; (exit code, stdout, stderr).
pub fn keelson(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("KEELSON_CONFIG")
        .output()
        .expect("run keelson");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The directory holding the keelson binary under test.
pub fn keelson_bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_keelson"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[path = "../support/copy_dir.rs"]
mod copy_dir_support;
pub use copy_dir_support::copy_dir;

/// Commit every file under `dir` (a repository is created on first use),
/// on top of HEAD; returns the commit id.
pub fn git_commit_all(dir: &Path, message: &str) -> git2::Oid {
    let repo = git2::Repository::open(dir)
        .or_else(|_| git2::Repository::init(dir))
        .unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    // Files deleted since the last commit leave the index too.
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Test", "test@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

/// A copy of the example repository (environments, policies, schema).
pub fn copy_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["environments", "policies", "schema"] {
        copy_dir(&project_root().join(sub), &dir.path().join(sub));
    }
    dir
}
