//! runtime (to be implemented).
