//! The packet tools that run inside the lab's nodes (lab-ping, lab-pong,
//! lab-capture) and the datalinks they run on. The binaries in `src/bin/`
//! are thin wrappers around these modules.

pub mod datalink;
pub mod frames;
