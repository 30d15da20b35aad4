//! Integration tests of the controller (`keelson run`): real Git
//! repositories, real HTTP on loopback, a recording fake of the reconcile
//! pipeline (and the real binary where noted).

#[path = "../support/get_json.rs"]
mod get_json;
mod support;

mod affected;
mod binary;
mod daemon;
mod drift;
mod e2e;
mod http_auth;
mod page;
mod report;
mod safety;
mod source;
mod status;
mod sync;
mod webhook;
