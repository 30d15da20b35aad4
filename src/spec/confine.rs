//! Nothing outside the repository root is read, written or echoed. A
//! symlink anywhere on a path (the file itself or a folder above it) that
//! resolves outside the root is refused, naming the link and never its
//! target or the target's content: an error message lands in CI logs, and a
//! link to `/etc/passwd` or a credentials file must not leak through it.

use std::path::{Component, Path, PathBuf};

/// A path under the root that leads out of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} is a symlink that leads outside the repository; keelson reads and writes only files inside the repository root",
    link.display()
)]
pub struct Escape {
    /// The link, relative to the root.
    pub link: PathBuf,
}

/// Check that `path` (the root joined with a relative path) stays inside
/// `root` however its symlinks resolve. Components are checked from the
/// root down, so the error names the first link that leaves. A path that
/// does not exist (yet) is inside as far as it exists.
pub fn check(root: &Path, path: &Path) -> Result<(), Escape> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Err(Escape {
            link: path.to_path_buf(),
        });
    };
    let real_root = match root.canonicalize() {
        Ok(r) => r,
        // A root that does not exist holds nothing to escape to.
        Err(_) => return Ok(()),
    };
    let mut at = root.to_path_buf();
    let mut shown = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                at.push(name);
                shown.push(name);
            }
            Component::CurDir => continue,
            _ => {
                // `..` or an absolute part: leaves the root by construction.
                return Err(Escape { link: shown });
            }
        }
        let Ok(meta) = at.symlink_metadata() else {
            return Ok(());
        };
        if meta.file_type().is_symlink() {
            // A dangling link, or one into a place we cannot resolve, is
            // treated as leaving: keelson cannot show it stays.
            let inside = at
                .canonicalize()
                .map(|real| real.starts_with(&real_root))
                .unwrap_or(false);
            if !inside {
                return Err(Escape { link: shown });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_inside_pass_and_links_outside_are_named() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "password: hunter2\n").unwrap();
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        std::fs::create_dir_all(root.join("environments/dev/manifests")).unwrap();
        std::fs::write(root.join("environments/dev/manifests/a.yaml"), "a: 1\n").unwrap();
        symlink("a.yaml", root.join("environments/dev/manifests/b.yaml")).unwrap();
        symlink(
            outside.path().join("secret"),
            root.join("environments/dev/manifests/c.yaml"),
        )
        .unwrap();
        symlink(outside.path(), root.join("environments/prod")).unwrap();
        symlink("../../nowhere", root.join("environments/dev/dangling.yaml")).unwrap();

        let at = |p: &str| check(root, &root.join(p));
        assert_eq!(at("environments/dev/manifests/a.yaml"), Ok(()));
        assert_eq!(at("environments/dev/manifests/b.yaml"), Ok(()));
        assert_eq!(at("environments/dev/not-yet.yaml"), Ok(()));
        let e = at("environments/dev/manifests/c.yaml").unwrap_err();
        assert_eq!(e.link, Path::new("environments/dev/manifests/c.yaml"));
        assert!(!e.to_string().contains("hunter2"));
        assert!(!e.to_string().contains(&*outside.path().to_string_lossy()));
        // The folder is the link, so it is what is named.
        let e = at("environments/prod/pipeline.yaml").unwrap_err();
        assert_eq!(e.link, Path::new("environments/prod"));
        assert!(at("environments/dev/dangling.yaml").is_err());
    }
}
