//! How a body is laid over another: a template under an image, an image under its variant.
//!
//! One rule at every level: settings of the overlay replace those of the base,
//! instructions are appended after the base's (a `cmd`, `entrypoint`, `healthcheck` or
//! `stopsignal` of the overlay replaces the base's: Docker keeps only the last),
//! `build-arg` and `label` merge by key, ignore patterns accumulate, and stages and
//! variants merge by name.

use crate::ast::{ImageBody, Instruction, KeyValue, StageBody, StageDecl, VariantDecl};

pub(crate) fn merge_bodies(base: &ImageBody, overlay: &ImageBody) -> ImageBody {
    ImageBody {
        extends: Vec::new(),
        description: overlay.description.clone().or_else(|| base.description.clone()),
        context: overlay.context.clone().or_else(|| base.context.clone()),
        repository: overlay.repository.clone().or_else(|| base.repository.clone()),
        tags: overlay.tags.clone().or_else(|| base.tags.clone()),
        build_args: merge_pairs(&base.build_args, &overlay.build_args),
        labels: merge_pairs(&base.labels, &overlay.labels),
        platform: overlay.platform.clone().or_else(|| base.platform.clone()),
        target: overlay.target.clone().or_else(|| base.target.clone()),
        pull_policy: overlay.pull_policy.clone().or_else(|| base.pull_policy.clone()),
        ignore: base.ignore.iter().chain(&overlay.ignore).cloned().collect(),
        needs: base.needs.iter().chain(&overlay.needs).cloned().collect(),
        implicit: merge_stages(&base.implicit, &overlay.implicit),
        stages: merge_named(
            &base.stages,
            &overlay.stages,
            |s| &s.name.value,
            |b, o| StageDecl { name: o.name.clone(), span: o.span, body: merge_stages(&b.body, &o.body) },
        ),
        variants: merge_named(
            &base.variants,
            &overlay.variants,
            |v| &v.name.value,
            |b, o| VariantDecl { name: o.name.clone(), span: o.span, body: merge_bodies(&b.body, &o.body) },
        ),
    }
}

pub(crate) fn merge_stages(base: &StageBody, overlay: &StageBody) -> StageBody {
    let replaced = |instruction: &Instruction| {
        is_single_value(instruction)
            && overlay.instructions.iter().any(|o| o.value.node_name() == instruction.node_name())
    };
    StageBody {
        from: overlay.from.clone().or_else(|| base.from.clone()),
        // The platform belongs to the `from` node that wins.
        platform: if overlay.from.is_some() { overlay.platform.clone() } else { base.platform.clone() },
        instructions: base
            .instructions
            .iter()
            .filter(|i| !replaced(&i.value))
            .chain(&overlay.instructions)
            .cloned()
            .collect(),
    }
}

/// Instructions of which an image keeps one: a later one replaces it.
fn is_single_value(instruction: &Instruction) -> bool {
    matches!(
        instruction,
        Instruction::Cmd(_)
            | Instruction::Entrypoint(_)
            | Instruction::Healthcheck(_)
            | Instruction::StopSignal(_)
    )
}

/// Keys keep the position where they first appeared; the overlay's value wins.
fn merge_pairs(base: &[KeyValue], overlay: &[KeyValue]) -> Vec<KeyValue> {
    let mut merged: Vec<KeyValue> = base.to_vec();
    let mut position: std::collections::HashMap<String, usize> =
        merged.iter().enumerate().map(|(i, p)| (p.key.value.clone(), i)).collect();
    for pair in overlay {
        if let Some(&at) = position.get(&pair.key.value) {
            merged[at].value = pair.value.clone();
        } else {
            position.insert(pair.key.value.clone(), merged.len());
            merged.push(pair.clone());
        }
    }
    merged
}

fn merge_named<T: Clone>(
    base: &[T],
    overlay: &[T],
    name: impl Fn(&T) -> &String,
    combine: impl Fn(&T, &T) -> T,
) -> Vec<T> {
    let mut merged: Vec<T> = base.to_vec();
    for item in overlay {
        match merged.iter_mut().find(|m| name(m) == name(item)) {
            Some(existing) => *existing = combine(existing, item),
            None => merged.push(item.clone()),
        }
    }
    merged
}
