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

/// Every leaf subcommand's path (`["backup", "list"]`…) under `cmd`.
fn leaves(cmd: &clap::Command, path: Vec<String>, into: &mut Vec<(Vec<String>, clap::Command)>) {
    if cmd.get_subcommands().next().is_none() {
        into.push((path, cmd.clone()));
        return;
    }
    for sub in cmd.get_subcommands() {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        leaves(sub, p, into);
    }
}

#[test]
fn every_subcommand_takes_color_auto_always_never() {
    use clap::CommandFactory;
    let mut cmd = keelson::cli::Cli::command();
    // Global arguments (backup's --color) reach the leaves once built.
    cmd.build();
    let mut all = Vec::new();
    leaves(&cmd, Vec::new(), &mut all);
    assert!(
        all.len() >= 12,
        "{:?}",
        all.iter().map(|l| &l.0).collect::<Vec<_>>()
    );
    for (path, leaf) in &all {
        if path.iter().any(|p| p == "help") {
            continue;
        }
        let color = leaf
            .get_arguments()
            .find(|a| a.get_long() == Some("color"))
            .unwrap_or_else(|| panic!("keelson {} takes no --color", path.join(" ")));
        let values: Vec<String> = color
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(
            values,
            ["auto", "always", "never"],
            "keelson {}",
            path.join(" ")
        );
    }
    // Accepted where it used to be refused (the shared cases pass
    // `--color never` to every command they run), and honoured: status
    // --repo's diagnostics are coloured on demand, plain with never.
    let repo = copy_example();
    let (code, out, err) =
        super::keelson(repo.path(), &["status", "--repo", ".", "--color", "never"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("APP") && !out.contains('\x1b'), "{out}");
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("environments")).unwrap();
    for (color, ansi) in [("always", true), ("never", false)] {
        let (code, _, err) =
            super::keelson(empty.path(), &["status", "--repo", ".", "--color", color]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("error"), "{err}");
        assert_eq!(err.contains('\x1b'), ansi, "--color {color}: {err}");
    }
    for args in [
        &["backup", "list", "--color", "never", "-c", "missing.yaml"][..],
        &["backup", "--color", "never", "-c", "missing.yaml", "list"],
        &["run", "--color", "never", "-c", "missing.yaml"],
        &[
            "promote", "app", "--from", "dev", "--to", "dev", "--color", "never",
        ],
    ] {
        let (code, _, err) = super::keelson(empty.path(), args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
}
