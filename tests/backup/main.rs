//! Integration tests of etcd backups against real etcd servers on loopback.
//!
//! Every test that needs etcd skips loudly (prints why) when the `etcd` or
//! `etcdctl` binaries are absent; `scripts/test` installs them.

mod cli;
mod common;
mod failures;
mod restore;
mod retention;
mod schedule;
mod snapshot;
mod tls;
mod verify;
