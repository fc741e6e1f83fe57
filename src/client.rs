//! client (being built).
