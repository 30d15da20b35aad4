//! Rancher integration tests: keelson's Rancher client, planner and applier
//! against the in-memory Rancher v3 test server (`tests/rancher-server`),
//! over real HTTP (and HTTPS) on loopback.

mod common;
mod errors;
mod fidelity;
mod lifecycle;
mod members;
mod proxy;
mod quota;
mod server;
mod tls;
