//! Keelson: a declarative GitOps reconciler.
//!
//! The modules follow the pipeline in DESIGN.md: `source` → `spec` → `check` →
//! `render` → `observe` → `plan` → `apply` → `record`. Beside them sit `cli`,
//! `controller`, `rancher` and `backup`. Pure stages take values and return
//! values; I/O sits behind small traits at the edges.

// `print!` and friends panic on a closed pipe: print through
// `cli::output`'s macros, which end keelson quietly instead.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod apply;
pub mod backup;
pub mod check;
pub mod cli;
pub mod config;
pub mod controller;
pub mod diag;
pub mod forge;
pub mod http;
pub mod observe;
pub mod plan;
pub mod preview;
pub mod promote;
pub mod quantity;
pub mod rancher;
pub mod reconcile;
pub mod record;
pub mod render;
pub mod source;
pub mod spec;
pub mod yaml;
