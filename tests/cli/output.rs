//! Output plumbing every subcommand shares: a closed pipe (`keelson status |
//! head -1`) ends keelson quietly, and `--color` is accepted wherever text is
//! printed.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{copy_example, git_commit_all};

/// Run keelson in `dir` with stdout a pipe whose reader is already closed
/// (so the first write fails with EPIPE, with no race against a reader);
/// with `both`, stderr is that pipe too (`2>&1 | head`). Returns the exit
/// code and what reached stderr when it was not the pipe.
fn into_closed_pipe(dir: &Path, args: &[&str], both: bool) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keelson"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("KEELSON_CONFIG")
        .stdin(Stdio::null());
    if both {
        cmd.stderr(writer.try_clone().unwrap());
    } else {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd.stdout(writer).spawn().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn a_closed_pipe_ends_every_printing_subcommand_quietly() {
    let repo = copy_example();
    git_commit_all(repo.path(), "example");
    let dir = repo.path();
    let commands: &[&[&str]] = &[
        &["validate"],
        &["render"],
        &["status", "--repo", "."],
        // No config: the error itself is what meets the closed stderr.
        &["status"],
        &["reconcile", "--dry-run", "--against-ref", "HEAD"],
        &["backup", "list", "--config", "missing.yaml"],
    ];
    for args in commands {
        for both in [false, true] {
            let (code, err) = into_closed_pipe(dir, args, both);
            assert!(
                !err.contains("panicked") && !err.contains("Broken pipe"),
                "{args:?} (2>&1: {both}) said: {err}"
            );
            // 141 = 128 + SIGPIPE, as a shell reports `yes | head -1`; a
            // command that fails before printing anything on stdout keeps
            // its exit 1 and says why on the open stderr.
            let failing_early =
                !both && (args[0] == "status" && args.len() == 1 || args[0] == "backup");
            if failing_early {
                assert_eq!(code, 1, "{args:?}: {err}");
                assert!(err.contains("error"), "{args:?}: {err}");
            } else {
                assert_eq!(code, 141, "{args:?} (2>&1: {both}): {err}");
                assert_eq!(err, "", "{args:?}");
            }
        }
    }
}
