//! kiln's dependency graph (images and their stages, built with petgraph), the build
//! order, the files kiln generates for each image, and the resolved plan.

mod files;
mod graph;
mod plan;
mod render;

pub use files::GeneratedFiles;
pub use graph::{Edge, EdgeKind, Graph, Node};
pub use plan::{Plan, PlanImage, UnknownSelection, select};
pub use render::{render_dot, render_json, render_mermaid, render_text, shown};
