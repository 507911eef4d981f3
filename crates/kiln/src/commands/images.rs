//! `kiln images`: the images built from this manifest, found by label.

use kiln_images::{Build, LayerOrigin, history};
use serde::Serialize;

use super::engine_session;
use crate::cli::{GlobalArgs, ImagesArgs};
use crate::progress::{columns, human_size, short_id};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct Listed {
    image: String,
    tags: Vec<String>,
    id: String,
    created: String,
    size: u64,
    /// Bytes added by the image's own instructions.
    own_size: u64,
    /// Bytes that come from its base (outside image, or image of the manifest below it).
    base_size: u64,
    /// Whether the image's first tag points at this build.
    current: bool,
    /// The input key.
    key: Option<String>,
}

pub(crate) fn run(global: &GlobalArgs, args: &ImagesArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let project = &connected.session.project;
    let scope = connected.scope();
    let selected = scope.select(&args.targets, false).map_err(session::unknown_names)?;
    let names: Vec<&str> = selected.images.iter().map(|&i| project[i].name.as_str()).collect();
    let builds = connected.builds(&scope)?;
    let builds: Vec<&Build> = builds
        .iter()
        .filter(|b| args.targets.is_empty() || names.contains(&b.image.as_str()))
        .filter(|b| args.all || b.current)
        .collect();
    if global.quiet {
        let mut ids: Vec<&str> = builds.iter().map(|b| b.info.id.as_str()).collect();
        ids.dedup();
        let lines: Vec<&str> = ids.iter().map(|id| short_id(id)).collect();
        term.out(&(lines.join("\n") + if lines.is_empty() { "" } else { "\n" }));
        return Ok(ExitStatus::Success);
    }
    let listed: Vec<Listed> = builds
        .iter()
        .map(|build| {
            let own = project
                .image_id(&build.image)
                .and_then(|index| connected.runtime.block_on(history(&scope, index, &build.info.id)).ok())
                .map_or(0, |layers| {
                    layers
                        .iter()
                        .filter(|l| matches!(&l.origin, LayerOrigin::Manifest { image, .. } if *image == build.image))
                        .map(|l| l.size)
                        .sum()
                });
            Listed {
                image: build.image.clone(),
                tags: build.user_tags(),
                id: build.info.id.clone(),
                created: build.info.created.clone(),
                size: build.info.size,
                own_size: own.min(build.info.size),
                base_size: build.info.size.saturating_sub(own),
                current: build.current,
                key: build.key().map(str::to_owned),
            }
        })
        .collect();
    if args.json {
        term.json(&listed);
        return Ok(ExitStatus::Success);
    }
    term.out(&table(&listed));
    Ok(ExitStatus::Success)
}

fn table(listed: &[Listed]) -> String {
    let mut rows = vec![["IMAGE", "TAGS", "IMAGE ID", "CREATED", "SIZE", "OWN", "BASE"].map(str::to_owned)];
    for l in listed {
        let tags = if l.tags.is_empty() { "<none>".to_owned() } else { l.tags.join(", ") };
        let image = if l.current { l.image.clone() } else { format!("{} (superseded)", l.image) };
        rows.push([
            image,
            tags,
            short_id(&l.id).to_owned(),
            l.created.clone(),
            human_size(l.size),
            human_size(l.own_size),
            human_size(l.base_size),
        ]);
    }
    let mut out = columns(&rows);
    if listed.is_empty() {
        out.push_str("(no image of this manifest: build some with `kiln build`)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Listed, table};

    fn listed(image: &str, tags: &[&str], current: bool, size: u64) -> Listed {
        Listed {
            image: image.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            id: format!("sha256:{size:0<64}"),
            created: "2026-11-28 20:00:00".to_owned(),
            size,
            own_size: size / 4,
            base_size: size - size / 4,
            current,
            key: None,
        }
    }

    #[test]
    fn lists_builds_in_aligned_columns() {
        let rows = [
            listed("api", &["shop/api:latest", "shop/api:1.0"], true, 12_345_678),
            listed("api", &[], false, 12_000_000),
            listed("worker.prod", &["shop/worker:prod"], true, 4_096),
        ];
        insta::assert_snapshot!(table(&rows));
    }

    #[test]
    fn says_when_there_is_nothing() {
        insta::assert_snapshot!(table(&[]));
    }
}
