//! labctl's integration tests: one binary, one module per area. They use
//! the real binaries, real network namespaces and veths, and the real
//! Docker daemon; every resource gets a fresh name and a guard that removes
//! it even when an assertion fails.

mod af_xdp;
mod api;
mod caps;
mod cli;
mod dead_docker;
mod devices;
mod fwd;
mod hosts;
mod hosts_harness;
mod html;
mod impair;
mod install;
mod instances;
mod interrupts;
mod lab;
mod limits;
mod live;
mod many;
mod memory;
mod netmap;
mod netns;
mod own_image;
mod reports;
mod rootless;
mod route;
mod run;
mod runtime;
mod sink_xdp;
mod support;
mod throughput;
mod tools;
mod traffic;
