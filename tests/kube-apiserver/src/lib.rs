//! An in-process Kubernetes API test server.
//!
//! It follows the real API server where clients can tell: REST paths, discovery (legacy and
//! aggregated), `Status` error bodies, resourceVersion conflicts, server-side apply with
//! managedFields, `dryRun=All`, selectors, paging and watch. Tests drive it with kubectl and
//! with keelson's kube client over real HTTP on a loopback port.
//!
//! ```no_run
//! # async fn demo() {
//! let srv = kube_apiserver::TestServer::start().await;
//! srv.write_kubeconfig("/tmp/kubeconfig").unwrap();
//! println!("{}", srv.url());
//! # }
//! ```

mod api;
mod controllers;
pub mod decode;
pub mod defaults;
pub mod faults;
mod hooks;
mod objects;
mod ops;
pub mod patch;
mod podspec;
pub mod quantity;
pub mod registry;
pub mod selector;
mod server;
pub mod ssa;
pub mod status;
mod store;
pub mod stored;
mod tls;
pub mod typed;
pub mod util;
pub mod validation;

pub use controllers::Rollout;
pub use faults::{Fault, FaultAction, Faults, RequestRecord};
pub use server::{Gvr, ServerOptions, StartError, TestServer};
