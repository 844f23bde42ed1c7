//! CODEOWNERS for a catalog repository: every catalog file must be owned, on GitHub, by
//! the team its `metadata.owner` names, so a team reviews every change to its offerings.
//!
//! Matching follows GitHub's CODEOWNERS semantics: gitignore-style patterns, the last
//! matching rule wins, a rule with no owners leaves the path unowned, and `!` negation
//! and `[ ]` ranges are not supported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};

use super::finding::{Finding, Severity};
use super::load::{Catalog, TEAMS_FILE};
use super::yaml::Pos;

/// Where GitHub looks for CODEOWNERS, in its order of precedence.
pub const LOCATIONS: [&str; 3] = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// One rule: a pattern and its owners, with the line it is on.
#[derive(Debug, Clone)]
pub struct Rule {
    pub line: usize,
    pub pattern: String,
    pub owners: Vec<String>,
    matcher: GlobMatcher,
    /// A pattern also owns everything beneath a directory it matches.
    beneath: GlobMatcher,
}

/// A parsed CODEOWNERS file.
#[derive(Debug, Clone)]
pub struct CodeOwners {
    /// Path of the file relative to the repository root.
    pub path: String,
    pub rules: Vec<Rule>,
}

impl CodeOwners {
    /// Parses CODEOWNERS text; unusable lines become findings (GitHub skips them too).
    pub fn parse(path: &str, text: &str) -> (CodeOwners, Vec<Finding>) {
        let mut rules = Vec::new();
        let mut findings = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = strip_comment(raw);
            let mut words = content.split_whitespace();
            let Some(pattern) = words.next() else {
                continue;
            };
            let pattern = pattern.replace("\\#", "#");
            let owners: Vec<String> = words.map(str::to_owned).collect();
            let problem = |message: String| {
                Finding::new(path, Pos::new(line, 1), "", Severity::Error, message)
            };
            if pattern.starts_with('!') || pattern.contains('[') {
                findings.push(problem(format!(
                    "pattern `{pattern}` uses `!` or `[ ]`, which CODEOWNERS does not support; GitHub ignores this line"
                )));
                continue;
            }
            if let Some(bad) = owners.iter().find(|o| !is_owner(o)) {
                findings.push(problem(format!(
                    "`{bad}` is not an owner: write @user, @org/team or an email address"
                )));
                continue;
            }
            match compile(&pattern) {
                Ok((matcher, beneath)) => rules.push(Rule {
                    line,
                    pattern,
                    owners,
                    matcher,
                    beneath,
                }),
                Err(e) => findings.push(problem(format!("pattern `{pattern}` is not valid: {e}"))),
            }
        }
        (
            CodeOwners {
                path: path.to_owned(),
                rules,
            },
            findings,
        )
    }

    /// The rule that decides who owns `path` (relative, `/`-separated): the last match.
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .rev()
            .find(|r| r.matcher.is_match(path) || r.beneath.is_match(path))
    }
}

fn strip_comment(line: &str) -> &str {
    let mut previous = '\0';
    for (i, c) in line.char_indices() {
        if c == '#' && previous != '\\' {
            return &line[..i];
        }
        previous = c;
    }
    line
}

fn is_owner(owner: &str) -> bool {
    if let Some(handle) = owner.strip_prefix('@') {
        let mut parts = handle.split('/');
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        return parts.next().is_some_and(valid)
            && parts.next().is_none_or(valid)
            && parts.next().is_none();
    }
    owner.contains('@') && !owner.contains(char::is_whitespace)
}

/// Turns a CODEOWNERS pattern into globs over repository-relative paths: the pattern
/// itself, and everything beneath it when it names a directory.
fn compile(pattern: &str) -> Result<(GlobMatcher, GlobMatcher), globset::Error> {
    let directory_only = pattern.ends_with('/');
    let trimmed = pattern.trim_end_matches('/');
    // A slash at the start or in the middle anchors the pattern to the root; otherwise it
    // matches at any depth.
    let anchored = trimmed.contains('/');
    let body = trimmed.trim_start_matches('/');
    let glob = if body.is_empty() || body == "**" {
        "**".to_owned()
    } else if anchored || body.starts_with("**") {
        body.to_owned()
    } else {
        format!("**/{body}")
    };
    let build = |g: &str| -> Result<GlobMatcher, globset::Error> {
        Ok(GlobBuilder::new(g)
            .literal_separator(true)
            .build()?
            .compile_matcher())
    };
    let itself = if directory_only {
        // `docs/` owns what is beneath docs, not a file named docs.
        Glob::new("\0never")?.compile_matcher()
    } else {
        build(&glob)?
    };
    Ok((itself, build(&format!("{glob}/**"))?))
}

/// Finds the CODEOWNERS file GitHub would use in `repo`.
pub fn locate(repo: &Path) -> Option<PathBuf> {
    LOCATIONS.iter().map(|l| repo.join(l)).find(|p| p.is_file())
}

/// Checks that every catalog document is owned by its team's GitHub handle.
pub fn check(catalog: &Catalog, codeowners: &CodeOwners) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(teams) = &catalog.teams else {
        findings.push(Finding::new(
            TEAMS_FILE,
            Pos::default(),
            "",
            Severity::Error,
            format!("{TEAMS_FILE} is missing, so there is no GitHub team to expect for each owner"),
        ));
        return findings;
    };
    for (file, owner, at) in documents(catalog) {
        let Some(team) = teams.doc.spec.teams.get(owner) else {
            continue; // Reported by catalog validation.
        };
        let expected = &team.github;
        let problem = match codeowners.rule_for(file) {
            None => format!(
                "no CODEOWNERS rule covers this file; add `/{file} {expected}` to {}",
                codeowners.path
            ),
            Some(rule) if rule.owners.iter().any(|o| o.eq_ignore_ascii_case(expected)) => continue,
            Some(rule) if rule.owners.is_empty() => format!(
                "{} line {} (`{}`) leaves this file without an owner; team `{owner}` ({expected}) must own it",
                codeowners.path, rule.line, rule.pattern
            ),
            Some(rule) => format!(
                "{} line {} (`{}`) gives this file to {}, but its owner team `{owner}` is {expected}; \
                 add {expected} to that rule or a later rule for this file",
                codeowners.path,
                rule.line,
                rule.pattern,
                rule.owners.join(" ")
            ),
        };
        findings.push(Finding::new(
            file,
            at,
            "/metadata/owner",
            Severity::Error,
            problem,
        ));
    }
    findings
}

fn documents(catalog: &Catalog) -> impl Iterator<Item = (&str, &str, Pos)> {
    let items = catalog.items.iter().map(|i| {
        (
            i.file.as_str(),
            i.doc.metadata.owner.as_str(),
            i.pos("/metadata/owner"),
        )
    });
    let bundles = catalog.bundles.iter().map(|b| {
        (
            b.file.as_str(),
            b.doc.metadata.owner.as_str(),
            b.pos("/metadata/owner"),
        )
    });
    items.chain(bundles)
}

/// The folders above a `/`-separated path, shallowest first, each ending in `/`:
/// `a/b/c.yaml` gives `a/` and `a/b/`.
fn parent_dirs(path: &str) -> impl Iterator<Item = String> + '_ {
    path.match_indices('/').map(|(i, _)| path[..=i].to_owned())
}

/// A CODEOWNERS that passes [`check`]: one rule per directory whose documents all belong
/// to one team (the shallowest such directory), one rule per file elsewhere.
/// `prefix` is the catalog's path within the repository ("" at the root).
pub fn generate(catalog: &Catalog, prefix: &str) -> String {
    let handle = |owner: &str| {
        catalog
            .teams
            .as_ref()
            .and_then(|t| t.doc.spec.teams.get(owner))
            .map(|t| t.github.clone())
    };
    // Owner handles per directory, over every document beneath it.
    let mut by_dir: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    let docs: Vec<(&str, Option<String>)> =
        documents(catalog).map(|(f, o, _)| (f, handle(o))).collect();
    for (file, owner) in &docs {
        for dir in parent_dirs(file) {
            by_dir.entry(dir).or_default().push(owner.clone());
        }
    }
    let single_owner = |dir: &str| {
        by_dir.get(dir).and_then(|owners| {
            let first = owners.first()?.clone()?;
            owners
                .iter()
                .all(|o| o.as_deref() == Some(&first))
                .then_some(first)
        })
    };
    let base = if prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", prefix.trim_matches('/'))
    };
    let mut rules: BTreeMap<String, String> = BTreeMap::new();
    for (file, owner) in &docs {
        let Some(owner) = owner else {
            continue;
        };
        // The shallowest ancestor directory owned wholly by this team, else the file.
        let chosen = parent_dirs(file).find(|dir| single_owner(dir).is_some());
        let pattern = format!("/{base}{}", chosen.as_deref().unwrap_or(file));
        rules.insert(pattern, owner.clone());
    }
    let mut out = String::from(
        "# Generated by `orchestrator catalog codeowners generate`: each catalog document is owned\n\
         # by the GitHub team of its metadata.owner (see teams.yaml). Regenerate after moving files.\n",
    );
    let admins = catalog
        .teams
        .as_ref()
        .and_then(|t| t.doc.spec.admins.as_deref())
        .and_then(handle);
    let width = rules.keys().map(String::len).max().unwrap_or(0);
    if let Some(admins) = admins {
        // First, so every later rule takes precedence: the admins own the rest.
        out.push_str(&format!("{:width$} {admins}\n", "*"));
    }
    for (pattern, owner) in rules {
        out.push_str(&format!("{pattern:width$} {owner}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners_of(text: &str, path: &str) -> Option<Vec<String>> {
        let (co, findings) = CodeOwners::parse("CODEOWNERS", text);
        assert!(findings.is_empty(), "{findings:?}");
        co.rule_for(path).map(|r| r.owners.clone())
    }

    #[test]
    fn parent_folders_come_shallowest_first() {
        assert_eq!(
            parent_dirs("a/b/c.yaml").collect::<Vec<_>>(),
            ["a/", "a/b/"]
        );
        assert_eq!(parent_dirs("c.yaml").count(), 0);
    }

    #[test]
    fn the_last_matching_rule_wins() {
        let text = "* @org/all\n/items/ @org/items\n/items/db/*.yaml @org/dba\n";
        assert_eq!(owners_of(text, "items/db/rds.yaml").unwrap(), ["@org/dba"]);
        assert_eq!(owners_of(text, "items/eks.yaml").unwrap(), ["@org/items"]);
        assert_eq!(owners_of(text, "README.md").unwrap(), ["@org/all"]);
    }

    #[test]
    fn unanchored_patterns_match_at_any_depth_and_star_stays_in_a_segment() {
        assert!(owners_of("*.yaml @o/t\n", "a/b/c.yaml").is_some());
        assert!(owners_of("db/ @o/t\n", "x/db/rds.yaml").is_some());
        assert!(owners_of("/items/*.yaml @o/t\n", "items/db/rds.yaml").is_none());
        assert!(owners_of("/items/**/*.yaml @o/t\n", "items/db/rds.yaml").is_some());
        assert!(owners_of("/items/db @o/t\n", "items/db/rds.yaml").is_some());
    }

    #[test]
    fn a_rule_without_owners_unowns_and_comments_are_ignored() {
        let text = "# comment\n* @o/t # trailing\n/generated/\n";
        assert_eq!(
            owners_of(text, "generated/x.yaml").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(owners_of(text, "x.yaml").unwrap(), ["@o/t"]);
    }

    #[test]
    fn unsupported_syntax_and_bad_owners_are_reported_with_their_line() {
        let (_, findings) =
            CodeOwners::parse("CODEOWNERS", "* @o/t\n!x.yaml @o/t\n/a/ not-an-owner\n");
        assert_eq!(findings.iter().map(|f| f.line).collect::<Vec<_>>(), [2, 3]);
    }
}
