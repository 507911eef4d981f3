//! `kiln graph` output: text, Graphviz DOT, Mermaid and JSON.
//!
//! Every format shows the images in build order, the stages each one writes out, and
//! the edges between them: a stage's base, the stages and images it copies from, and
//! the outside images it uses. `shown` picks the images to draw (see [`shown`]).

use std::fmt::Write;

use kiln_manifest::StageInput;
use kiln_manifest::{Image, ImageId, PerImage, Project, StageId};
use serde::Serialize;

use crate::Graph;

/// One edge into a stage, as every format needs it.
struct Input<'a> {
    kind: &'static str,
    source: Source<'a>,
}

enum Source<'a> {
    Stage(StageId),
    Image(ImageId),
    External(&'a str),
}

/// The inputs of one stage, resolved to indices.
fn inputs<'a>(project: &'a Project, image: &'a Image, stage: StageId) -> Vec<Input<'a>> {
    image
        .stage(stage)
        .inputs()
        .into_iter()
        .enumerate()
        .filter_map(|(position, input)| {
            let kind = if position == 0 { "from" } else { "copy" };
            let source = match input {
                StageInput::Stage(name, _) => Source::Stage(image.stage_id(name)?),
                StageInput::Image(name, _) => Source::Image(project.image_id(name)?),
                StageInput::External(reference, _) => Source::External(reference),
            };
            Some(Input { kind, source })
        })
        .collect()
}

/// The images to draw: those `names` select (every image when there is none) and what
/// they depend on; with `dependents`, also every image built on a named one, and what
/// those depend on.
pub fn shown(
    project: &Project,
    graph: &Graph,
    names: &[String],
    dependents: bool,
) -> Result<PerImage<bool>, Vec<crate::UnknownSelection>> {
    let mut shown = crate::select(project, graph, names)?;
    if dependents && !names.is_empty() {
        // The named images (groups expanded), then, in build order (dependencies first),
        // every image that depends on one of those.
        let mut reaches = project.per_image(|_| false);
        for name in names {
            let members = project.groups.get(name).map_or_else(|| vec![name.clone()], |g| g.images.clone());
            for member in members {
                if let Some(id) = project.image_id(&member) {
                    reaches[id] = true;
                }
            }
        }
        for &i in graph.order() {
            if graph.dependencies(i).iter().any(|d| reaches[*d]) {
                reaches[i] = true;
            }
        }
        let extra: Vec<String> = reaches.chosen().map(|i| project[i].name.clone()).collect();
        shown = crate::select(project, graph, &extra)?;
    }
    Ok(shown)
}

/// The shown images, in build order.
fn order<'a>(graph: &'a Graph, shown: &'a PerImage<bool>) -> impl Iterator<Item = ImageId> + 'a {
    graph.order().iter().copied().filter(|i| shown[*i])
}

/// Outside images in order of first use.
fn externals<'a>(project: &'a Project, graph: &Graph, shown: &PerImage<bool>) -> Vec<&'a str> {
    let mut found: Vec<&str> = Vec::new();
    for i in order(graph, shown) {
        let image = &project[i];
        for &s in graph.stage_order(i) {
            for input in inputs(project, image, s) {
                if let Source::External(reference) = input.source
                    && !found.contains(&reference)
                {
                    found.push(reference);
                }
            }
        }
    }
    found
}

pub fn render_text(project: &Project, graph: &Graph, shown: &PerImage<bool>) -> String {
    let mut out = String::new();
    for i in order(graph, shown) {
        let image = &project[i];
        let deps: Vec<&str> = graph.dependencies(i).iter().map(|&d| project[d].name.as_str()).collect();
        let _ = write!(out, "{}  ({})", image.name, image.reference());
        if !deps.is_empty() {
            let _ = write!(out, "  needs: {}", deps.join(", "));
        }
        out.push('\n');
        let stages = graph.stage_order(i);
        for (position, &s) in stages.iter().enumerate() {
            let branch = if position + 1 == stages.len() { "└──" } else { "├──" };
            let stage = &image.stage(s);
            let mut described: Vec<String> = Vec::new();
            for input in inputs(project, image, s) {
                let what = match input.source {
                    Source::Stage(t) => format!("stage `{}`", image.stage(t).name),
                    Source::Image(d) => format!("image `{}`", project[d].name),
                    Source::External(reference) => format!("`{reference}`"),
                };
                described.push(if input.kind == "from" {
                    format!("from {what}")
                } else {
                    format!("copies from {what}")
                });
            }
            let name = if stage.implicit { "stage".to_owned() } else { format!("stage {}", stage.name) };
            let target = if s == image.target && stages.len() > 1 { " (target)" } else { "" };
            let _ = writeln!(out, "{branch} {name}{target}: {}", described.join("; "));
        }
    }
    if out.is_empty() {
        out.push_str("(no images)\n");
    }
    out
}

/// Quotes a DOT identifier or label.
fn dot_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A stage's node id in DOT and JSON: `image/stage`.
fn stage_key(image: &Image, stage: StageId) -> String {
    format!("{}/{}", image.name, image.stage(stage).name)
}

pub fn render_dot(project: &Project, graph: &Graph, shown: &PerImage<bool>) -> String {
    let mut out = String::from("digraph kiln {\n  rankdir=LR;\n  node [shape=box];\n");
    for i in order(graph, shown) {
        let image = &project[i];
        let _ = writeln!(out, "  subgraph {} {{", dot_quote(&format!("cluster_{}", image.name)));
        let _ = writeln!(out, "    label={};", dot_quote(&format!("{}\n{}", image.name, image.reference())));
        for &s in graph.stage_order(i) {
            let style = if s == image.target { ", style=bold" } else { "" };
            let _ = writeln!(
                out,
                "    {} [label={}{style}];",
                dot_quote(&stage_key(image, s)),
                dot_quote(&image.stage(s).name)
            );
        }
        out.push_str("  }\n");
    }
    for reference in externals(project, graph, shown) {
        let _ = writeln!(out, "  {} [shape=ellipse, style=dashed];", dot_quote(reference));
    }
    for i in order(graph, shown) {
        let image = &project[i];
        for &s in graph.stage_order(i) {
            let to = dot_quote(&stage_key(image, s));
            for input in inputs(project, image, s) {
                let from = match input.source {
                    Source::Stage(t) => dot_quote(&stage_key(image, t)),
                    Source::Image(d) => {
                        let dep = &project[d];
                        dot_quote(&stage_key(dep, dep.target))
                    }
                    Source::External(reference) => dot_quote(reference),
                };
                let _ = writeln!(out, "  {from} -> {to} [label={}];", dot_quote(input.kind));
            }
        }
    }
    out.push_str("}\n");
    out
}

pub fn render_mermaid(project: &Project, graph: &Graph, shown: &PerImage<bool>) -> String {
    // Mermaid identifiers are positional so that any name is safe; labels carry names.
    let stage_node = |image: ImageId, stage: StageId| format!("i{}s{}", image.index(), stage.index());
    let label = |text: &str| format!("\"{}\"", text.replace('"', "#quot;"));
    let externals = externals(project, graph, shown);
    let mut out = String::from("flowchart LR\n");
    for i in order(graph, shown) {
        let image = &project[i];
        let _ = writeln!(out, "  subgraph i{} [{}]", i.index(), label(&image.name));
        for &s in graph.stage_order(i) {
            let _ = writeln!(out, "    {}[{}]", stage_node(i, s), label(&image.stage(s).name));
        }
        out.push_str("  end\n");
    }
    for (n, reference) in externals.iter().enumerate() {
        let _ = writeln!(out, "  e{n}([{}])", label(reference));
    }
    for i in order(graph, shown) {
        let image = &project[i];
        for &s in graph.stage_order(i) {
            for input in inputs(project, image, s) {
                let from = match input.source {
                    Source::Stage(t) => stage_node(i, t),
                    Source::Image(d) => stage_node(d, project[d].target),
                    Source::External(reference) => {
                        format!("e{}", externals.iter().position(|e| *e == reference).unwrap_or(0))
                    }
                };
                let arrow = if input.kind == "copy" { "-. copy .->" } else { "-->" };
                let _ = writeln!(out, "  {from} {arrow} {}", stage_node(i, s));
            }
        }
    }
    out
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    order: Vec<&'a str>,
    nodes: Vec<JsonNode<'a>>,
    edges: Vec<JsonEdge>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum JsonNode<'a> {
    Image { id: String, reference: String, target: String },
    Stage { id: String, image: &'a str, stage: &'a str },
    External { id: &'a str },
}

#[derive(Serialize)]
struct JsonEdge {
    from: String,
    to: String,
    kind: &'static str,
}

pub fn render_json(project: &Project, graph: &Graph, shown: &PerImage<bool>) -> String {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for i in order(graph, shown) {
        let image = &project[i];
        for &s in graph.stage_order(i) {
            nodes.push(JsonNode::Stage {
                id: stage_key(image, s),
                image: &image.name,
                stage: &image.stage(s).name,
            });
            for input in inputs(project, image, s) {
                let from = match input.source {
                    Source::Stage(t) => stage_key(image, t),
                    Source::Image(d) => project[d].name.clone(),
                    Source::External(reference) => reference.to_owned(),
                };
                edges.push(JsonEdge { from, to: stage_key(image, s), kind: input.kind });
            }
        }
        nodes.push(JsonNode::Image {
            id: image.name.clone(),
            reference: image.reference(),
            target: stage_key(image, image.target),
        });
        edges.push(JsonEdge { from: stage_key(image, image.target), to: image.name.clone(), kind: "target" });
    }
    for reference in externals(project, graph, shown) {
        nodes.push(JsonNode::External { id: reference });
    }
    let json =
        JsonGraph { order: order(graph, shown).map(|i| project[i].name.as_str()).collect(), nodes, edges };
    let mut text = serde_json::to_string_pretty(&json).expect("the graph serializes");
    text.push('\n');
    text
}
