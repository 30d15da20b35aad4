//! `keelson reconcile` end to end: the real binary, over real HTTP, against
//! the Kubernetes API test server.

mod drift;
mod health;
mod intent;
mod inventory_size;
mod namespace_move;
mod rancher;
mod real_server;
mod reconcile;
mod retire;
mod status_fence;
mod symlinks;
mod tenancy;
mod waits;

mod harness;

pub use harness::{Harness, copy_dir};
