//! kiln's integration tests: the real `kiln` binary, run in temporary folders or on the
//! examples. One test binary, one module per area.

mod harness;
mod lifecycle;

mod build;
mod changed;
mod cli;
mod diagnostics;
mod dockerignore_diff;
mod emit;
mod engine;
mod examples;
mod identity;
mod lock;
mod pins;
mod robustness;
mod schema;
