//! Structural checks of a bbolt database file (etcd's backend format).
//!
//! A snapshot is exactly `pgid × pageSize` bytes (bbolt's `Tx.WriteTo`), so a
//! truncated file is caught by size alone; bit flips in metadata are caught by
//! the FNV-64a checksum of each meta page; damage inside the tree is caught by
//! walking every branch, leaf, bucket and the freelist and checking page ids,
//! flags and bounds.

use std::fs::File;
use std::os::unix::fs::FileExt;

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const FREELIST: u16 = 0x10;
const BUCKET_LEAF_FLAG: u32 = 0x01;
const NO_FREELIST: u64 = u64::MAX;
/// Bytes at the start of a file that hold both meta pages for any page size up to 32 KiB.
pub const HEAD_LEN: usize = 64 * 1024;

/// What is wrong with a bbolt file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BoltError {
    /// Too short to hold the meta pages.
    #[error("file is too short ({0} bytes) to be a bbolt database")]
    TooShort(u64),
    /// A meta page is invalid.
    #[error("meta page {page} is invalid: {reason}")]
    Meta {
        /// 0 or 1.
        page: u64,
        /// What failed.
        reason: String,
    },
    /// File size does not match the page count in the meta page.
    #[error(
        "size mismatch: meta says {pages} pages of {page_size} bytes ({expected} bytes), file holds {actual} bytes (truncated or padded)"
    )]
    Size {
        /// Page count from the meta page.
        pages: u64,
        /// Page size.
        page_size: u32,
        /// `pages × page_size`.
        expected: u64,
        /// Actual data length.
        actual: u64,
    },
    /// A page in the tree or freelist is damaged.
    #[error("page {page}: {reason}")]
    Page {
        /// Page id.
        page: u64,
        /// What failed.
        reason: String,
    },
    /// Reading the file failed.
    #[error("read failed: {0}")]
    Io(String),
}

/// The fields of a bbolt meta page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Page size in bytes.
    pub page_size: u32,
    /// Root page of the root bucket.
    pub root: u64,
    /// Freelist page, or `u64::MAX` when the freelist is not synced.
    pub freelist: u64,
    /// High-water mark: number of pages in the file.
    pub pgid: u64,
    /// Transaction id.
    pub txid: u64,
}

/// Counts from a full walk of the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WalkStats {
    /// Pages in the file.
    pub pages: u64,
    /// Branch and leaf pages reached from the root.
    pub tree_pages: u64,
    /// Pages listed as free.
    pub free_pages: u64,
    /// Buckets, nested ones included.
    pub buckets: u64,
    /// Key-value pairs that are not buckets.
    pub entries: u64,
    /// Highest main revision in etcd's `key` bucket, when present.
    pub revision: Option<i64>,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().expect("2 bytes"))
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// FNV-64a, the hash bbolt uses for meta checksums.
pub fn fnv64a(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Parses and validates the meta page that starts at `page`.
pub fn parse_meta(page: &[u8], id: u64) -> Result<Meta, BoltError> {
    let bad = |reason: String| BoltError::Meta { page: id, reason };
    if page.len() < PAGE_HEADER + 64 {
        return Err(bad("page is cut short".into()));
    }
    let flags = u16_at(page, 8);
    if flags & META == 0 {
        return Err(bad(format!("page flags {flags:#x} are not a meta page")));
    }
    let m = PAGE_HEADER;
    let magic = u32_at(page, m);
    if magic != MAGIC {
        return Err(bad(format!("magic {magic:#x}, expected {MAGIC:#x}")));
    }
    let version = u32_at(page, m + 4);
    if version != VERSION {
        return Err(bad(format!("version {version}, expected {VERSION}")));
    }
    let checksum = u64_at(page, m + 56);
    let computed = fnv64a(&page[m..m + 56]);
    if checksum != computed {
        return Err(bad(format!(
            "checksum {checksum:#x} does not match computed {computed:#x}"
        )));
    }
    let page_size = u32_at(page, m + 8);
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(bad(format!("implausible page size {page_size}")));
    }
    Ok(Meta {
        page_size,
        root: u64_at(page, m + 16),
        freelist: u64_at(page, m + 32),
        pgid: u64_at(page, m + 40),
        txid: u64_at(page, m + 48),
    })
}

/// Validates both meta pages in `head` (the file's first bytes) against the
/// data length and returns the meta with the highest transaction id.
pub fn check_head(head: &[u8], data_len: u64) -> Result<Meta, BoltError> {
    if head.len() < 1024 {
        return Err(BoltError::TooShort(data_len));
    }
    let m0 = parse_meta(head, 0)?;
    let ps = m0.page_size as usize;
    if head.len() < 2 * ps {
        return Err(BoltError::TooShort(data_len));
    }
    let m1 = parse_meta(&head[ps..2 * ps], 1)?;
    if m1.page_size != m0.page_size {
        return Err(BoltError::Meta {
            page: 1,
            reason: "page size differs from meta page 0".into(),
        });
    }
    let meta = if m1.txid > m0.txid { m1 } else { m0 };
    let expected = meta.pgid.saturating_mul(u64::from(meta.page_size));
    if expected != data_len {
        return Err(BoltError::Size {
            pages: meta.pgid,
            page_size: meta.page_size,
            expected,
            actual: data_len,
        });
    }
    if meta.root < 2 || meta.root >= meta.pgid {
        return Err(BoltError::Meta {
            page: 0,
            reason: format!("root page {} outside 2..{}", meta.root, meta.pgid),
        });
    }
    Ok(meta)
}

/// Walks the freelist and every bucket tree of the file.
pub fn walk(file: &File, meta: &Meta) -> Result<WalkStats, BoltError> {
    let mut walker = Walker {
        file,
        meta: *meta,
        seen: vec![false; usize::try_from(meta.pgid).unwrap_or(usize::MAX)],
        stats: WalkStats {
            pages: meta.pgid,
            ..WalkStats::default()
        },
    };
    walker.seen[0] = true;
    walker.seen[1] = true;
    if meta.freelist != NO_FREELIST {
        walker.freelist(meta.freelist)?;
    }
    walker.tree(meta.root, 0, Bucket::Root)?;
    Ok(walker.stats)
}

/// Which bucket a tree belongs to: the root bucket's children are named, and
/// etcd's `key` bucket holds revisions as big-endian keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Root,
    Key,
    Other,
}

struct Walker<'a> {
    file: &'a File,
    meta: Meta,
    seen: Vec<bool>,
    stats: WalkStats,
}

impl Walker<'_> {
    fn read_page(&mut self, id: u64, want: u16) -> Result<Vec<u8>, BoltError> {
        let page_err = |reason: String| BoltError::Page { page: id, reason };
        if id < 2 || id >= self.meta.pgid {
            return Err(page_err(format!("id outside 2..{}", self.meta.pgid)));
        }
        let ps = u64::from(self.meta.page_size);
        let mut header = [0u8; PAGE_HEADER];
        self.file
            .read_exact_at(&mut header, id * ps)
            .map_err(|e| BoltError::Io(e.to_string()))?;
        let stored = u64_at(&header, 0);
        if stored != id {
            return Err(page_err(format!("header names page {stored}")));
        }
        let flags = u16_at(&header, 8);
        if flags & want == 0 {
            return Err(page_err(format!("flags {flags:#x}, expected {want:#x}")));
        }
        let overflow = u64::from(u32_at(&header, 12));
        if id + overflow >= self.meta.pgid {
            return Err(page_err(format!("overflow {overflow} runs past the end")));
        }
        for p in id..=id + overflow {
            let slot = &mut self.seen[p as usize];
            if *slot {
                return Err(page_err(format!("page {p} is referenced twice")));
            }
            *slot = true;
        }
        let mut page = vec![0u8; ((overflow + 1) * ps) as usize];
        self.file
            .read_exact_at(&mut page, id * ps)
            .map_err(|e| BoltError::Io(e.to_string()))?;
        Ok(page)
    }

    fn freelist(&mut self, id: u64) -> Result<(), BoltError> {
        let page = self.read_page(id, FREELIST)?;
        let mut count = u64::from(u16_at(&page, 10));
        let mut start = PAGE_HEADER;
        if count == 0xFFFF {
            count = u64_at(&page, PAGE_HEADER);
            start += 8;
        }
        let end = start as u64 + count * 8;
        if end > page.len() as u64 {
            return Err(BoltError::Page {
                page: id,
                reason: format!("freelist of {count} ids overruns the page"),
            });
        }
        for i in 0..count as usize {
            let free = u64_at(&page, start + i * 8);
            if free < 2 || free >= self.meta.pgid {
                return Err(BoltError::Page {
                    page: id,
                    reason: format!("free page id {free} out of range"),
                });
            }
            let slot = &mut self.seen[free as usize];
            if *slot {
                return Err(BoltError::Page {
                    page: id,
                    reason: format!("free page {free} is also in use"),
                });
            }
            *slot = true;
        }
        self.stats.free_pages = count;
        Ok(())
    }

    /// Walks the tree rooted at page `id`; `depth` guards against cycles.
    fn tree(&mut self, id: u64, depth: usize, bucket: Bucket) -> Result<(), BoltError> {
        if depth > 64 {
            return Err(BoltError::Page {
                page: id,
                reason: "tree deeper than 64 levels".into(),
            });
        }
        let page = self.read_page(id, BRANCH | LEAF)?;
        self.stats.tree_pages += 1;
        self.node(id, &page, depth, bucket)
    }

    fn node(
        &mut self,
        id: u64,
        page: &[u8],
        depth: usize,
        bucket: Bucket,
    ) -> Result<(), BoltError> {
        let page_err = |reason: String| BoltError::Page { page: id, reason };
        let flags = u16_at(page, 8);
        let count = usize::from(u16_at(page, 10));
        if PAGE_HEADER + count * ELEMENT > page.len() {
            return Err(page_err(format!("{count} elements overrun the page")));
        }
        for i in 0..count {
            let el = PAGE_HEADER + i * ELEMENT;
            if flags & BRANCH != 0 {
                let child = u64_at(page, el + 8);
                self.tree(child, depth + 1, bucket)?;
                continue;
            }
            let elem_flags = u32_at(page, el);
            let pos = u32_at(page, el + 4) as usize;
            let ksize = u32_at(page, el + 8) as usize;
            let vsize = u32_at(page, el + 12) as usize;
            let kstart = el + pos;
            let vend = kstart + ksize + vsize;
            if vend > page.len() {
                return Err(page_err(format!("element {i} points past the page")));
            }
            let key = &page[kstart..kstart + ksize];
            let value = &page[kstart + ksize..vend];
            if elem_flags & BUCKET_LEAF_FLAG == 0 {
                self.stats.entries += 1;
                if bucket == Bucket::Key && key.len() >= 8 {
                    let rev = i64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
                    self.stats.revision = Some(self.stats.revision.map_or(rev, |r| r.max(rev)));
                }
                continue;
            }
            if value.len() < 16 {
                return Err(page_err(format!("bucket header of element {i} is short")));
            }
            self.stats.buckets += 1;
            let child = if bucket == Bucket::Root && key == b"key" {
                Bucket::Key
            } else {
                Bucket::Other
            };
            let root = u64_at(value, 0);
            if root == 0 {
                // Inline bucket: a whole leaf page stored inside the value.
                let inline = &value[16..];
                if inline.len() < PAGE_HEADER || u16_at(inline, 8) & LEAF == 0 {
                    return Err(page_err(format!("inline bucket of element {i} is damaged")));
                }
                self.node(id, inline, depth + 1, child)?;
            } else {
                self.tree(root, depth + 1, child)?;
            }
        }
        Ok(())
    }
}

/// The highest main revision in etcd's `key` bucket, found by descending the
/// right edge of the tree: a handful of page reads even for a large file.
pub fn last_revision(file: &File, meta: &Meta) -> Result<Option<i64>, BoltError> {
    let ps = u64::from(meta.page_size);
    let read = |id: u64| -> Result<Vec<u8>, BoltError> {
        if id < 2 || id >= meta.pgid {
            return Err(BoltError::Page {
                page: id,
                reason: format!("id outside 2..{}", meta.pgid),
            });
        }
        let mut header = [0u8; PAGE_HEADER];
        file.read_exact_at(&mut header, id * ps)
            .map_err(|e| BoltError::Io(e.to_string()))?;
        let overflow = u64::from(u32_at(&header, 12));
        if id + overflow >= meta.pgid {
            return Err(BoltError::Page {
                page: id,
                reason: format!("overflow {overflow} runs past the end"),
            });
        }
        let mut page = vec![0u8; ((overflow + 1) * ps) as usize];
        file.read_exact_at(&mut page, id * ps)
            .map_err(|e| BoltError::Io(e.to_string()))?;
        Ok(page)
    };
    let bad = |page: u64, reason: &str| BoltError::Page {
        page,
        reason: reason.to_string(),
    };
    // Find the `key` bucket's header in the root bucket.
    let mut id = meta.root;
    let mut depth = 0;
    let header: Vec<u8> = loop {
        depth += 1;
        if depth > 64 {
            return Err(bad(id, "tree deeper than 64 levels"));
        }
        let page = read(id)?;
        let flags = u16_at(&page, 8);
        let count = usize::from(u16_at(&page, 10));
        if PAGE_HEADER + count * ELEMENT > page.len() {
            return Err(bad(id, "elements overrun the page"));
        }
        let key_at = |i: usize| -> Option<&[u8]> {
            let el = PAGE_HEADER + i * ELEMENT;
            let (pos, ksize) = if flags & BRANCH != 0 {
                (u32_at(&page, el) as usize, u32_at(&page, el + 4) as usize)
            } else {
                (
                    u32_at(&page, el + 4) as usize,
                    u32_at(&page, el + 8) as usize,
                )
            };
            page.get(el + pos..el + pos + ksize)
        };
        if flags & BRANCH != 0 {
            // The last child whose first key is <= "key".
            let mut child = None;
            for i in 0..count {
                match key_at(i) {
                    Some(k) if k <= b"key".as_slice() => {
                        child = Some(u64_at(&page, PAGE_HEADER + i * ELEMENT + 8));
                    }
                    Some(_) => break,
                    None => return Err(bad(id, "element points past the page")),
                }
            }
            match child {
                Some(c) => id = c,
                None => return Ok(None),
            }
            continue;
        }
        let mut found = None;
        for i in 0..count {
            let el = PAGE_HEADER + i * ELEMENT;
            if key_at(i) == Some(b"key".as_slice()) && u32_at(&page, el) & BUCKET_LEAF_FLAG != 0 {
                let pos = u32_at(&page, el + 4) as usize;
                let vsize = u32_at(&page, el + 12) as usize;
                let start = el + pos + 3;
                found = page.get(start..start + vsize).map(<[u8]>::to_vec);
            }
        }
        match found {
            Some(h) if h.len() >= 16 => break h,
            Some(_) => return Err(bad(id, "short bucket header")),
            None => return Ok(None),
        }
    };
    // Damaged input must yield `None`, never a panic: every read is checked.
    let last_key = |page: &[u8]| -> Option<i64> {
        let count = usize::from(u16::from_le_bytes(page.get(10..12)?.try_into().ok()?));
        let el = PAGE_HEADER + count.checked_sub(1)? * ELEMENT;
        let pos = u32::from_le_bytes(page.get(el + 4..el + 8)?.try_into().ok()?) as usize;
        let key = page.get(el + pos..el + pos + 8)?;
        Some(i64::from_be_bytes(key.try_into().ok()?))
    };
    let root = u64_at(&header, 0);
    if root == 0 {
        return Ok(last_key(&header[16..]));
    }
    let mut id = root;
    for _ in 0..64 {
        let page = read(id)?;
        let flags = u16_at(&page, 8);
        let count = usize::from(u16_at(&page, 10));
        if count == 0 || PAGE_HEADER + count * ELEMENT > page.len() {
            return Ok(None);
        }
        if flags & BRANCH != 0 {
            id = u64_at(&page, PAGE_HEADER + (count - 1) * ELEMENT + 8);
            continue;
        }
        return Ok(last_key(&page));
    }
    Err(bad(id, "tree deeper than 64 levels"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv64a_matches_reference_vectors() {
        assert_eq!(fnv64a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv64a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn short_heads_are_rejected() {
        assert_eq!(check_head(&[0u8; 100], 100), Err(BoltError::TooShort(100)));
        let err = check_head(&[0u8; 8192], 8192).unwrap_err();
        assert!(matches!(err, BoltError::Meta { page: 0, .. }), "{err}");
    }
}
