//! Which environments a policy change reaches, decided on the project's
//! example environments with the real spec checker.

use std::collections::BTreeSet;
use std::path::Path;

use keelson::controller::EnvReconciler;
use keelson::controller::pipeline::KubeReconciler;
use keelson::source::Affected;

fn example(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["environments", "policies", "schema"] {
        crate::e2e::copy_dir(&root.join(sub), &dir.join(sub));
    }
}

fn edit(dir: &Path, rel: &str, from: &str, to: &str) {
    let p = dir.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{rel} has no {from:?}");
    std::fs::write(p, text.replacen(from, to, 1)).unwrap();
}

fn some(envs: &[&str]) -> Affected {
    Affected::Some(envs.iter().map(|e| e.to_string()).collect::<BTreeSet<_>>())
}

#[test]
fn a_policy_change_reaches_only_the_environments_it_is_in_force_for() {
    let pipeline = KubeReconciler::new(None, Default::default()).unwrap();
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    example(old.path());
    example(new.path());
    assert_eq!(
        pipeline.environments(new.path()),
        ["dev", "preview-pr-123", "prod", "staging"]
    );

    edit(
        new.path(),
        "policies/prod.yaml",
        "replicas: 2",
        "replicas: 4",
    );
    let paths = vec!["policies/prod.yaml".to_string()];
    assert_eq!(
        pipeline.affected(old.path(), new.path(), &paths),
        some(&["prod"])
    );

    // Moving a policy to other environments reaches both the old and the new ones.
    let new2 = tempfile::tempdir().unwrap();
    example(new2.path());
    edit(
        new2.path(),
        "policies/prod.yaml",
        "appliesTo: [\"prod\", \"prod-*\"]",
        "appliesTo: [\"staging\"]",
    );
    assert_eq!(
        pipeline.affected(old.path(), new2.path(), &paths),
        some(&["prod", "staging"])
    );

    // The base policy is in force everywhere.
    let new3 = tempfile::tempdir().unwrap();
    example(new3.path());
    edit(
        new3.path(),
        "policies/base.yaml",
        "replicas: 1",
        "replicas: 2",
    );
    let base = vec!["policies/base.yaml".to_string()];
    assert_eq!(
        pipeline.affected(old.path(), new3.path(), &base),
        some(&["dev", "preview-pr-123", "prod", "staging"])
    );

    // Environment folders still count by path, and schema changes reach everyone.
    let mixed = vec![
        "policies/preview.yaml".to_string(),
        "environments/dev/pipeline.yaml".to_string(),
    ];
    assert_eq!(
        pipeline.affected(old.path(), old.path(), &mixed),
        some(&["dev", "preview-pr-123"])
    );
    let schema = vec!["schema/pipeline.schema.json".to_string()];
    assert_eq!(
        pipeline.affected(old.path(), old.path(), &schema),
        Affected::All
    );
}
