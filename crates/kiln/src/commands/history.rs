//! `kiln history IMAGE`: an image's layers, newest first, each traced back to the
//! manifest line it came from; the largest are marked.

use std::fmt::Write as _;

use kiln_graph::UnknownSelection;
use kiln_images::{LayerOrigin, Scope, history};
use kiln_manifest::ImageId;

use super::engine_session;
use crate::cli::{GlobalArgs, HistoryArgs};
use crate::progress::human_size;
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, args: &HistoryArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let (index, reference) = resolve(&scope, &args.image).map_err(|u| session::unknown_names(vec![u]))?;
    let layers = connected
        .runtime
        .block_on(history(&scope, index, &reference))
        .map_err(|err| CliError::failure(format!("cannot read the history of `{reference}`: {err}")))?;
    if args.json {
        term.json(&layers);
        return Ok(ExitStatus::Success);
    }
    let mut out = format!("{reference}: {} layers, newest first\n\n", layers.len());
    let rows: Vec<[String; 3]> = layers
        .iter()
        .map(|layer| {
            let size = if layer.largest {
                format!("{} ◀", human_size(layer.size))
            } else {
                human_size(layer.size)
            };
            let origin = match &layer.origin {
                LayerOrigin::Manifest { image, location, .. } => format!("{location} ({image})"),
                LayerOrigin::Base { reference } => format!("base image {reference}"),
                LayerOrigin::BuildLabels => "labels set by kiln at build time".to_owned(),
                LayerOrigin::Unknown => "?".to_owned(),
            };
            let mut created_by = layer.created_by.replace('\n', " ");
            if created_by.chars().count() > 60 {
                created_by = created_by.chars().take(59).collect::<String>() + "…";
            }
            [size, created_by, origin]
        })
        .collect();
    let widths = [0, 1].map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0).max(4));
    let _ = writeln!(out, "{:<w0$}  {:<w1$}  FROM", "SIZE", "CREATED BY", w0 = widths[0], w1 = widths[1]);
    for row in rows {
        let _ = writeln!(out, "{:<w0$}  {:<w1$}  {}", row[0], row[1], row[2], w0 = widths[0], w1 = widths[1]);
    }
    out.push_str("\n◀ one of the three largest layers\n");
    term.out(&out);
    Ok(ExitStatus::Success)
}

/// `api` (its first tag) or `api:tag`, as an image and the reference to read.
pub(crate) fn resolve(scope: &Scope<'_>, name: &str) -> Result<(ImageId, String), UnknownSelection> {
    let selected = scope.select(&[name.to_owned()], false).map_err(|mut unknown| unknown.remove(0))?;
    if let Some((index, tag)) = selected.tags.first() {
        return Ok((*index, format!("{}:{tag}", scope.project[*index].repository)));
    }
    match selected.images.as_slice() {
        [index] => Ok((*index, scope.project[*index].reference())),
        _ => Err(UnknownSelection {
            name: name.to_owned(),
            suggestion: Some("name one image (`api`) or one tag (`api:1.0`), not a group".to_owned()),
        }),
    }
}
