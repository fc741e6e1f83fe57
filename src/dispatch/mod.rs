//! dispatch (being built).
