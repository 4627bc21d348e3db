//! links (to be implemented).
