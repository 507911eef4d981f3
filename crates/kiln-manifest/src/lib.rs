//! kiln's manifest: finding and reading `kiln.kdl` and its includes, lowering KDL into
//! typed declarations, and resolving them into a checked [`Project`].
//!
//! The pipeline is `load` (files and KDL) → `lower` (shape of each node) → `resolve`
//! (templates, variants, variables, names, values). Every stage reports into one
//! [`Diagnostics`] list instead of stopping at the first problem.

pub mod ast;
mod build_tools;
mod builders;
mod check;
mod deps_first;
mod diagnostic;
mod git;
mod id;
mod load;
pub mod lock;
mod lower;
mod merge;
mod model;
mod resolve;
pub mod shell;
mod source;
mod suggest;
mod syntax;
mod vars;

use std::path::{Path, PathBuf};

pub use check::hidden_in_review;
pub use diagnostic::{
    Code, Diagnostic, Diagnostics, Label, RenderOptions, Severity, render as render_diagnostic,
};
pub use git::git;
pub use id::{ImageId, PerImage, StageId};
pub use load::{MANIFEST_FILE, display_name, find_manifest, normalize, relative_path};
pub use model::{
    BUILD_PLATFORM_VARIABLES, Group, Image, Level, Project, PullPolicy, Stage, StageInput, VariantOf,
    keeps_default_ignore,
};
pub use resolve::DEFAULT_OUTPUT;
pub use source::{FileId, SourceFile, SourceMap, Span, Spanned};
pub use suggest::did_you_mean;
pub use vars::{UnknownOverride, is_builtin as is_builtin_variable};

/// What to load and how to override it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The root manifest file (absolute).
    pub manifest: PathBuf,
    /// Environment variables (for `KILN_VAR_*` overrides).
    pub env: Vec<(String, String)>,
    /// `--set NAME=VALUE` overrides.
    pub sets: Vec<(String, String)>,
    /// `-o/--output`, absolute.
    pub output: Option<PathBuf>,
    /// `--level`.
    pub level: Option<Level>,
}

/// Loads and resolves a project. The project is returned even when the diagnostics
/// hold errors, so that later passes can add theirs; callers must not emit or build
/// from a project with errors.
pub fn load_project(options: &LoadOptions) -> Result<(Project, Diagnostics), Vec<UnknownOverride>> {
    let manifest = normalize(&options.manifest);
    let root_dir = manifest.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let decls = load::load(&manifest, &mut sources, &mut diags);
    let vars =
        vars::Variables::new(&decls.vars, &options.env, &options.sets, &root_dir, &sources, &mut diags)?;
    let settings = resolve::resolve_settings(
        &decls,
        &vars,
        &sources,
        &root_dir,
        options.output.as_deref(),
        options.level,
        &mut diags,
    );
    let allowed = resolve::allowed_warnings(&decls.allow, &mut diags);
    let (images, groups) = resolve::Resolver {
        sources: &sources,
        root_dir: &root_dir,
        vars: &vars,
        settings: &settings,
        diags: &mut diags,
        tainted: std::collections::HashSet::new(),
    }
    .resolve(&decls);
    let lock = lock::Lock::load(&root_dir, &mut sources, &mut diags);
    lock::check(&images, lock.as_ref(), decls.pin_bases.as_ref().filter(|_| settings.pin_bases), &mut diags);
    diags.retain(|d| !(d.severity == Severity::Warning && allowed.contains(&d.code)));
    let manifest_name =
        sources.files().next().map_or_else(|| MANIFEST_FILE.to_owned(), |(_, f)| f.name.clone());
    let project = Project {
        manifest: manifest_name,
        sources,
        output: display_name(&root_dir, &settings.output_dir),
        output_dir: settings.output_dir,
        root_dir,
        dockerfile_level: settings.level,
        syntax_directive: settings.syntax_directive,
        project: settings.project,
        pin_bases: settings.pin_bases,
        lock,
        registry: settings.registry,
        variables: vars.values(),
        index: images.iter().enumerate().map(|(i, image)| (image.name.clone(), ImageId::new(i))).collect(),
        images,
        groups,
    };
    Ok((project, diags))
}
