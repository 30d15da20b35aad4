//! Which environments a change touches.
//!
//! An environment is re-rendered when a file in its own folder changed, or
//! when anything under `policies/` or `schema/` changed: policies select
//! environments by CEL expressions evaluated during rendering, so telling in
//! advance which environments a policy edit reaches would mean rendering them
//! anyway. Other files (README, CI config) touch no environment.

use std::collections::BTreeSet;

/// The environments to re-render after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affected {
    /// Every environment.
    All,
    /// Just these (possibly none).
    Some(BTreeSet<String>),
}

impl Affected {
    /// Whether `env` is affected.
    pub fn contains(&self, env: &str) -> bool {
        match self {
            Affected::All => true,
            Affected::Some(set) => set.contains(env),
        }
    }
}

/// Map changed paths (relative to the repository root, `/`-separated) to the
/// environments they affect.
pub fn affected_environments<S: AsRef<str>>(paths: &[S]) -> Affected {
    let mut envs = BTreeSet::new();
    for p in paths {
        let p = p.as_ref();
        if p.starts_with("policies/") || p.starts_with("schema/") {
            return Affected::All;
        }
        if let Some(rest) = p.strip_prefix("environments/")
            && let Some((env, _)) = rest.split_once('/')
            && env != crate::spec::preview::TEMPLATES_DIR
        {
            envs.insert(env.to_string());
        }
    }
    Affected::Some(envs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_to_environments() {
        let a = affected_environments(&[
            "environments/prod/pipeline.yaml",
            "environments/dev/manifests/x.yaml",
            "README.md",
            "environments/loose-file.yaml",
        ]);
        assert_eq!(
            a,
            Affected::Some(
                ["dev".to_string(), "prod".to_string()]
                    .into_iter()
                    .collect()
            )
        );
        assert!(!a.contains("staging"));
        assert_eq!(
            affected_environments(&["environments/dev/environment.yaml", "policies/base.yaml"]),
            Affected::All
        );
        assert_eq!(
            affected_environments(&["schema/environment.schema.json"]),
            Affected::All
        );
        assert_eq!(
            affected_environments(&["docs/x.md"]),
            Affected::Some(BTreeSet::new())
        );
    }
}
