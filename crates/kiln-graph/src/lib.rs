//! kiln's dependency graph (images and their stages, built with petgraph), the build
//! order, choosing images by name, and drawing the graph.

mod graph;
mod render;
mod select;

pub use graph::{Edge, EdgeKind, Graph, Node};
pub use render::{render_dot, render_json, render_mermaid, render_text, shown};
pub use select::{UnknownSelection, select};
