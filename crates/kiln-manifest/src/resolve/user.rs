//! Which user each image's container runs as, and a warning when that is root.

use super::Resolver;
use crate::ast::{From, Instruction, User};
use crate::diagnostic::{Code, Diagnostic};
use crate::id::StageId;
use crate::model::Image;
use crate::source::Span;

/// The user a stage ends with, as far as the manifest tells.
enum FinalUser<'a> {
    /// Set by a `user` node (and its span).
    Set(&'a User, Span),
    /// No `user` on the way down to an outside base, which Docker runs as root unless
    /// it sets a USER itself.
    FromBase(Span),
}

impl Resolver<'_> {
    /// `runs-as-root` (advice), as one warning for the whole project.
    pub(super) fn check_runs_as_root(&mut self, images: &[Image]) {
        let mut names: Vec<&str> = Vec::new();
        // Images that reach root through the same node share its label.
        let mut labels: Vec<(Span, Vec<&str>, &str)> = Vec::new();
        for image in images {
            let mut seen = Vec::new();
            let (span, reason) = match final_user(images, image, image.target, &mut seen) {
                Err(Unresolved) => return,
                Ok(FinalUser::Set(user, span)) if user.names_root() => (span, "sets root"),
                Ok(FinalUser::FromBase(span)) => {
                    (span, "no `user` on the way to this base, whose user is root for most images")
                }
                Ok(FinalUser::Set(..)) => continue,
            };
            names.push(&image.name);
            match labels.iter_mut().find(|(s, ..)| *s == span) {
                Some((_, sharing, _)) => sharing.push(&image.name),
                None => labels.push((span, vec![&image.name], reason)),
            }
        }
        let message = match names.as_slice() {
            [] => return,
            [one] => format!("image `{one}` runs as root"),
            many => format!(
                "{} images run as root: {}",
                many.len(),
                many.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut diagnostic = Diagnostic::new(Code::RunsAsRoot, message);
        for (span, sharing, reason) in labels {
            let sharing: Vec<String> = sharing.iter().map(|n| format!("`{n}`")).collect();
            diagnostic = diagnostic.label(span, format!("{}: {reason}", sharing.join(", ")));
        }
        self.diags.push(diagnostic.help(
            "end each image's last stage with a user of its own, such as `user app uid=10001` (kiln creates it)",
        ));
    }
}

/// A chain of stages or images that comes back on itself or names nothing: an error
/// of its own.
struct Unresolved;

fn final_user<'a>(
    images: &'a [Image],
    image: &'a Image,
    stage: StageId,
    seen: &mut Vec<(&'a str, StageId)>,
) -> Result<FinalUser<'a>, Unresolved> {
    if seen.contains(&(image.name.as_str(), stage)) || stage.index() >= image.stages.len() {
        return Err(Unresolved);
    }
    seen.push((&image.name, stage));
    let stage = image.stage(stage);
    let last_user = stage.instructions.iter().rev().find_map(|instruction| match &instruction.value {
        Instruction::User(user) => Some(FinalUser::Set(user, instruction.span)),
        _ => None,
    });
    if let Some(user) = last_user {
        return Ok(user);
    }
    match &stage.from.value {
        From::External(_) => Ok(FinalUser::FromBase(stage.from.span)),
        From::Stage(name) => {
            let id = image.stage_id(&name.value).ok_or(Unresolved)?;
            final_user(images, image, id, seen)
        }
        From::Image(name) => {
            let parent = images.iter().find(|i| i.name == name.value).ok_or(Unresolved)?;
            final_user(images, parent, parent.target, seen)
        }
    }
}
