//! What the command line changes in the loaded project before anything reads it, so that
//! keys, plans and builds all see it: bake-style `--set IMAGE.FIELD=VALUE` (`*` for every
//! image) with the fields `docker buildx bake --set` has (`args.NAME`, `tags`, `target`,
//! `platform`, `labels.KEY`, `no-cache`), and `kiln build`'s `--build-arg` and `--target`
//! for the images being built. (`--set NAME=VALUE`, without a dot, sets a manifest
//! variable: variable names have no dots.)

use kiln_manifest::ast::KeyValue;
use kiln_manifest::{ImageId, PerImage, Project, Spanned};

use crate::CliError;

/// One `--set IMAGE.FIELD=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageOverride {
    /// An image name, or `*`.
    image: String,
    field: Field,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Arg(String),
    Tags,
    Target,
    Platform,
    Label(String),
    NoCache,
}

const FIELDS: &str = "`args.NAME`, `tags`, `target`, `platform`, `labels.KEY`, `no-cache`";

/// `--set NAME=VALUE` of a manifest variable.
type Variable = (String, String);

/// Splits `--set` values into variables and image overrides.
pub(crate) fn split(sets: &[(String, String)]) -> Result<(Vec<Variable>, Vec<ImageOverride>), CliError> {
    let (mut variables, mut overrides) = (Vec::new(), Vec::new());
    for (name, value) in sets {
        let split = name.split_once('.').filter(|_| !kiln_manifest::is_builtin_variable(name));
        let Some((image, field)) = split else {
            variables.push((name.clone(), value.clone()));
            continue;
        };
        let field = match field.split_once('.') {
            Some(("args", arg)) if !arg.is_empty() => Field::Arg(arg.to_owned()),
            Some(("labels", key)) if !key.is_empty() => Field::Label(key.to_owned()),
            None if field == "tags" => Field::Tags,
            None if field == "target" => Field::Target,
            None if field == "platform" => Field::Platform,
            None if field == "no-cache" => Field::NoCache,
            _ => {
                return Err(CliError::invalid(format!("`--set {name}`: images have no field `{field}`"))
                    .hint(format!("`--set IMAGE.FIELD=VALUE` (`*` for every image) sets {FIELDS}")));
            }
        };
        overrides.push(ImageOverride { image: image.to_owned(), field, value: value.clone() });
    }
    Ok((variables, overrides))
}

/// Applies the overrides; returns the images that build without the layer cache.
pub(crate) fn apply(project: &mut Project, overrides: &[ImageOverride]) -> Result<Vec<ImageId>, CliError> {
    let mut no_cache = Vec::new();
    for set in overrides {
        let images: Vec<ImageId> = if set.image == "*" {
            project.image_ids().collect()
        } else {
            vec![project.image_id(&set.image).ok_or_else(|| {
                CliError::invalid(format!(
                    "`--set {}.…`: the manifest has no image `{}`",
                    set.image, set.image
                ))
                .hint("`kiln plan` lists the images")
            })?]
        };
        let mut applied = false;
        for id in images {
            applied |= apply_one(project, id, set, set.image != "*", &mut no_cache)?;
        }
        if !applied {
            let what = match &set.field {
                Field::Arg(name) => format!("declares `arg {name}`"),
                Field::Target => format!("has a stage `{}`", set.value),
                _ => "takes it".to_owned(),
            };
            return Err(CliError::invalid(format!("`--set {}`: no image {what}", describe(set))));
        }
    }
    Ok(no_cache)
}

/// One override on one image; whether it applied. `named`: the image was named (not
/// `*`), so an override it cannot take is an error.
fn apply_one(
    project: &mut Project,
    id: ImageId,
    set: &ImageOverride,
    named: bool,
    no_cache: &mut Vec<ImageId>,
) -> Result<bool, CliError> {
    let image = &mut project.images[id.index()];
    let span = image.name_span;
    let text = |value: &str| Spanned::new(value.to_owned(), span);
    let invalid = |why: String| CliError::invalid(format!("`--set {}`: {why}", describe(set)));
    match &set.field {
        Field::Arg(name) => {
            if !image.declares_arg(name) {
                return if named {
                    Err(invalid(format!("image `{}` declares no `arg {name}`", image.name)))
                } else {
                    Ok(false)
                };
            }
            set_pair(&mut image.build_args, name, &set.value, span);
        }
        Field::Label(key) => set_pair(&mut image.labels, key, &set.value, span),
        Field::Tags => {
            let tags: Vec<&str> = set.value.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
            if tags.is_empty() {
                return Err(invalid("give one tag or more, separated by commas".to_owned()));
            }
            for tag in &tags {
                kiln_reference::validate_tag(tag)
                    .map_err(|e| invalid(format!("`{tag}` is not a valid tag: {e}")))?;
            }
            image.tags = tags.iter().map(|t| text(t)).collect();
            image.committed_tag = tags.iter().position(|t| *t != "latest").unwrap_or(0);
        }
        Field::Target => match image.stage_id(&set.value) {
            Some(stage) => image.target = stage,
            None if named => {
                return Err(invalid(format!("image `{}` has no stage `{}`", image.name, set.value)));
            }
            None => return Ok(false),
        },
        Field::Platform => {
            crate::cli::platform(&set.value).map_err(invalid)?;
            image.platform = Some(text(&set.value));
        }
        Field::NoCache => match set.value.as_str() {
            "true" | "1" => no_cache.push(id),
            "false" | "0" => no_cache.retain(|other| *other != id),
            other => return Err(invalid(format!("`{other}` is not `true` or `false`"))),
        },
    }
    Ok(true)
}

/// `--build-arg NAME=VALUE`: for each image being built whose stages declare `arg NAME`,
/// the value replaces the manifest's `build-arg` (or is added). An argument no such image
/// declares is an error: Docker would ignore it with a warning, and the build would not
/// be the one asked for.
pub(crate) fn build_args(
    project: &mut Project,
    selected: &PerImage<bool>,
    overrides: &[(String, String)],
) -> Result<(), CliError> {
    for (name, value) in overrides {
        let mut used = false;
        for id in selected.chosen().collect::<Vec<_>>() {
            let image = &mut project.images[id.index()];
            if image.declares_arg(name) {
                used = true;
                set_pair(&mut image.build_args, name, value, image.name_span);
            }
        }
        if !used {
            return Err(CliError::invalid(format!(
                "`--build-arg {name}`: no image being built declares `arg {name}`"
            ))
            .hint(format!("add `arg {name}` to the stage that uses it")));
        }
    }
    Ok(())
}

/// `--target STAGE`: each image being built that has that stage builds it (its key, its
/// tags and its dependents follow). None having it is an error, as in `docker build`.
pub(crate) fn target(project: &mut Project, selected: &PerImage<bool>, stage: &str) -> Result<(), CliError> {
    let mut found = false;
    for id in selected.chosen().collect::<Vec<_>>() {
        let image = &mut project.images[id.index()];
        if let Some(target) = image.stage_id(stage) {
            image.target = target;
            found = true;
        }
    }
    if found {
        Ok(())
    } else {
        Err(CliError::invalid(format!("--target {stage}: no image being built has a stage `{stage}`"))
            .hint("`kiln graph` shows the stages of each image"))
    }
}

/// Sets `key` among `pairs` (a `build-arg` or `label`), where it is if it is there.
fn set_pair(pairs: &mut Vec<KeyValue>, key: &str, value: &str, span: kiln_manifest::Span) {
    match pairs.iter_mut().find(|kv| kv.key.value == key) {
        Some(pair) => pair.value = Spanned::new(value.to_owned(), pair.value.span),
        None => pairs.push(KeyValue {
            key: Spanned::new(key.to_owned(), span),
            value: Spanned::new(value.to_owned(), span),
        }),
    }
}

fn describe(set: &ImageOverride) -> String {
    let field = match &set.field {
        Field::Arg(name) => format!("args.{name}"),
        Field::Label(key) => format!("labels.{key}"),
        Field::Tags => "tags".to_owned(),
        Field::Target => "target".to_owned(),
        Field::Platform => "platform".to_owned(),
        Field::NoCache => "no-cache".to_owned(),
    };
    format!("{}.{field}={}", set.image, set.value)
}
