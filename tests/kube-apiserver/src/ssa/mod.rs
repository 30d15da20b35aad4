//! Server-side apply: field sets, merge keys and managedFields bookkeeping.

pub mod fieldset;
pub mod managed;
pub mod reset;
pub mod schema;
pub mod walk;

#[cfg(test)]
mod tests;
