//! Changes to the record, as pure functions of it (the store may run them
//! again after losing a race): create or update a preview within the
//! limits, mark one as releasing, forget one.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::record::{AllocError, PreviewRecord, Previews, State, key};
use crate::spec::preview::PreviewTemplateSpec;

/// What a merge request asks of a preview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Merge request number.
    pub number: u64,
    /// Source branch.
    pub branch: String,
    /// Head commit.
    pub sha: String,
    /// Image tag from the merge request's pipeline, if known.
    pub tag: Option<String>,
    /// Time-to-live from `now` (or, with `ttl_from_creation`, from the
    /// preview's creation), replacing the template's (and, on an existing
    /// preview, its current expiry).
    pub ttl: Option<Duration>,
    /// Count `ttl` from the preview's creation rather than from now: a
    /// `preview-ttl/96h` label that stays on a merge request sets one
    /// expiry instead of pushing it out at every poll.
    pub ttl_from_creation: bool,
    /// `cli`, `github` or `gitlab`.
    pub source: String,
    /// The merge request's web page.
    pub url: Option<String>,
}

/// The platform-wide limit, and how many previews other clusters hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Previews recorded on other clusters.
    pub elsewhere: usize,
    /// `previews.maxTotal` of the config.
    pub max_total: Option<u32>,
}

/// RFC 3339, to the second, in UTC.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn expiry(from: DateTime<Utc>, ttl: Option<Duration>) -> Option<String> {
    let d = chrono::Duration::from_std(ttl?).ok()?;
    Some(stamp(from + d))
}

/// Create the preview of `req` (template `template` with `spec`), or
/// update the one that exists. A new preview is refused beyond the
/// template's and the platform's limits, and gets the lowest free block of
/// ports and id. Returns the record and whether it is new.
pub fn upsert(
    previews: &mut Previews,
    template: &str,
    spec: &PreviewTemplateSpec,
    req: &Request,
    limits: Limits,
    now: DateTime<Utc>,
) -> Result<(PreviewRecord, bool), AllocError> {
    let k = key(template, req.number);
    // The tombstone of an expired preview gives way to a new preview.
    if previews.by_key.get(&k).is_some_and(|r| !r.holds()) {
        previews.by_key.remove(&k);
    }
    if let Some(r) = previews.by_key.get_mut(&k) {
        if r.state == State::Releasing {
            return Err(AllocError::Releasing {
                name: r.name(),
                template: template.into(),
                number: req.number,
            });
        }
        let mut next = r.clone();
        next.branch.clone_from(&req.branch);
        next.sha.clone_from(&req.sha);
        if req.tag.is_some() {
            next.tag.clone_from(&req.tag);
        }
        if req.ttl.is_some() {
            let from = match r.created_at() {
                Some(created) if req.ttl_from_creation => created,
                _ => now,
            };
            next.expires = expiry(from, req.ttl);
        }
        if req.url.is_some() {
            next.url.clone_from(&req.url);
        }
        if next != *r {
            next.updated = stamp(now);
            *r = next;
        }
        return Ok((r.clone(), false));
    }
    let mine = previews.of_template(template).count();
    if let Some(max) = spec.max_previews
        && mine >= max as usize
    {
        return Err(AllocError::TemplateLimit {
            template: template.into(),
            count: mine,
            max,
        });
    }
    let total = limits.elsewhere + previews.holding().count();
    if let Some(max) = limits.max_total
        && total >= max as usize
    {
        return Err(AllocError::TotalLimit { count: total, max });
    }
    let ports = match spec.ports {
        Some(pool) => Some(previews.free_block(pool)?),
        None => None,
    };
    let id = previews.free_id(spec.ids.and_then(|i| i.base).unwrap_or(1));
    let ttl = req.ttl.or_else(|| {
        spec.ttl
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
    });
    let record = PreviewRecord {
        template: template.into(),
        number: req.number,
        branch: req.branch.clone(),
        sha: req.sha.clone(),
        tag: req.tag.clone(),
        ports,
        id,
        created: stamp(now),
        updated: stamp(now),
        expires: expiry(now, ttl),
        state: State::Active,
        reason: None,
        source: req.source.clone(),
        url: req.url.clone(),
    };
    previews.by_key.insert(k, record.clone());
    Ok((record, true))
}

/// Mark the preview at `key` as releasing, for `reason`. False when there
/// is no such preview.
pub fn mark_releasing(previews: &mut Previews, key: &str, reason: &str) -> bool {
    match previews.by_key.get_mut(key) {
        Some(r) => {
            if r.state != State::Releasing {
                r.state = State::Releasing;
                r.reason = Some(reason.to_string());
            }
            true
        }
        None => false,
    }
}

/// Turn the preview at `key` into the tombstone of an expired preview
/// (once its objects are gone): its block and id are free again, and the
/// record remembers the commit it expired at.
pub fn expire(previews: &mut Previews, key: &str) {
    if let Some(r) = previews.by_key.get_mut(key) {
        r.state = State::Expired;
        r.ports = None;
        r.id = 0;
        r.reason = Some(super::source::EXPIRED_REASON.into());
    }
}

/// Forget the preview at `key`: its block and id are free again.
pub fn forget(previews: &mut Previews, key: &str) {
    previews.by_key.remove(key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::preview::PortPool;

    fn spec() -> PreviewTemplateSpec {
        PreviewTemplateSpec {
            ttl: Some("72h".into()),
            max_previews: Some(2),
            ports: Some(PortPool {
                base: 30000,
                count: 3,
                max: None,
            }),
            ..PreviewTemplateSpec::default()
        }
    }

    fn req(number: u64) -> Request {
        Request {
            number,
            branch: "b".into(),
            sha: "abc".into(),
            source: "cli".into(),
            ..Request::default()
        }
    }

    #[test]
    fn creates_updates_and_refuses_beyond_the_limits() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut p = Previews::default();
        let (a, new) = upsert(&mut p, "t", &spec(), &req(1), Limits::default(), now).unwrap();
        assert!(new);
        assert_eq!(a.expires.as_deref(), Some("2026-12-04T10:00:00Z"));
        assert_eq!((a.ports.unwrap().first, a.id), (30000, 1));
        let mut again = req(1);
        again.sha = "def".into();
        let (a2, new) = upsert(&mut p, "t", &spec(), &again, Limits::default(), now).unwrap();
        assert!(!new);
        assert_eq!((a2.sha.as_str(), a2.ports, a2.id), ("def", a.ports, 1));
        let (b, _) = upsert(&mut p, "t", &spec(), &req(2), Limits::default(), now).unwrap();
        assert_eq!((b.ports.unwrap().first, b.id), (30003, 2));
        let e = upsert(&mut p, "t", &spec(), &req(3), Limits::default(), now).unwrap_err();
        assert!(
            matches!(
                e,
                AllocError::TemplateLimit {
                    count: 2,
                    max: 2,
                    ..
                }
            ),
            "{e}"
        );
        let total = Limits {
            elsewhere: 5,
            max_total: Some(6),
        };
        let e = upsert(&mut p, "u", &spec(), &req(3), total, now).unwrap_err();
        assert!(
            matches!(e, AllocError::TotalLimit { count: 7, max: 6 }),
            "{e}"
        );
        assert!(mark_releasing(&mut p, "t.1", "closed"));
        let e = upsert(&mut p, "t", &spec(), &req(1), Limits::default(), now).unwrap_err();
        assert!(matches!(e, AllocError::Releasing { .. }), "{e}");
        forget(&mut p, "t.1");
        let (c, _) = upsert(&mut p, "t", &spec(), &req(4), Limits::default(), now).unwrap();
        assert_eq!(
            (c.ports.unwrap().first, c.id),
            (30000, 1),
            "the freed block and id"
        );
    }

    #[test]
    fn a_label_ttl_counts_from_creation_and_a_tombstone_gives_way() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut p = Previews::default();
        upsert(&mut p, "t", &spec(), &req(1), Limits::default(), t0).unwrap();
        let mut labelled = req(1);
        labelled.ttl = Some(Duration::from_secs(96 * 3600));
        labelled.ttl_from_creation = true;
        for hours in [1, 5] {
            let later = t0 + chrono::Duration::hours(hours);
            let (r, _) = upsert(&mut p, "t", &spec(), &labelled, Limits::default(), later).unwrap();
            assert_eq!(
                r.expires.as_deref(),
                Some("2026-12-05T10:00:00Z"),
                "not pushed out"
            );
        }
        expire(&mut p, "t.1");
        let tomb = &p.by_key["t.1"];
        assert_eq!((tomb.state, tomb.ports, tomb.id), (State::Expired, None, 0));
        // The tombstone holds no place: the template's limit of 2 allows two more.
        upsert(&mut p, "t", &spec(), &req(2), Limits::default(), t0).unwrap();
        let (again, new) = upsert(&mut p, "t", &spec(), &req(1), Limits::default(), t0).unwrap();
        assert!(new);
        assert_eq!(
            (again.state, again.ports.unwrap().first),
            (State::Active, 30003)
        );
    }
}
