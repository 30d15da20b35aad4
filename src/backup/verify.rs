//! `keelson backup verify`: the trailing sha256 and the bbolt structure.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::bolt::{self, BoltError, WalkStats};
use super::store;

/// Why a snapshot file failed verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// I/O error.
        source: io::Error,
    },
    /// The size rules out a trailing sha256 (etcd snapshot files are
    /// `n × 512 + 32` bytes).
    #[error(
        "{path}: {size} bytes is not a bbolt database plus a 32-byte sha256 trailer (truncated, or not a keelson/etcdctl snapshot)"
    )]
    NoTrailer {
        /// File.
        path: PathBuf,
        /// File size.
        size: u64,
    },
    /// The size differs from the size recorded in the metadata file.
    #[error(
        "{path}: {size} bytes, but the metadata file says {expected}: the file was truncated or replaced, use another snapshot"
    )]
    SizeMismatch {
        /// File.
        path: PathBuf,
        /// Actual size.
        size: u64,
        /// From the metadata file.
        expected: u64,
    },
    /// The data does not hash to the trailer.
    #[error(
        "{path}: sha256 of the data is {actual} but the trailer says {expected}: the file is corrupt, use another snapshot"
    )]
    Checksum {
        /// File.
        path: PathBuf,
        /// Trailer.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// The trailer differs from the metadata file.
    #[error(
        "{path}: sha256 {actual} differs from {expected} recorded in the metadata file: the file was replaced or damaged"
    )]
    MetadataMismatch {
        /// File.
        path: PathBuf,
        /// From the metadata file.
        expected: String,
        /// From the file.
        actual: String,
    },
    /// The bbolt structure is damaged.
    #[error("{path}: {source}: the file is corrupt, use another snapshot")]
    Bolt {
        /// File.
        path: PathBuf,
        /// What is wrong.
        source: BoltError,
    },
}

/// What a successful verification found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// File checked.
    pub path: PathBuf,
    /// File size.
    pub size: u64,
    /// Hex sha256 of the database bytes.
    pub sha256: String,
    /// bbolt page size.
    pub page_size: u32,
    /// Counts from walking the tree.
    pub walk: WalkStats,
}

/// Verifies a snapshot file: its size against the metadata file (when there
/// is one), the trailing sha256 against the data and the metadata, bbolt meta
/// pages and size, and a walk of every bucket tree and the freelist.
pub fn verify_file(path: &Path) -> Result<VerifyReport, VerifyError> {
    let read_err = |source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    let recorded = store::read_meta(path);
    if let Some(meta) = &recorded
        && meta.size != size
    {
        return Err(VerifyError::SizeMismatch {
            path: path.to_path_buf(),
            size,
            expected: meta.size,
        });
    }
    if size < 32 + 1024 || size % 512 != 32 {
        return Err(VerifyError::NoTrailer {
            path: path.to_path_buf(),
            size,
        });
    }
    let data_len = size - 32;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::with_capacity(bolt::HEAD_LEN);
    let mut left = data_len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..want]).map_err(read_err)?;
        if head.len() < bolt::HEAD_LEN {
            let take = (bolt::HEAD_LEN - head.len()).min(want);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    let mut trailer = [0u8; 32];
    file.read_exact_at(&mut trailer, data_len)
        .map_err(read_err)?;
    let actual: [u8; 32] = hasher.finalize().into();
    if actual != trailer {
        return Err(VerifyError::Checksum {
            path: path.to_path_buf(),
            expected: hex::encode(trailer),
            actual: hex::encode(actual),
        });
    }
    let actual_hex = hex::encode(actual);
    if let Some(meta) = recorded
        && meta.sha256 != actual_hex
    {
        return Err(VerifyError::MetadataMismatch {
            path: path.to_path_buf(),
            expected: meta.sha256,
            actual: actual_hex,
        });
    }
    let bolt_err = |source| VerifyError::Bolt {
        path: path.to_path_buf(),
        source,
    };
    let meta = bolt::check_head(&head, data_len).map_err(bolt_err)?;
    let walk = bolt::walk(&file, &meta).map_err(bolt_err)?;
    Ok(VerifyReport {
        path: path.to_path_buf(),
        size,
        sha256: actual_hex,
        page_size: meta.page_size,
        walk,
    })
}
