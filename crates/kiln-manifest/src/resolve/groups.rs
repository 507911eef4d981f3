//! Groups: names for sets of images, which may contain other groups.

use indexmap::IndexMap;

use super::{Names, Resolver, is_image_name};
use crate::ast::GroupDecl;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Group;
use crate::suggest::did_you_mean;

impl Resolver<'_> {
    pub(super) fn resolve_groups(
        &mut self,
        decls: &[GroupDecl],
        names: &Names<'_>,
    ) -> IndexMap<String, Group> {
        let mut groups: IndexMap<String, Group> = IndexMap::new();
        for decl in decls {
            if !is_image_name(&decl.name.value) {
                self.invalid_name(&decl.name, "group");
            }
            if names.images.contains(decl.name.value.as_str()) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        format!("`{}` is both a group and an image", decl.name.value),
                    )
                    .label(decl.name.span, "group")
                    .help("the command line takes image and group names alike; rename the group"),
                );
                continue;
            }
            if let Some(first) = groups.get(&decl.name.value) {
                self.diags.push(Diagnostic::duplicate("group", &decl.name.value, decl.name.span, first.span));
                continue;
            }
            groups.insert(
                decl.name.value.clone(),
                Group { span: decl.name.span, members: decl.members.clone(), images: Vec::new() },
            );
        }
        let group_names: Vec<String> = groups.keys().cloned().collect();
        for name in &group_names {
            let mut images = Vec::new();
            let mut stack = Vec::new();
            self.expand_group(name, &groups, names, &mut stack, &mut images);
            groups[name].images = images;
        }
        groups
    }

    fn expand_group(
        &mut self,
        name: &str,
        groups: &IndexMap<String, Group>,
        names: &Names<'_>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) {
        if let Some(start) = stack.iter().position(|g| g == name) {
            // Report each cycle once, from the first of its groups in the manifest.
            let first = stack[start..].iter().min_by_key(|g| groups.get_index_of(g.as_str()));
            if start == 0 && first.is_some_and(|f| f == name) {
                let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                cycle.push(name);
                let mut diagnostic = Diagnostic::new(
                    Code::Cycle,
                    format!("groups contain each other: {}", cycle.join(" -> ")),
                );
                for pair in cycle.windows(2) {
                    if let Some(member) = groups[pair[0]].members.iter().find(|m| m.value == pair[1]) {
                        diagnostic =
                            diagnostic.label(member.span, format!("`{}` contains `{}`", pair[0], pair[1]));
                    }
                }
                self.diags.push(diagnostic);
            }
            return;
        }
        stack.push(name.to_owned());
        for member in &groups[name].members {
            if groups.contains_key(&member.value) {
                self.expand_group(&member.value, groups, names, stack, out);
            } else if names.images.contains(member.value.as_str()) {
                if !out.contains(&member.value) {
                    out.push(member.value.clone());
                }
            } else if stack.len() == 1 {
                let candidates =
                    names.image_list.iter().map(String::as_str).chain(groups.keys().map(String::as_str));
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownReference,
                        format!("group `{name}` lists unknown image `{}`", member.value),
                    )
                    .label(member.span, "no image or group of this name")
                    .help_opt(did_you_mean(&member.value, candidates)),
                );
            }
        }
        stack.pop();
    }
}
