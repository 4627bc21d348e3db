//! run (to be implemented).
