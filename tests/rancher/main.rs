//! Rancher integration tests: keelson's Rancher client, planner and applier
//! against the in-memory Rancher v3 test server (`tests/rancher-server`),
//! over real HTTP (and HTTPS) on loopback.

mod common;
mod errors;
mod lifecycle;
mod members;
mod server;
mod tls;
