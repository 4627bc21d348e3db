//! labctl: containerized network test labs.
//!
//! The modules follow a lab's life:
//! - [`lab`]: the lab file: parse, validate, explain (graph, schema). A
//!   validated [`lab::Lab`] is the only type the rest accepts.
//! - [`runtime`]: the Docker side: tools image, containers, labels.
//! - [`links`]: veth pairs wired into the nodes' namespaces through netlink.
//! - [`run`]: the steps of a lab and the checks on their output.
//! - [`report`]: summary, JUnit and JSON reports.
//! - [`tools`]: the packet tools that run inside nodes, and their datalinks.

pub mod lab;
pub mod links;
pub mod report;
pub mod run;
pub mod runtime;
pub mod tools;
