//! The controller behind `keelson run` (placeholder until the controller work lands).

pub mod cli;
