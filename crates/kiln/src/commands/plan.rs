//! `kiln plan`: what would be built, in order.

use std::fmt::Write;

use indexmap::IndexMap;
use kiln_emit::GeneratedFiles;
use kiln_graph::{Graph, UnknownSelection};
use kiln_manifest::{ImageId, Project};
use schemars::JsonSchema;
use serde::Serialize;

use crate::cli::{GlobalArgs, PlanArgs};
use crate::session::{self, count};
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, args: &PlanArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    session::report(&session, term)?;
    let targets = match &args.changed_since {
        Some(reference) => {
            let changed = session::changed_since(&session, &args.targets, reference)?;
            if changed.is_empty() {
                term.info(&format!("nothing changed since `{reference}`"));
            }
            changed
        }
        None => args.targets.clone(),
    };
    let plan = if args.changed_since.is_some() && targets.is_empty() {
        Plan::empty(&session.project)
    } else {
        Plan::new(&session.project, &session.graph, &targets).map_err(session::unknown_names)?
    };
    if args.json {
        term.json(&plan);
    } else {
        term.out(&render(&plan));
    }
    Ok(ExitStatus::Success)
}

fn render(plan: &Plan) -> String {
    let mut out = format!(
        "{}: {} in build order (dockerfile level {}, output `{}`)\n",
        plan.manifest,
        count(plan.images.len(), "image"),
        plan.dockerfile_level,
        plan.output
    );
    let width = plan.images.len().to_string().len();
    for (position, image) in plan.images.iter().enumerate() {
        let _ = writeln!(out, "\n{:>width$}. {}", position + 1, image.name);
        let pad = " ".repeat(width + 2);
        let mut field = |name: &str, values: &[String]| {
            for (i, value) in values.iter().enumerate() {
                let label = if i == 0 { name } else { "" };
                let _ = writeln!(out, "{pad}{label:<9}{value}");
            }
        };
        if let Some(of) = &image.variant_of {
            field("variant", &[format!("of `{of}`")]);
        }
        field("tags", &image.tags);
        field("needs", &image.depends_on);
        field("uses", &image.external_images);
        field("context", std::slice::from_ref(&image.context));
        let stages = if image.stages.len() > 1 { image.stages.join(" -> ") } else { image.target.clone() };
        field("stages", &[stages]);
        let args: Vec<String> = image.build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        field("args", &args);
        if let Some(platform) = &image.platform {
            field("platform", std::slice::from_ref(platform));
        }
        field("files", &[image.dockerfile.clone(), image.dockerignore.clone()]);
        field("declared", std::slice::from_ref(&image.location));
    }
    out
}

/// The output of `kiln plan --json`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Plan {
    /// The root manifest, relative to its own folder.
    pub(crate) manifest: String,
    /// The output folder, relative to the root manifest's folder.
    pub(crate) output: String,
    /// The Dockerfile feature level the files are generated for.
    pub(crate) dockerfile_level: String,
    /// The selected images and everything they depend on, in build order.
    pub(crate) images: Vec<PlanImage>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PlanImage {
    pub(crate) name: String,
    /// For a variant, the image it is a variant of.
    pub(crate) variant_of: Option<String>,
    /// Where the image is declared, `file:line:col`.
    pub(crate) location: String,
    /// The reference the image is built as (its first tag); dependents build on it.
    pub(crate) reference: String,
    /// Every `repository:tag` the image receives.
    pub(crate) tags: Vec<String>,
    /// Images of the manifest that must be built first.
    pub(crate) depends_on: Vec<String>,
    /// Outside images the build uses (bases and `copy` sources).
    pub(crate) external_images: Vec<String>,
    /// The build context, relative to the root manifest's folder.
    pub(crate) context: String,
    pub(crate) dockerfile: String,
    pub(crate) dockerignore: String,
    /// The stage that is built.
    pub(crate) target: String,
    /// The stages written to the Dockerfile, in order.
    pub(crate) stages: Vec<String>,
    pub(crate) build_args: IndexMap<String, String>,
    pub(crate) platform: Option<String>,
}

impl Plan {
    /// The plan for the given image and group names (all images when empty), with
    /// their dependencies, in build order.
    pub(crate) fn new(
        project: &Project,
        graph: &Graph,
        selection: &[String],
    ) -> Result<Self, Vec<UnknownSelection>> {
        let selected = kiln_graph::select(project, graph, selection)?;
        let images = graph
            .order()
            .iter()
            .copied()
            .filter(|i| selected[*i])
            .map(|i| plan_image(project, graph, i))
            .collect();
        Ok(Self { images, ..Self::empty(project) })
    }

    /// A plan of no image.
    pub(crate) fn empty(project: &Project) -> Self {
        Self {
            manifest: project.manifest.clone(),
            output: project.output.clone(),
            dockerfile_level: project.dockerfile_level.name().to_owned(),
            images: Vec::new(),
        }
    }
}

fn plan_image(project: &Project, graph: &Graph, id: ImageId) -> PlanImage {
    let image = &project[id];
    let (dockerfile, dockerignore) = GeneratedFiles::of(project, image).display(project);
    PlanImage {
        name: image.name.clone(),
        variant_of: image.variant.as_ref().map(|v| v.image.clone()),
        location: image.location.clone(),
        reference: image.reference(),
        tags: image.references(),
        depends_on: graph.dependencies(id).iter().map(|&d| project[d].name.clone()).collect(),
        external_images: image.external_bases().into_iter().map(str::to_owned).collect(),
        context: image.context.clone(),
        dockerfile,
        dockerignore,
        target: image.target_stage().name.clone(),
        stages: graph.stage_order(id).iter().map(|&s| image.stage(s).name.clone()).collect(),
        build_args: image
            .build_args
            .iter()
            .map(|kv| (kv.key.value.clone(), kv.value.value.clone()))
            .collect(),
        platform: image.platform.as_ref().map(|p| p.value.clone()),
    }
}
