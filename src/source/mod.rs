//! Source: Git checkouts and local trees (placeholder).
