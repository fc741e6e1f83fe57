//! sign (being built).
