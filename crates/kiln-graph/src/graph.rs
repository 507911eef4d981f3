//! The dependency graph: one node per image and per stage, with an edge from whatever a
//! stage needs (another stage, another image) to the stage, and from an image's target
//! stage to the image itself.
//!
//! Cycles are reported with the whole loop and the manifest location of each edge. The
//! build order is a topological order that keeps declaration order wherever the
//! dependencies allow it, so that it is the same on every run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use kiln_manifest::StageInput;
use kiln_manifest::{Code, Diagnostic, Diagnostics, ImageId, PerImage, Project, Span, StageId};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Image(ImageId),
    Stage { image: ImageId, stage: StageId },
}

/// Why an edge exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// The dependent stage starts `from` the source.
    From,
    /// The dependent stage copies files out of the source.
    Copy,
    /// The image is its target stage.
    Target,
}

#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub kind: EdgeKind,
    /// The reference in the manifest that made the edge (for targets, the image name).
    pub span: Span,
}

/// The checked graph of a project.
#[derive(Debug)]
pub struct Graph {
    pub graph: DiGraph<Node, Edge>,
    image_nodes: PerImage<NodeIndex>,
    /// For each image, its stages' nodes, in stage order.
    stage_nodes: PerImage<Vec<NodeIndex>>,
    /// Images in build order.
    order: Vec<ImageId>,
    /// For each image, its needed stages in the order they are written out.
    stage_orders: PerImage<Vec<StageId>>,
    /// For each image, the images it depends on directly, in build order, deduplicated.
    dependencies: PerImage<Vec<ImageId>>,
    /// The reverse: for each image, the images that depend on it directly, in build order.
    dependents: PerImage<Vec<ImageId>>,
}

impl Graph {
    /// Builds the graph; cycles are reported into `diags`. A graph with cycles still
    /// comes back (with an order that leaves the cycle's members out).
    pub fn build(project: &Project, diags: &mut Diagnostics) -> Self {
        let mut graph: DiGraph<Node, Edge> = DiGraph::new();
        let image_nodes = project.per_image(|id| graph.add_node(Node::Image(id)));
        let stage_nodes: PerImage<Vec<NodeIndex>> = project.per_image(|id| {
            project[id]
                .stages_with_ids()
                .map(|(stage, _)| graph.add_node(Node::Stage { image: id, stage }))
                .collect()
        });

        for (i, image) in project.images_with_ids() {
            let needed = image.needed_stages();
            let node = |stage: StageId| stage_nodes[i][stage.index()];
            for (s, stage) in image.stages_with_ids() {
                let to = node(s);
                for (position, input) in stage.inputs().into_iter().enumerate() {
                    let kind = if position == 0 { EdgeKind::From } else { EdgeKind::Copy };
                    match input {
                        StageInput::Stage(name, span) => {
                            if let Some(source) = image.stage_id(name).filter(|&t| t != s) {
                                graph.add_edge(node(source), to, Edge { kind, span });
                            }
                        }
                        // Only stages that are built make the image wait for another.
                        StageInput::Image(name, span) if needed[s.index()] => {
                            if let Some(dep) = project.image_id(name) {
                                graph.add_edge(image_nodes[dep], to, Edge { kind, span });
                            }
                        }
                        StageInput::Image(..) | StageInput::External(..) => {}
                    }
                }
            }
            if let Some(&target) = stage_nodes[i].get(image.target.index()) {
                graph.add_edge(
                    target,
                    image_nodes[i],
                    Edge { kind: EdgeKind::Target, span: image.name_span },
                );
            }
        }

        let mut built = Self {
            graph,
            image_nodes,
            stage_nodes,
            order: Vec::new(),
            stage_orders: PerImage::default(),
            dependencies: PerImage::default(),
            dependents: PerImage::default(),
        };
        built.report_cycles(project, diags);
        built.compute_orders(project);
        built
    }

    /// Images in build order.
    pub fn order(&self) -> &[ImageId] {
        &self.order
    }

    /// The stages of an image that are written out, in Dockerfile order.
    pub fn stage_order(&self, image: ImageId) -> &[StageId] {
        &self.stage_orders[image]
    }

    /// The images an image needs built first (direct dependencies), in build order.
    pub fn dependencies(&self, image: ImageId) -> &[ImageId] {
        &self.dependencies[image]
    }

    /// The images that directly need this one, in build order.
    pub fn dependents(&self, image: ImageId) -> &[ImageId] {
        &self.dependents[image]
    }

    /// The edges into a node, as (source node, edge).
    pub fn incoming(&self, node: Node) -> Vec<(Node, Edge)> {
        let index = self.node_index(node);
        let mut edges: Vec<(Node, Edge)> = self
            .graph
            .edges_directed(index, Direction::Incoming)
            .map(|e| (self.graph[e.source()], *e.weight()))
            .collect();
        // petgraph lists edges newest first; keep them in manifest order.
        edges.reverse();
        edges
    }

    fn node_index(&self, node: Node) -> NodeIndex {
        match node {
            Node::Image(i) => self.image_nodes[i],
            Node::Stage { image, stage } => self.stage_nodes[image][stage.index()],
        }
    }

    /// One diagnostic per strongly connected component, listing the loop.
    fn report_cycles(&self, project: &Project, diags: &mut Diagnostics) {
        let mut components = petgraph::algo::tarjan_scc(&self.graph);
        components.retain(|c| c.len() > 1);
        // Report in manifest order.
        components.sort_by_key(|c| c.iter().map(|n| sort_key(self.graph[*n])).min());
        for component in components {
            let Some(cycle) = self.find_cycle(&component) else { continue };
            diags.push(self.cycle_diagnostic(project, &cycle));
        }
    }

    /// A simple loop through the component, starting at its first node in manifest
    /// order: a list of (node, edge from it to the next node).
    fn find_cycle(&self, component: &[NodeIndex]) -> Option<Vec<(NodeIndex, Edge)>> {
        let start = *component.iter().min_by_key(|n| sort_key(self.graph[**n]))?;
        let mut visited = vec![start];
        let mut path = Vec::new();
        self.search(start, start, component, &mut visited, &mut path).then_some(path)
    }

    fn search(
        &self,
        node: NodeIndex,
        start: NodeIndex,
        component: &[NodeIndex],
        visited: &mut Vec<NodeIndex>,
        path: &mut Vec<(NodeIndex, Edge)>,
    ) -> bool {
        let mut edges: Vec<(NodeIndex, Edge)> = self
            .graph
            .edges_directed(node, Direction::Outgoing)
            .filter(|e| component.contains(&e.target()))
            .map(|e| (e.target(), *e.weight()))
            .collect();
        // petgraph lists the newest edge first; follow them in manifest order.
        edges.reverse();
        for (next, edge) in edges {
            if next == start {
                path.push((node, edge));
                return true;
            }
            if !visited.contains(&next) {
                visited.push(next);
                path.push((node, edge));
                if self.search(next, start, component, visited, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }

    fn cycle_diagnostic(&self, project: &Project, cycle: &[(NodeIndex, Edge)]) -> Diagnostic {
        // Each link says: `dependent` needs `dependency`, because of the edge's reference.
        struct Link {
            dependent: String,
            dependency: String,
            edge: Edge,
        }
        let stage_name = |image: ImageId, stage: StageId| project[image].stage(stage).name.clone();
        let within_image = cycle.iter().all(|(n, _)| matches!(self.graph[*n], Node::Stage { .. }));
        let mut links: Vec<Link> = Vec::new();
        for (index, (node, edge)) in cycle.iter().enumerate() {
            let next = self.graph[cycle[(index + 1) % cycle.len()].0];
            match (self.graph[*node], next) {
                (Node::Stage { image, stage: from }, Node::Stage { stage: to, .. }) if within_image => links
                    .push(Link {
                        dependent: stage_name(image, to),
                        dependency: stage_name(image, from),
                        edge: *edge,
                    }),
                (Node::Image(dependency), Node::Stage { image: dependent, .. }) => links.push(Link {
                    dependent: project[dependent].name.clone(),
                    dependency: project[dependency].name.clone(),
                    edge: *edge,
                }),
                _ => {}
            }
        }
        // Read the loop as "depends on": walk the links backwards.
        links.reverse();
        let names: Vec<&str> = links.iter().map(|l| l.dependent.as_str()).collect();
        let mut chain = names.clone();
        chain.push(names[0]);
        let mut diagnostic = if within_image {
            let Node::Stage { image, .. } = self.graph[cycle[0].0] else { unreachable!() };
            Diagnostic::new(
                Code::Cycle,
                format!(
                    "stages of image `{}` depend on each other in a cycle: {}",
                    project[image].name,
                    chain.join(" -> ")
                ),
            )
            .help("a stage can only use stages that do not use it back")
        } else if links.len() == 1 {
            Diagnostic::new(Code::Cycle, format!("image `{}` depends on itself", names[0]))
                .help("an image cannot be built from itself; build on an outside image or another image of the manifest")
        } else {
            Diagnostic::new(
                Code::Cycle,
                format!("images depend on each other in a cycle: {}", chain.join(" -> ")),
            )
            .help("break the loop: one of these images must stop using the next")
        };
        for link in &links {
            let verb = if link.edge.kind == EdgeKind::Copy { "copies from" } else { "is built from" };
            diagnostic = diagnostic
                .label(link.edge.span, format!("`{}` {verb} `{}` here", link.dependent, link.dependency));
        }
        diagnostic
    }

    fn compute_orders(&mut self, project: &Project) {
        // Kahn's algorithm over the whole graph, always taking the ready node that comes
        // first in the manifest.
        let mut indegree: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| self.graph.edges_directed(n, Direction::Incoming).count())
            .collect();
        let mut ready: BinaryHeap<Reverse<(SortKey, NodeIndex)>> = self
            .graph
            .node_indices()
            .filter(|n| indegree[n.index()] == 0)
            .map(|n| Reverse((sort_key(self.graph[n]), n)))
            .collect();
        let mut order = Vec::new();
        let mut stage_orders: PerImage<Vec<StageId>> = project.per_image(|_| Vec::new());
        while let Some(Reverse((_, node))) = ready.pop() {
            match self.graph[node] {
                Node::Image(i) => order.push(i),
                Node::Stage { image, stage } => stage_orders[image].push(stage),
            }
            for next in self.graph.neighbors_directed(node, Direction::Outgoing) {
                indegree[next.index()] -= 1;
                if indegree[next.index()] == 0 {
                    ready.push(Reverse((sort_key(self.graph[next]), next)));
                }
            }
        }
        for (i, image) in project.images_with_ids() {
            let needed = image.needed_stages();
            stage_orders[i].retain(|s| needed[s.index()]);
        }
        let position: HashMap<ImageId, usize> = order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        let dependencies: PerImage<Vec<ImageId>> = project.per_image(|i| {
            let mut deps: Vec<ImageId> = Vec::new();
            for &stage in &self.stage_nodes[i] {
                for source in self.graph.neighbors_directed(stage, Direction::Incoming) {
                    if let Node::Image(dep) = self.graph[source]
                        && !deps.contains(&dep)
                    {
                        deps.push(dep);
                    }
                }
            }
            deps.sort_by_key(|d| position.get(d).copied().unwrap_or(usize::MAX));
            deps
        });
        let mut dependents: PerImage<Vec<ImageId>> = project.per_image(|_| Vec::new());
        for &image in &order {
            for &dependency in &dependencies[image] {
                dependents[dependency].push(image);
            }
        }
        self.order = order;
        self.stage_orders = stage_orders;
        self.dependencies = dependencies;
        self.dependents = dependents;
    }
}

/// Manifest order, with an image's stages just before the image itself.
type SortKey = (ImageId, u8, Option<StageId>);

fn sort_key(node: Node) -> SortKey {
    match node {
        Node::Stage { image, stage } => (image, 0, Some(stage)),
        Node::Image(image) => (image, 1, None),
    }
}
