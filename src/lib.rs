//! labctl: containerized network test labs.
//!
//! The modules follow a lab's life (docs/architecture.md: the layers and
//! who may call whom):
//! - [`lab`]: the lab file: parse, validate, explain (graph, schema). A
//!   validated [`lab::Lab`] is the only type the rest accepts.
//! - [`lifecycle`]: `labctl run` end to end, for any runtime: deploy,
//!   steps, evidence, teardown on every path, reports.
//! - [`runtime`]: the runtimes behind three seams (nodes, links,
//!   processes): Docker's containers and bare network namespaces
//!   (netns). Deploy and teardown, the same for both.
//! - [`links`]: veth pairs wired into the nodes' namespaces through netlink.
//! - [`run`]: the steps of a lab and the checks on their output.
//! - [`report`]: summary, JUnit and JSON reports, from a step's results.
//! - [`tools`]: the packet tools that run inside nodes, and their datalinks.
//! - [`bpf`]: the bpf(2) syscall, under the af_xdp datalink and the loss
//!   impairment.
//! - [`api`]: labctl for tests written in Rust (docs/library.md): labs
//!   loaded or built in code, brought up, driven and torn down from
//!   `cargo test`; [`rootless`]: the user namespace in which an ordinary
//!   user's process builds them.

pub mod api;
pub mod bpf;
pub mod lab;
pub mod lifecycle;
pub mod links;
pub mod report;
pub mod run;
pub mod runtime;
pub mod tools;

pub use runtime::netns::rootless;
