//! The plan as a `docker-bake.json` for `docker buildx bake`, so that a team with a
//! buildx cluster can build the same images from the same generated Dockerfiles.
//!
//! The fields follow bake's file reference: each image is a target (`context`,
//! `dockerfile` relative to the context, `tags`, `args`, `labels`, `platforms`, `target`,
//! `pull`); an image built on another names it in the committed Dockerfile by its
//! committed reference, and `contexts` maps that reference to `target:<other>`, so that
//! bake builds the dependency first and feeds its result in. Groups are kiln's groups;
//! `default` is the manifest's, else every image (what `kiln build` builds). Paths are
//! relative to the root manifest's folder: run bake there.

use kiln_graph::Graph;
use kiln_manifest::{Image, ImageId, Project, PullPolicy, display_name};
use serde_json::{Value, json};

use crate::GeneratedFiles;

/// Two images whose bake names would be the same (bake allows no `.` in a name).
#[derive(Debug, thiserror::Error)]
#[error("images `{first}` and `{second}` would both be bake target `{name}`")]
pub struct BakeNameClash {
    pub first: String,
    pub second: String,
    pub name: String,
}

/// The bake file of the whole project.
pub fn bake_file(project: &Project, graph: &Graph) -> Result<Value, BakeNameClash> {
    // In build order, as the plan lists them.
    let mut names: Vec<(String, ImageId)> = Vec::new();
    for id in graph.order().iter().copied() {
        let name = bake_name(&project[id]);
        if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
            return Err(BakeNameClash {
                first: project[*other].name.clone(),
                second: project[id].name.clone(),
                name,
            });
        }
        names.push((name, id));
    }
    let name_of = |id: ImageId| bake_name(&project[id]);
    let targets: serde_json::Map<String, Value> =
        names.iter().map(|(name, id)| (name.clone(), target(project, graph, *id, &name_of))).collect();

    let mut groups = serde_json::Map::new();
    for (group, members) in &project.groups {
        let targets: Vec<String> =
            members.images.iter().filter_map(|image| project.image_id(image)).map(name_of).collect();
        groups.insert(group.clone(), json!({ "targets": targets }));
    }
    if !groups.contains_key("default") {
        let all: Vec<&str> = names.iter().map(|(name, _)| name.as_str()).collect();
        groups.insert("default".to_owned(), json!({ "targets": all }));
    }
    Ok(json!({ "group": groups, "target": targets }))
}

/// Bake target names take letters, digits, `-` and `_`: a variant's `.` becomes `_`.
fn bake_name(image: &Image) -> String {
    image.name.replace('.', "_")
}

fn target(project: &Project, graph: &Graph, id: ImageId, name_of: &dyn Fn(ImageId) -> String) -> Value {
    let image = &project[id];
    let files = GeneratedFiles::of(project, image);
    let mut target = serde_json::Map::new();
    target.insert("context".to_owned(), json!(image.context));
    target.insert("dockerfile".to_owned(), json!(display_name(&image.context_dir, &files.dockerfile)));
    let contexts: serde_json::Map<String, Value> = graph
        .dependencies(id)
        .iter()
        .map(|&dependency| {
            (project[dependency].committed_reference(), json!(format!("target:{}", name_of(dependency))))
        })
        .collect();
    if !contexts.is_empty() {
        target.insert("contexts".to_owned(), Value::Object(contexts));
    }
    target.insert("tags".to_owned(), json!(image.references()));
    let pairs = |pairs: &[kiln_manifest::ast::KeyValue]| -> serde_json::Map<String, Value> {
        pairs.iter().map(|kv| (kv.key.value.clone(), json!(kv.value.value))).collect()
    };
    if !image.build_args.is_empty() {
        target.insert("args".to_owned(), Value::Object(pairs(&image.build_args)));
    }
    if !image.labels.is_empty() {
        target.insert("labels".to_owned(), Value::Object(pairs(&image.labels)));
    }
    if let Some(platform) = &image.platform {
        target.insert("platforms".to_owned(), json!([platform.value]));
    }
    if image.stages.len() > 1 {
        target.insert("target".to_owned(), json!(image.target_stage().name));
    }
    if image.pull_policy == PullPolicy::Always {
        target.insert("pull".to_owned(), json!(true));
    }
    Value::Object(target)
}
