//! The merge request source: what `keelson run` does with one template's
//! previews, given the open merge requests that carry its label and what
//! the cluster records. A pure function of its inputs (the clock included),
//! so every rule is tested without a forge or a cluster:
//!
//! - an open merge request with the label gets a preview, or updates its
//!   preview (new head commit, new tag, new web page);
//! - a preview the source made whose merge request is no longer open with
//!   the label (closed, merged, unlabelled) is released;
//! - a preview whose time-to-live ran out is released, whoever made it; a
//!   merge request label `preview-ttl/96h` (the template's
//!   `ttlLabelPrefix`) sets the time-to-live counted from the preview's
//!   creation. The source does not make an expired preview again until the
//!   merge request gets a new commit or a label that gives it a later
//!   expiry;
//! - a preview left releasing by a failed retirement is released again.
//!
//! Without a successful list (no source, or the forge failed), nothing is
//! created and nothing is released for being absent: an answer that did
//! not come proves nothing. Time-to-live still acts.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::lifecycle::Request;
use super::record::{Previews, State};
use crate::forge::MergeRequest;
use crate::spec::preview::{DEFAULT_TTL_LABEL_PREFIX, PreviewTemplateSpec};

/// Why a preview is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Its merge request is no longer open with the label (the caller asks
    /// the forge whether it was closed, merged or unlabelled).
    Gone,
    /// Its time-to-live ran out.
    Expired,
    /// An earlier release did not finish; the recorded reason.
    Unfinished(String),
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create or update the preview of this merge request.
    Upsert(Request),
    /// Release preview `number`. `tombstone`: keep the record of an expired
    /// preview whose merge request is still open.
    Release {
        /// Merge request number.
        number: u64,
        /// Why.
        why: Why,
        /// Keep a tombstone.
        tombstone: bool,
    },
    /// Drop the tombstone of `number`: its merge request is done.
    Forget {
        /// Merge request number.
        number: u64,
    },
}

/// The time-to-live a merge request's labels give, with `prefix`
/// (`preview-ttl/96h` → 96 hours). A label that does not parse is ignored
/// (and named in the second value, for the log).
pub fn label_ttl(labels: &[String], prefix: &str) -> (Option<Duration>, Option<String>) {
    let mut bad = None;
    for l in labels {
        if let Some(text) = l.strip_prefix(prefix) {
            match humantime::parse_duration(text) {
                Ok(d) => return (Some(d), None),
                Err(_) => bad = Some(l.clone()),
            }
        }
    }
    (None, bad)
}

/// The request a merge request makes of template `spec`'s previews;
/// `source` is `github` or `gitlab`.
pub fn request_of(mr: &MergeRequest, spec: &PreviewTemplateSpec, source: &str) -> Request {
    let prefix = spec
        .ttl_label_prefix
        .as_deref()
        .unwrap_or(DEFAULT_TTL_LABEL_PREFIX);
    let (ttl, _) = label_ttl(&mr.labels, prefix);
    Request {
        number: mr.number,
        branch: mr.head_branch.clone(),
        sha: mr.head_sha.clone(),
        tag: None,
        ttl,
        ttl_from_creation: true,
        source: source.to_string(),
        url: Some(mr.web_url.clone()),
    }
}

/// What to do with `template`'s previews recorded in `records`. `open`:
/// the open merge requests with the template's label, as listed from
/// `source` (`github`/`gitlab`); `None` when there is no list.
pub fn plan(
    template: &str,
    spec: &PreviewTemplateSpec,
    source: &str,
    open: Option<&[MergeRequest]>,
    records: &Previews,
    now: DateTime<Utc>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mine: Vec<_> = records
        .by_key
        .values()
        .filter(|r| r.template == template)
        .collect();
    for r in &mine {
        let listed = open.map(|o| o.iter().find(|m| m.number == r.number));
        let made_here = r.source == source;
        match r.state {
            State::Releasing => steps.push(Step::Release {
                number: r.number,
                why: Why::Unfinished(r.reason.clone().unwrap_or_default()),
                tombstone: r.reason.as_deref() == Some(EXPIRED_REASON),
            }),
            State::Expired => {
                if made_here && matches!(listed, Some(None)) {
                    steps.push(Step::Forget { number: r.number });
                }
            }
            State::Active => {
                // Gone from the list (when there is one) takes precedence.
                if made_here && matches!(listed, Some(None)) {
                    steps.push(Step::Release {
                        number: r.number,
                        why: Why::Gone,
                        tombstone: false,
                    });
                    continue;
                }
                let label_expiry = listed
                    .flatten()
                    .map(|m| request_of(m, spec, source))
                    .and_then(|req| {
                        let created = r.created_at()?;
                        Some(created + chrono::Duration::from_std(req.ttl?).ok()?)
                    });
                let expires = label_expiry.or_else(|| r.expires_at());
                if expires.is_some_and(|e| e <= now) {
                    steps.push(Step::Release {
                        number: r.number,
                        why: Why::Expired,
                        // Remember it only while its merge request is open.
                        tombstone: made_here && matches!(listed, Some(Some(_))),
                    });
                }
            }
        }
    }
    for mr in open.unwrap_or_default() {
        let req = request_of(mr, spec, source);
        match mine.iter().find(|r| r.number == mr.number) {
            None => steps.push(Step::Upsert(req)),
            Some(r) if r.state == State::Active => {
                let releasing = steps
                    .iter()
                    .any(|s| matches!(s, Step::Release { number, .. } if *number == mr.number));
                if !releasing {
                    steps.push(Step::Upsert(req));
                }
            }
            Some(r) if r.state == State::Expired => {
                // A new commit, or a label that reaches past now, brings it back.
                let later = req.ttl.and_then(|ttl| {
                    let created = r.created_at()?;
                    Some(created + chrono::Duration::from_std(ttl).ok()? > now)
                });
                if r.sha != mr.head_sha || later == Some(true) {
                    steps.push(Step::Upsert(Request {
                        ttl_from_creation: false,
                        ..req
                    }));
                }
            }
            Some(_) => {}
        }
    }
    steps
}

/// The recorded reason of a release for an expired time-to-live.
pub const EXPIRED_REASON: &str = "its time-to-live ran out";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::MergeRequestState;
    use crate::preview::record::PreviewRecord;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn mr(number: u64, sha: &str, labels: &[&str]) -> MergeRequest {
        MergeRequest {
            number,
            title: String::new(),
            state: MergeRequestState::Open,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            head_branch: format!("b{number}"),
            head_sha: sha.into(),
            base_branch: "main".into(),
            web_url: format!("https://forge/{number}"),
        }
    }

    fn rec(number: u64, source: &str, state: State, expires: Option<&str>) -> PreviewRecord {
        PreviewRecord {
            template: "t".into(),
            number,
            sha: "aaa".into(),
            id: number,
            created: "2026-12-01T00:00:00Z".into(),
            expires: expires.map(str::to_string),
            state,
            source: source.into(),
            ..PreviewRecord::default()
        }
    }

    fn with(records: &[PreviewRecord]) -> Previews {
        Previews {
            by_key: records.iter().map(|r| (r.key(), r.clone())).collect(),
        }
    }

    const NOW: &str = "2026-12-02T00:00:00Z";

    #[test]
    fn open_labelled_merge_requests_get_previews_and_others_are_released() {
        let spec = PreviewTemplateSpec::default();
        let records = with(&[
            rec(1, "github", State::Active, None),
            rec(2, "github", State::Active, None),
            rec(3, "cli", State::Active, None),
        ]);
        let open = [mr(1, "bbb", &["deploy/preview"]), mr(4, "ccc", &[])];
        let steps = plan("t", &spec, "github", Some(&open), &records, at(NOW));
        assert_eq!(
            steps,
            vec![
                Step::Release {
                    number: 2,
                    why: Why::Gone,
                    tombstone: false
                },
                Step::Upsert(request_of(&open[0], &spec, "github")),
                Step::Upsert(request_of(&open[1], &spec, "github")),
            ],
            "3 was made by the CLI: not the source's to release"
        );
        // No list: nothing is created, nothing released for being absent.
        assert!(plan("t", &spec, "github", None, &records, at(NOW)).is_empty());
    }

    #[test]
    fn the_time_to_live_releases_and_a_label_or_a_push_brings_it_back() {
        let spec = PreviewTemplateSpec::default();
        let records = with(&[
            rec(1, "github", State::Active, Some("2026-12-01T12:00:00Z")),
            rec(2, "cli", State::Active, Some("2026-12-01T12:00:00Z")),
            rec(3, "github", State::Active, Some("2026-12-01T12:00:00Z")),
        ]);
        // 3 has a label giving it 96h from creation: not expired.
        let open = [mr(1, "aaa", &[]), mr(3, "aaa", &["preview-ttl/96h"])];
        let steps = plan("t", &spec, "github", Some(&open), &records, at(NOW));
        assert_eq!(
            steps[..2],
            [
                Step::Release {
                    number: 1,
                    why: Why::Expired,
                    tombstone: true
                },
                Step::Release {
                    number: 2,
                    why: Why::Expired,
                    tombstone: false
                },
            ]
        );
        assert_eq!(steps.len(), 3);
        let Step::Upsert(r3) = &steps[2] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            (r3.number, r3.ttl, r3.ttl_from_creation),
            (3, Some(Duration::from_secs(96 * 3600)), true)
        );

        // The tombstone stays while the merge request is open at that commit.
        let tomb = with(&[rec(1, "github", State::Expired, None)]);
        assert!(plan("t", &spec, "github", Some(&open[..1]), &tomb, at(NOW)).is_empty());
        // A push brings it back, as a new preview.
        let pushed = [mr(1, "ddd", &[])];
        let steps = plan("t", &spec, "github", Some(&pushed), &tomb, at(NOW));
        assert!(
            matches!(&steps[..], [Step::Upsert(r)] if r.sha == "ddd"),
            "{steps:?}"
        );
        // So does a label reaching past now; one that does not, does not.
        for (label, back) in [("preview-ttl/72h", true), ("preview-ttl/12h", false)] {
            let labelled = [mr(1, "aaa", &[label])];
            let steps = plan("t", &spec, "github", Some(&labelled), &tomb, at(NOW));
            assert_eq!(!steps.is_empty(), back, "{label}: {steps:?}");
        }
        // Once the merge request is done, the tombstone goes.
        assert_eq!(
            plan("t", &spec, "github", Some(&[]), &tomb, at(NOW)),
            [Step::Forget { number: 1 }]
        );
    }

    #[test]
    fn ttl_labels_parse_with_the_prefix() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            label_ttl(&l(&["x", "preview-ttl/2h"]), "preview-ttl/"),
            (Some(Duration::from_secs(7200)), None)
        );
        assert_eq!(
            label_ttl(&l(&["preview-ttl/soon"]), "preview-ttl/"),
            (None, Some("preview-ttl/soon".into()))
        );
    }
}
