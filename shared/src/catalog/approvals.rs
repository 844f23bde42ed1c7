//! Checks of approval policies (`spec.approvals` of items and bundles) that the schema
//! cannot make: conditions that read fields the form has, teams that exist, unique
//! names, and stages somebody can satisfy.

use std::collections::BTreeSet;

use super::Finding;
use super::document::{ApprovalPolicy, Approvers, Require};
use super::finding::did_you_mean;
use super::locator::Locator;

/// Checks the policies of one document; `teams` are the ids of `teams.yaml`, when it is
/// valid; `fields` are the form's.
pub(super) fn check(
    doc: &dyn Locator,
    policies: &[ApprovalPolicy],
    fields: &BTreeSet<String>,
    teams: Option<&[&str]>,
    findings: &mut Vec<Finding>,
) {
    let mut names = BTreeSet::new();
    for (i, policy) in policies.iter().enumerate() {
        let base = format!("/spec/approvals/{i}");
        if !names.insert(policy.name.as_str()) {
            findings.push(doc.error_at(
                &format!("{base}/name"),
                format!(
                    "policy `{}` is named twice; policy names are unique within a document",
                    policy.name
                ),
            ));
        }
        for (j, condition) in policy.when.iter().enumerate() {
            if let Some(why) = condition_problem(&condition.path, fields) {
                findings.push(doc.error_at(&format!("{base}/when/{j}/path"), why));
            }
        }
        let mut stages = BTreeSet::new();
        for (j, stage) in policy.stages.iter().enumerate() {
            let at = format!("{base}/stages/{j}");
            if !stages.insert(stage.name.as_str()) {
                findings.push(doc.error_at(
                    &format!("{at}/name"),
                    format!(
                        "stage `{}` is named twice in policy `{}`",
                        stage.name, policy.name
                    ),
                ));
            }
            check_approvers(
                doc,
                &format!("{at}/approvers"),
                &stage.approvers,
                stage.require,
                teams,
                findings,
            );
            if let Some(escalate) = &stage.escalate {
                check_approvers(
                    doc,
                    &format!("{at}/escalate/approvers"),
                    &escalate.approvers,
                    stage.require,
                    teams,
                    findings,
                );
            }
        }
    }
}

/// Why a condition's path cannot read the request, if it cannot: it must read a field of
/// the form, `$.fields.<name>...`.
fn condition_problem(path: &str, fields: &BTreeSet<String>) -> Option<String> {
    if let Err(e) = serde_json_path::JsonPath::parse(path) {
        return Some(format!("`{path}` is not a valid JSONPath (RFC 9535): {e}"));
    }
    let Some(rest) = path.strip_prefix("$.fields.") else {
        return Some(format!(
            "`{path}` does not read the request's fields; a condition reads `$.fields.<name>`"
        ));
    };
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if fields.contains(&name) {
        return None;
    }
    Some(format!(
        "`{name}` is not a field of the form{}",
        did_you_mean(&name, fields.iter().map(String::as_str))
    ))
}

fn check_approvers(
    doc: &dyn Locator,
    at: &str,
    approvers: &Approvers,
    require: Require,
    teams: Option<&[&str]>,
    findings: &mut Vec<Finding>,
) {
    if approvers.is_empty() {
        findings.push(doc.error_at(
            at,
            "nobody can satisfy this stage: name its approvers (`owner: true`, `teams`, `groups` or `users`)".to_owned(),
        ));
        return;
    }
    if let Some(known) = teams {
        for (k, team) in approvers.teams.iter().enumerate() {
            if !known.contains(&team.as_str()) {
                findings.push(doc.error_at(
                    &format!("{at}/teams/{k}"),
                    format!(
                        "`{team}` is not a team in teams.yaml{}",
                        did_you_mean(team, known.iter().copied())
                    ),
                ));
            }
        }
    }
    let only_users = !approvers.owner && approvers.teams.is_empty() && approvers.groups.is_empty();
    match require {
        Require::All if !only_users => findings.push(doc.error_at(
            at,
            "`require: all` means every named user, so its approvers can only be `users` (a team or group has no fixed list of members); name the users, or require a count".to_owned(),
        )),
        Require::Count(n) if only_users && n as usize > approvers.users.len() => {
            findings.push(doc.error_at(
                at,
                format!(
                    "nobody can satisfy this stage: it requires {n} approvals from {} named user{}",
                    approvers.users.len(),
                    if approvers.users.len() == 1 { "" } else { "s" }
                ),
            ))
        }
        _ => {}
    }
}
