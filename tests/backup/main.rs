//! Integration tests of etcd backups against real etcd servers on loopback.
//!
//! Every test that needs etcd fails when the `etcd` or `etcdctl` binaries are
//! absent (`scripts/test` installs them). Only with
//! `KEELSON_TEST_ALLOW_NO_ETCD=1`, for machines where etcd cannot be
//! installed, do they skip instead, printing `SKIPPED (NOT PASSED)`.

mod cli;
mod common;
mod failures;
mod restore;
mod retention;
mod schedule;
mod snapshot;
mod tls;
mod verify;
