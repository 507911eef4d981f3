//! "Did you mean" hints for misspelled names.

/// The candidate closest to `name`, if one is close enough to be a likely typo.
pub(crate) fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name)
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|&(distance, candidate)| {
            // Allow about one edit per three characters, and always one.
            let limit = (name.chars().count().max(candidate.chars().count()) / 3).max(1);
            distance <= limit
        })
        .min_by_key(|&(distance, candidate)| (distance, candidate))
        .map(|(_, candidate)| candidate)
}

/// `did you mean `x`?`, or nothing.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typos_only() {
        let names = ["base", "api", "worker", "frontend"];
        assert_eq!(closest("bse", names), Some("base"));
        assert_eq!(closest("wroker", names), Some("worker"));
        assert_eq!(closest("apj", names), Some("api"));
        assert_eq!(closest("database", names), None);
        assert_eq!(closest("x", names), None);
    }
}
