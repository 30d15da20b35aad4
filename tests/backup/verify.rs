//! `verify` catches truncation, bit flips and structural damage.

use std::path::{Path, PathBuf};

use keelson::backup::bolt::BoltError;
use keelson::backup::store::Trigger;
use keelson::backup::{VerifyError, take_snapshot, verify_file};
use sha2::{Digest, Sha256};

use crate::common::{TestEtcd, at};
use crate::require_etcd;

async fn good_snapshot(etcd: &TestEtcd) -> PathBuf {
    etcd.fill(200, 1000).await;
    let cfg = etcd.config("snaps");
    take_snapshot("v", &cfg, None, Trigger::OnDemand, at(2, 0, 0))
        .await
        .expect("snapshot succeeds")
        .path
}

/// Writes a tampered copy; with `reseal` the trailer is recomputed so only
/// the structural checks can notice.
fn tampered(src: &Path, name: &str, reseal: bool, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(src).unwrap();
    f(&mut bytes);
    if reseal {
        let n = bytes.len() - 32;
        let digest = Sha256::digest(&bytes[..n]);
        bytes[n..].copy_from_slice(&digest);
    }
    let path = src.with_file_name(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_rejects_truncation_and_corruption() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    let good = good_snapshot(&etcd).await;
    verify_file(&good).expect("untouched snapshot verifies");

    let cut_page = tampered(&good, "cut-page.db", false, |b| {
        b.drain(b.len() - 32 - 4096..b.len() - 32);
    });
    assert!(
        matches!(verify_file(&cut_page), Err(VerifyError::Checksum { .. })),
        "{:?}",
        verify_file(&cut_page)
    );

    let cut_odd = tampered(&good, "cut-odd.db", false, |b| b.truncate(b.len() - 1000));
    assert!(matches!(
        verify_file(&cut_odd),
        Err(VerifyError::NoTrailer { .. })
    ));

    let flipped = tampered(&good, "flipped.db", false, |b| {
        let mid = b.len() / 2;
        b[mid] ^= 0x01;
    });
    let err = verify_file(&flipped).unwrap_err();
    assert!(matches!(err, VerifyError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("corrupt"), "tells the user: {err}");

    // A whole page dropped and the trailer resealed: only the page count in
    // the meta page can tell.
    let short = tampered(&good, "short.db", true, |b| {
        b.drain(b.len() - 32 - 4096..b.len() - 32);
    });
    match verify_file(&short) {
        Err(VerifyError::Bolt {
            source: BoltError::Size { .. },
            ..
        }) => {}
        other => panic!("expected a size mismatch, got {other:?}"),
    }

    // Meta page magic damaged, trailer resealed.
    let bad_magic = tampered(&good, "magic.db", true, |b| b[16] ^= 0xFF);
    match verify_file(&bad_magic) {
        Err(VerifyError::Bolt {
            source: BoltError::Meta { page: 0, .. },
            ..
        }) => {}
        other => panic!("expected a meta error, got {other:?}"),
    }

    // Meta checksum: flip the txid of meta page 1.
    let bad_sum = tampered(&good, "metasum.db", true, |b| b[4096 + 16 + 48] ^= 0x01);
    match verify_file(&bad_sum) {
        Err(VerifyError::Bolt {
            source: BoltError::Meta { page: 1, reason },
            ..
        }) => {
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected a meta checksum error, got {other:?}"),
    }

    // The root page's header names a different page id.
    let root = u64::from_le_bytes(std::fs::read(&good).unwrap()[32..40].try_into().unwrap());
    let bad_root = tampered(&good, "root.db", true, |b| {
        let off = (root * 4096) as usize;
        b[off] ^= 0x01;
    });
    match verify_file(&bad_root) {
        Err(VerifyError::Bolt {
            source: BoltError::Page { page, .. },
            ..
        }) => assert_eq!(page, root),
        other => panic!("expected a page error, got {other:?}"),
    }
}

#[test]
fn verify_refuses_a_file_that_is_not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-20260101T000000.000Z-rev1.db");
    std::fs::write(&path, vec![0u8; 4096 * 4 + 32]).unwrap();
    let err = verify_file(&path).unwrap_err();
    assert!(matches!(err, VerifyError::Checksum { .. }), "{err}");
    let missing = verify_file(&dir.path().join("missing.db")).unwrap_err();
    assert!(matches!(missing, VerifyError::Read { .. }));
}

/// Random damage with a resealed trailer must give an error or a clean
/// report, never a panic or a hang, in both the full walk and the quick
/// revision lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_damage_never_panics() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    let good = good_snapshot(&etcd).await;
    let original = std::fs::read(&good).unwrap();
    let data_len = original.len() - 32;
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let path = good.with_file_name("fuzz.db");
    let mut rejected = 0;
    for round in 0..300 {
        let mut bytes = original.clone();
        for _ in 0..1 + round % 4 {
            // Aim at page headers and element tables, where damage matters most.
            let page = (next() as usize) % (data_len / 4096);
            let off = page * 4096 + (next() as usize) % 256;
            bytes[off] ^= 1 << (next() % 8);
        }
        let digest = Sha256::digest(&bytes[..data_len]);
        bytes[data_len..].copy_from_slice(&digest);
        std::fs::write(&path, &bytes).unwrap();
        if verify_file(&path).is_err() {
            rejected += 1;
        }
        let head = &bytes[..bolt_head_len(data_len)];
        if let Ok(meta) = keelson::backup::bolt::check_head(head, data_len as u64) {
            let file = std::fs::File::open(&path).unwrap();
            let _ = keelson::backup::bolt::last_revision(&file, &meta);
        }
    }
    eprintln!("random damage: {rejected}/300 rejected by verify");
    assert!(rejected > 0, "some damage must be detected");
}

fn bolt_head_len(data_len: usize) -> usize {
    data_len.min(keelson::backup::bolt::HEAD_LEN)
}
