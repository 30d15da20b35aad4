//! `keelson set-image` edits pipeline.yaml in place, keeping comments.

use crate::{copy_example, keelson};

#[test]
fn set_image_changes_only_the_tag_and_keeps_comments() {
    let dir = copy_example();
    let pipe = dir.path().join("environments/prod/pipeline.yaml");
    let before = std::fs::read_to_string(&pipe).unwrap();
    let (code, _, err) = keelson(dir.path(), &["set-image", "prod", "orders", "1.43.0"]);
    assert_eq!(code, 0, "{err}");
    let after = std::fs::read_to_string(&pipe).unwrap();
    assert_eq!(after, before.replace("tag: \"1.42.0\"", "tag: \"1.43.0\""));
    assert!(after.contains("# release 2026-11-20"), "comment kept");
    let (code, out, _) = keelson(dir.path(), &["render", "--env", "prod"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("image: registry.example.com/shop/orders:1.43.0"),
        "{out}"
    );
}

#[test]
fn set_image_refuses_unknown_apps_and_bad_tags_without_writing() {
    let dir = copy_example();
    let pipe = dir.path().join("environments/prod/pipeline.yaml");
    let before = std::fs::read_to_string(&pipe).unwrap();
    let (code, _, err) = keelson(dir.path(), &["set-image", "prod", "order", "1.0"]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean `orders`?"), "{err}");
    let (code, _, err) = keelson(dir.path(), &["set-image", "prod", "orders", "1.0:bad"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a valid image tag"), "{err}");
    assert_eq!(std::fs::read_to_string(&pipe).unwrap(), before);
}

#[test]
fn set_image_creates_a_missing_pipeline_file() {
    let dir = copy_example();
    let pipe = dir.path().join("environments/dev/pipeline.yaml");
    std::fs::remove_file(&pipe).unwrap();
    let (code, _, err) = keelson(dir.path(), &["set-image", "dev", "mailer", "9.9.9"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = keelson(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(&pipe)
            .unwrap()
            .contains("tag: \"9.9.9\"")
    );
}
