//! Promotion: move one version of an app from one environment to the next
//! (`keelson promote APP --from staging --to prod`), as a Git commit that
//! changes only the version lines of the target's `pipeline.yaml`.
//!
//! What moves is the build identity the pipeline layer owns (DESIGN.md,
//! "three layers"): the image `tag` and `digest`. The rest of the pipeline
//! layer (`domain`, `region`, the `image` repository override) describes the
//! environment rather than the build, so it stays, as does everything the
//! user and platform layers own. Kargo calls the moved thing "Freight"; here
//! it is two scalars edited in place by [`crate::spec::edit`], so comments
//! and formatting survive and the diff is exactly the version lines.
//!
//! Stages, each in its own file:
//! - this file: reading versions from `pipeline.yaml` text, choosing what
//!   moves, and editing the target text;
//! - [`gate`]: the health gate over the recorded status;
//! - [`git`]: the commit on a branch (git2, no checkout touched);
//! - [`status`]: what is promotable along `promotion.stages`, for `keelson status`.

pub mod gate;
pub mod git;
pub mod status;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::edit::{self, EditError, Field};
use crate::yaml::{self, Limits};

/// How long a version must have run healthy in the source environment
/// before it may be promoted, unless `promotion.minHealthy` says otherwise.
pub const DEFAULT_MIN_HEALTHY: Duration = Duration::from_secs(600);

/// The `promotion:` section of `keelson.yaml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionConfig {
    /// The environments in promotion order, e.g. `[dev, staging, prod]`:
    /// `keelson status` shows what each may hand to the next.
    #[serde(default)]
    pub stages: Vec<String>,
    /// How long the version must have run healthy in the source environment,
    /// as recorded by the controller (`10m`, `1h`; default 10m).
    #[serde(default)]
    pub min_healthy: Option<HumanDuration>,
    /// Author and committer of promotion commits; `user.name` and
    /// `user.email` of the repository's Git config when absent.
    #[serde(default)]
    pub author: Option<Author>,
    /// Git remote that `--push` pushes the branch to (default `origin`).
    #[serde(default)]
    pub remote: Option<String>,
}

impl PromotionConfig {
    /// `minHealthy`, or [`DEFAULT_MIN_HEALTHY`].
    pub fn min_healthy(&self) -> Duration {
        self.min_healthy.map_or(DEFAULT_MIN_HEALTHY, |d| d.0)
    }
}

/// Name and e-mail of a commit's author.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Author {
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// A duration written as humantime text (`90s`, `10m`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration ({e}); write e.g. `10m`, `1h` or `30s`"
                ))
            })
    }
}

/// Why a promotion cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    /// A spec file does not parse or has the wrong shape (`file:line:col`).
    #[error("{0}")]
    Spec(String),
    /// The app is not there, or has nothing to promote.
    #[error("{0}")]
    App(String),
    /// The edit could not be made.
    #[error(transparent)]
    Edit(#[from] EditError),
}

/// The part of an app's pipeline data that promotion moves: its build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Version {
    /// Image tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Image digest (`sha256:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Version {
    /// Neither a tag nor a digest: the image's `latest`, nothing to promote.
    pub fn is_empty(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The version as the controller records it for a running app (the tag,
    /// else the first 19 characters of the digest), the same rule as
    /// [`crate::render::merge::ResolvedApp::version`].
    pub fn recorded(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.chars().take(19).collect(),
            (None, None) => "latest".into(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => write!(f, "{t}@{}", &d[..d.len().min(19)]),
            (Some(t), None) => f.write_str(t),
            (None, Some(d)) => f.write_str(d),
            (None, None) => f.write_str("(none)"),
        }
    }
}

/// One app's move: the source's version replaces the target's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// App name.
    pub app: String,
    /// The version in the source environment, which moves.
    pub version: Version,
    /// The version the target has now.
    pub replaces: Version,
}

/// Parse one YAML document; errors name `file:line:col`.
fn parse(file: &Path, text: &str) -> Result<yaml::Node, PromoteError> {
    yaml::parse_one(text, Limits::default()).map_err(|e| {
        PromoteError::Spec(format!(
            "{}:{}:{}: {}",
            file.display(),
            e.span.start.line,
            e.span.start.col,
            e.message
        ))
    })
}

/// The apps of a pipeline file and their versions, by app name. `file`
/// names the file in errors (`file:line:col`).
pub fn versions(file: &Path, text: &str) -> Result<BTreeMap<String, Version>, PromoteError> {
    let root = parse(file, text)?;
    let mut out = BTreeMap::new();
    let Some(apps) = root.get("spec").and_then(|s| s.get("apps")) else {
        return Ok(out);
    };
    let yaml::Value::Map(entries) = &apps.value else {
        return Err(PromoteError::Spec(format!(
            "{}:{}:{}: spec.apps must be a mapping of app name to build data",
            file.display(),
            apps.span.start.line,
            apps.span.start.col
        )));
    };
    for e in entries {
        let field = |k: &str| -> Result<Option<String>, PromoteError> {
            match e.value.get(k) {
                None => Ok(None),
                Some(n) => match n.as_str() {
                    Some(s) => Ok(Some(s.to_string())),
                    None => Err(PromoteError::Spec(format!(
                        "{}:{}:{}: `{k}` of app `{}` must be a string; quote it",
                        file.display(),
                        n.span.start.line,
                        n.span.start.col,
                        e.key
                    ))),
                },
            }
        };
        out.insert(
            e.key.clone(),
            Version {
                tag: field("tag")?,
                digest: field("digest")?,
            },
        );
    }
    Ok(out)
}

/// The app names an `environment.yaml` declares (`spec.apps[].name`).
pub fn declared_apps(file: &Path, text: &str) -> Result<Vec<String>, PromoteError> {
    let root = parse(file, text)?;
    let apps = root.get("spec").and_then(|s| s.get("apps"));
    Ok(match apps.map(|a| &a.value) {
        Some(yaml::Value::Seq(items)) => items
            .iter()
            .filter_map(|i| i.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    })
}

/// Which apps to promote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// This one app.
    App(String),
    /// Every app whose version differs (`--all`).
    All,
}

/// What a promotion from `source` to `target` (each app's versions, from
/// [`versions`]) moves, for apps the target environment declares
/// (`target_apps`). One app that is already at the source's version gives an
/// empty list; one that is missing or has no version is an error naming the
/// environment. `--all` skips apps the target does not run and apps without
/// a version in the source.
pub fn select(
    selection: &Selection,
    from: &str,
    source: &BTreeMap<String, Version>,
    to: &str,
    target: &BTreeMap<String, Version>,
    target_apps: &[String],
) -> Result<Vec<Promotion>, PromoteError> {
    let one = |app: &str| -> Option<Promotion> {
        let version = source.get(app)?.clone();
        let replaces = target.get(app).cloned().unwrap_or_default();
        (!version.is_empty() && version != replaces).then(|| Promotion {
            app: app.to_string(),
            version,
            replaces,
        })
    };
    match selection {
        Selection::App(app) => {
            let hint = |names: Vec<&str>| {
                crate::diag::did_you_mean(app, names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default()
            };
            match source.get(app) {
                None => {
                    let names: Vec<&str> = source.keys().map(String::as_str).collect();
                    return Err(PromoteError::App(format!(
                        "environment `{from}` has no pipeline data for app `{app}`{}; apps: {}",
                        hint(names.clone()),
                        names.join(", ")
                    )));
                }
                Some(v) if v.is_empty() => {
                    return Err(PromoteError::App(format!(
                        "app `{app}` has neither a tag nor a digest in environment `{from}`: there is no version to promote"
                    )));
                }
                Some(_) => {}
            }
            if !target_apps.iter().any(|a| a == app) {
                let names: Vec<&str> = target_apps.iter().map(String::as_str).collect();
                return Err(PromoteError::App(format!(
                    "environment `{to}` does not run app `{app}`{}; its apps: {}. Add the app to its environment.yaml first",
                    hint(names.clone()),
                    names.join(", ")
                )));
            }
            Ok(one(app).into_iter().collect())
        }
        Selection::All => Ok(source
            .keys()
            .filter(|a| target_apps.contains(a))
            .filter_map(|a| one(a))
            .collect()),
    }
}

/// The target's `pipeline.yaml` text with each promotion's version written
/// in: the tag and digest are set to the source's, and one the source does
/// not have is removed (a digest left behind would pin the old build under
/// the new tag). Nothing else changes. `file` names the file in errors.
pub fn apply(file: &Path, text: &str, promotions: &[Promotion]) -> Result<String, PromoteError> {
    let mut out = text.to_string();
    for p in promotions {
        let fields = [
            (Field::Tag, &p.version.tag, &p.replaces.tag),
            (Field::Digest, &p.version.digest, &p.replaces.digest),
        ];
        // Set first, remove after: the app never becomes an empty mapping.
        for (field, new, old) in fields {
            if let Some(v) = new.as_ref().filter(|v| Some(*v) != old.as_ref()) {
                out = edit::set_field(file, &out, &p.app, field, v)?;
            }
        }
        for (field, new, old) in fields {
            if new.is_none() && old.is_some() {
                out = edit::remove_field(file, &out, &p.app, field)?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: &str = "# CI writes this\napiVersion: keelson.dev/v1\nkind: Pipeline\nspec:\n  apps:\n    orders:\n      tag: \"1.42.0\"   # release\n      domain: orders.example.com\n    payments:\n      tag: \"0.19.4\"\n      digest: sha256:4d1b\n    mailer:\n      tag: \"2.3.0\"\n";
    const STAGING: &str = "spec:\n  apps:\n    orders:\n      tag: \"1.43.0-rc.2\"\n      domain: orders.staging.example.com\n    payments:\n      tag: \"0.20.0\"\n    mailer:\n      tag: \"2.3.0\"\n    search:\n      tag: \"0.1.0\"\n";

    fn plan(sel: Selection) -> Result<Vec<Promotion>, PromoteError> {
        let s = versions(Path::new("s.yaml"), STAGING).unwrap();
        let t = versions(Path::new("p.yaml"), PROD).unwrap();
        let apps: Vec<String> = ["orders", "payments", "mailer"].map(String::from).into();
        select(&sel, "staging", &s, "prod", &t, &apps)
    }

    #[test]
    fn all_moves_only_differing_apps_the_target_runs() {
        let p = plan(Selection::All).unwrap();
        let names: Vec<&str> = p.iter().map(|p| p.app.as_str()).collect();
        assert_eq!(names, ["orders", "payments"]);
        let out = apply(Path::new("p.yaml"), PROD, &p).unwrap();
        assert_eq!(
            out,
            PROD.replace("\"1.42.0\"", "\"1.43.0-rc.2\"")
                .replace("\"0.19.4\"\n      digest: sha256:4d1b\n", "\"0.20.0\"\n")
        );
    }

    #[test]
    fn one_app_errors_name_what_is_missing() {
        assert!(plan(Selection::App("mailer".into())).unwrap().is_empty());
        let e = plan(Selection::App("search".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`prod` does not run app `search`"), "{e}");
        let e = plan(Selection::App("ordrs".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `orders`?"), "{e}");
    }
}
