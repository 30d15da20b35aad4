//! Record: status and history of syncs (placeholder).
