//! Foundation tests: loading, diagnostics, rendering, set-image, fuzzing.

mod corpus;
mod example;
mod fuzz;
mod objects;
mod schema_model;
mod set_image;

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
        .output()
        .expect("run keelson");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Copy the example repository (environments, policies, schema) to a temp dir.
pub fn copy_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["environments", "policies", "schema"] {
        copy_dir(&project_root().join(sub), &dir.path().join(sub));
    }
    dir
}

#[path = "../support/copy_dir.rs"]
mod copy_dir_support;
pub use copy_dir_support::copy_dir;
