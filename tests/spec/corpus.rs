//! The broken-repository corpus: each case must be reported at the right
//! file:line:col with the right message, and nothing of it rendered.

use std::path::Path;

use keelson::check::check_repo;

use crate::{keelson, project_root};

fn cases() -> Vec<std::path::PathBuf> {
    let dir = project_root().join("tests/fixtures/broken");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn every_broken_repo_reports_the_defect_at_its_position() {
    let cases = cases();
    assert!(cases.len() >= 90, "corpus has only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let expect = std::fs::read_to_string(case.join("expect.txt")).unwrap();
        let mut lines = expect.lines();
        let location = lines.next().unwrap();
        let fragment = lines.next().unwrap();
        let report = check_repo(case);
        let found = report
            .diagnostics
            .iter()
            .any(|d| d.location() == location && d.message.contains(fragment));
        if !found {
            failures.push(format!(
                "{}: expected `{location}: …{fragment}…`, got:\n  {}",
                case.file_name().unwrap().to_string_lossy(),
                report
                    .diagnostics
                    .iter()
                    .map(|d| d.one_line())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
        if report.errors() == 0 {
            failures.push(format!("{}: no error", case.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_cli_exits_1_and_prints_snippets_for_a_broken_repo() {
    let case = project_root().join("tests/fixtures/broken/unknown-field");
    let (code, out, err) = keelson(&case, &["validate"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.is_empty(), "findings go to stdout: {err}");
    assert!(
        out.contains("--> environments/dev/environment.yaml:11:7"),
        "{out}"
    );
    assert!(out.contains("replica: 1"), "snippet missing: {out}");
    assert!(out.contains("did you mean `replicas`?"), "{out}");
}

#[test]
fn json_output_lists_every_diagnostic_with_positions() {
    let case = project_root().join("tests/fixtures/broken/pipeline-owns-replicas");
    let (code, out, _) = keelson(&case, &["validate", "--output", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(d["file"], "environments/dev/pipeline.yaml");
    assert_eq!(d["line"], 9);
    assert_eq!(d["column"], 7);
    assert_eq!(d["code"], "ownership");
}

#[test]
fn all_errors_of_all_files_are_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    crate::copy_dir(
        &project_root().join("tests/fixtures/broken/unknown-field"),
        dir.path(),
    );
    // Add a second, independent defect in another file.
    let pipe = dir.path().join("environments/dev/pipeline.yaml");
    let text = std::fs::read_to_string(&pipe)
        .unwrap()
        .replace("\"2.0.0\"", "\"2.0:0\"");
    std::fs::write(&pipe, text).unwrap();
    let report = check_repo(dir.path());
    let files: std::collections::BTreeSet<_> =
        report.diagnostics.iter().map(|d| d.file.clone()).collect();
    assert!(files.contains(Path::new("environments/dev/environment.yaml")));
    assert!(files.contains(Path::new("environments/dev/pipeline.yaml")));
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let dir = crate::copy_example();
    let big = format!("# {}\n", "x".repeat(2 * 1024 * 1024));
    std::fs::write(dir.path().join("environments/dev/pipeline.yaml"), big).unwrap();
    let report = check_repo(dir.path());
    let d = report
        .diagnostics
        .iter()
        .find(|d| d.file == Path::new("environments/dev/pipeline.yaml"))
        .expect("a diagnostic for the big file");
    assert!(d.message.contains("byte limit"), "{}", d.message);
    assert!(report.blocked.contains(&"dev".to_string()));
    assert!(
        report.ready.contains_key("prod"),
        "other environments are unaffected"
    );
}
