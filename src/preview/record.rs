//! What the cluster records about each preview, and the allocation of port
//! blocks and ids. Allocation is a pure function of what is recorded: the
//! lowest block of ports and the lowest id that no recorded preview holds,
//! so the same record always gives the same answer, on any replica, after
//! any restart. A preview keeps its block while it is being released; the
//! block is free again only once the record of it is gone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::params::preview_name;
use crate::spec::preview::PortPool;

/// A block of consecutive ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortBlock {
    /// The first port.
    pub first: u16,
    /// How many ports.
    pub count: u16,
}

impl PortBlock {
    /// One past the last port.
    fn end(self) -> u32 {
        u32::from(self.first) + u32::from(self.count)
    }

    /// Whether two blocks share a port.
    pub fn overlaps(self, other: PortBlock) -> bool {
        u32::from(self.first) < other.end() && u32::from(other.first) < self.end()
    }

    /// The ports, in order.
    pub fn ports(self) -> impl Iterator<Item = u16> {
        (0..self.count).map(move |i| self.first + i)
    }
}

/// Where a preview is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// Reconciled as an environment.
    #[default]
    Active,
    /// Being retired: no longer an environment, still holding its block
    /// and id until its objects are gone.
    Releasing,
    /// Released because its time-to-live ran out, while its merge request
    /// stays open: a tombstone that holds no block and no id, so that the
    /// merge request source does not make the same preview again. A new
    /// commit on the merge request, a longer `preview-ttl/` label, or
    /// `keelson preview create` makes a new preview in its place.
    Expired,
}

/// One preview, as recorded in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewRecord {
    /// Template name.
    pub template: String,
    /// Merge request number.
    pub number: u64,
    /// Source branch.
    pub branch: String,
    /// Head commit SHA.
    pub sha: String,
    /// Image tag given by CI; `None`: the template's `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The preview's ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortBlock>,
    /// The preview's id.
    pub id: u64,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// When its inputs last changed (RFC 3339).
    #[serde(default)]
    pub updated: String,
    /// When its time-to-live runs out (RFC 3339); none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Active or being released.
    #[serde(default)]
    pub state: State,
    /// Why it is being released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who made it: `cli`, `github` or `gitlab`.
    #[serde(default)]
    pub source: String,
    /// The merge request's web page, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl PreviewRecord {
    /// The environment name, `preview-<template>-<number>`.
    pub fn name(&self) -> String {
        preview_name(&self.template, self.number)
    }

    /// The record's key: `<template>.<number>` (a valid ConfigMap key).
    pub fn key(&self) -> String {
        key(&self.template, self.number)
    }

    /// When the time-to-live runs out.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        let e = self.expires.as_deref()?;
        DateTime::parse_from_rfc3339(e)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// When it was created.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.created)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Whether the time-to-live has run out at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at().is_some_and(|e| e <= now)
    }

    /// Whether it holds its block, its id and a place within the limits:
    /// every state but [`State::Expired`].
    pub fn holds(&self) -> bool {
        self.state != State::Expired
    }
}

/// The record key of a preview.
pub fn key(template: &str, number: u64) -> String {
    format!("{template}.{number}")
}

/// Every preview recorded on one cluster, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Previews {
    /// By `<template>.<number>`.
    pub by_key: BTreeMap<String, PreviewRecord>,
}

/// Why no block or id could be handed out, or a limit refused a preview.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The port pool is used up.
    #[error(
        "no free block of {count} ports in {base}..={last}: {held} previews hold ports on this cluster"
    )]
    PortsExhausted {
        /// Block size.
        count: u16,
        /// Pool start.
        base: u16,
        /// Pool end.
        last: u16,
        /// Previews holding ports.
        held: usize,
    },
    /// The template's limit is reached.
    #[error(
        "template `{template}` has {count} of its {max} previews (spec.maxPreviews); release one (`keelson preview delete {template} NUMBER`) or raise the limit"
    )]
    TemplateLimit {
        /// Template.
        template: String,
        /// Previews it has.
        count: usize,
        /// Its limit.
        max: u32,
    },
    /// The preview is still being released.
    #[error(
        "preview {name} is being released; finish with `keelson preview delete {template} {number}`, then create it again"
    )]
    Releasing {
        /// Preview name.
        name: String,
        /// Template.
        template: String,
        /// Merge request number.
        number: u64,
    },
    /// The platform's limit is reached.
    #[error(
        "the platform allows {max} previews in total (previews.maxTotal in the keelson config) and {count} exist; release one first"
    )]
    TotalLimit {
        /// Previews that exist.
        count: usize,
        /// The limit.
        max: u32,
    },
}

impl Previews {
    /// The previews of `template` that hold a block (tombstones of expired
    /// ones left out).
    pub fn of_template<'a>(&'a self, template: &'a str) -> impl Iterator<Item = &'a PreviewRecord> {
        self.holding().filter(move |r| r.template == template)
    }

    /// The previews that hold a block and an id.
    pub fn holding(&self) -> impl Iterator<Item = &PreviewRecord> {
        self.by_key.values().filter(|r| r.holds())
    }

    /// The lowest block of `pool.count` ports within the pool that no
    /// recorded preview (of any template: ports are the cluster's) holds.
    pub fn free_block(&self, pool: PortPool) -> Result<PortBlock, AllocError> {
        let mut taken: Vec<PortBlock> = self.holding().filter_map(|r| r.ports).collect();
        taken.sort();
        let mut candidate = PortBlock {
            first: pool.base,
            count: pool.count,
        };
        loop {
            match taken.iter().find(|b| b.overlaps(candidate)) {
                None if candidate.end() - 1 <= u32::from(pool.last()) => return Ok(candidate),
                None => break,
                Some(b) => match u16::try_from(b.end()) {
                    Ok(next) => candidate.first = next,
                    Err(_) => break,
                },
            }
        }
        Err(AllocError::PortsExhausted {
            count: pool.count,
            base: pool.base,
            last: pool.last(),
            held: taken.len(),
        })
    }

    /// The lowest id at or above `base` that no recorded preview holds.
    pub fn free_id(&self, base: u64) -> u64 {
        let taken: std::collections::BTreeSet<u64> = self.holding().map(|r| r.id).collect();
        (base..).find(|i| !taken.contains(i)).unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(template: &str, number: u64, first: u16, count: u16, id: u64) -> PreviewRecord {
        PreviewRecord {
            template: template.into(),
            number,
            ports: Some(PortBlock { first, count }),
            id,
            ..PreviewRecord::default()
        }
    }

    fn with(records: &[PreviewRecord]) -> Previews {
        Previews {
            by_key: records.iter().map(|r| (r.key(), r.clone())).collect(),
        }
    }

    const POOL: PortPool = PortPool {
        base: 30000,
        count: 3,
        max: Some(30011),
    };

    #[test]
    fn hands_out_the_lowest_free_block_and_id() {
        let p = with(&[rec("a", 1, 30000, 3, 1), rec("a", 2, 30006, 3, 3)]);
        assert_eq!(
            p.free_block(POOL),
            Ok(PortBlock {
                first: 30003,
                count: 3
            })
        );
        assert_eq!(p.free_id(1), 2);
    }

    #[test]
    fn blocks_of_other_templates_and_sizes_are_avoided() {
        // A 2-port block of another template sits across two 3-port slots.
        let p = with(&[rec("b", 1, 30002, 2, 1)]);
        assert_eq!(
            p.free_block(POOL),
            Ok(PortBlock {
                first: 30004,
                count: 3
            })
        );
    }

    #[test]
    fn a_full_pool_is_refused_with_the_reason() {
        let p = with(&[
            rec("a", 1, 30000, 3, 1),
            rec("a", 2, 30003, 3, 2),
            rec("a", 3, 30006, 3, 3),
            rec("a", 4, 30009, 3, 4),
        ]);
        let e = p.free_block(POOL).unwrap_err();
        assert!(
            matches!(e, AllocError::PortsExhausted { held: 4, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("30000..=30011"), "{e}");
    }

    #[test]
    fn the_end_of_the_port_range_does_not_overflow() {
        let pool = PortPool {
            base: 65533,
            count: 3,
            max: Some(65535),
        };
        let p = with(&[rec("a", 1, 65533, 3, 1)]);
        assert!(p.free_block(pool).is_err());
        assert_eq!(
            with(&[]).free_block(pool),
            Ok(PortBlock {
                first: 65533,
                count: 3
            })
        );
    }
}
