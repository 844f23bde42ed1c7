//! Manual fulfillment through JIRA: the issue a request opens, and what its resolution
//! means for the request.

use serde_json::{Map, Value, json};

use crate::catalog::document::JiraTicket;
use crate::requests::model::RequestId;
use crate::template::render::{RenderFailure, Renderer};

/// The label that ties a JIRA issue to its request, so a retry finds it.
pub fn request_label(id: RequestId) -> String {
    format!("orchestrator-{id}")
}

/// JIRA's `fields` object for a ticket definition, rendered with `context`, labelled with
/// `label` (see [`request_label`]).
pub fn issue_fields(
    ticket: &JiraTicket,
    label: &str,
    renderer: &Renderer,
    context: &Value,
) -> Result<Map<String, Value>, RenderFailure> {
    let at = "manual.ticket";
    let text =
        |template: &str, key: &str| renderer.render_str(template, context, &format!("{at}/{key}"));
    let mut fields = Map::new();
    for (name, value) in &ticket.fields {
        fields.insert(
            name.clone(),
            renderer.render_value(value, context, &format!("{at}/fields/{name}"))?,
        );
    }
    let rendered = JiraTicket {
        project: ticket.project.clone(),
        issue_type: ticket.issue_type.clone(),
        summary: text(&ticket.summary, "summary")?,
        description: ticket
            .description
            .as_deref()
            .map(|d| text(d, "description"))
            .transpose()?,
        labels: ticket
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| text(l, &format!("labels/{i}")))
            .collect::<Result<_, _>>()?,
        priority: ticket
            .priority
            .as_deref()
            .map(|p| text(p, "priority"))
            .transpose()?,
        fields,
    };
    Ok(ticket_fields(&rendered, label))
}

/// JIRA's `fields` object for an already rendered ticket, labelled with `label` (which
/// finds the issue again on a retry).
pub fn ticket_fields(ticket: &JiraTicket, label: &str) -> Map<String, Value> {
    // Extra fields first, so the ticket's own keys win on a clash.
    let mut fields = ticket.fields.clone();
    fields.insert("project".into(), json!({ "key": ticket.project }));
    fields.insert("issuetype".into(), json!({ "name": ticket.issue_type }));
    fields.insert("summary".into(), json!(ticket.summary));
    if let Some(description) = &ticket.description {
        fields.insert("description".into(), json!(description));
    }
    if let Some(priority) = &ticket.priority {
        fields.insert("priority".into(), json!({ "name": priority }));
    }
    let mut labels = ticket.labels.clone();
    labels.push("orchestrator".to_owned());
    labels.push(label.to_owned());
    fields.insert("labels".into(), json!(labels));
    fields
}

/// Resolutions that mean "no": the request is rejected rather than completed (and a
/// `jira` action waiting for its issue fails, unless it names its own).
pub const REJECTING: &[&str] = &[
    "won't do",
    "won't fix",
    "declined",
    "rejected",
    "duplicate",
    "cannot reproduce",
];

/// Whether `resolution` is one of `negative` (compared without case).
pub fn is_negative(resolution: &str, negative: &[impl AsRef<str>]) -> bool {
    negative
        .iter()
        .any(|n| n.as_ref().eq_ignore_ascii_case(resolution))
}

/// Why a person said no: the issue's last comment, else the resolution (`fields` is the
/// issue's `fields` object).
pub fn refusal(fields: &Value, resolution: &str) -> String {
    fields["comment"]["comments"]
        .as_array()
        .and_then(|c| c.last())
        .and_then(|c| c["body"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the ticket was resolved as {resolution}"))
}

/// What a JIRA issue's state means for its request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Not finished yet.
    Open,
    Completed {
        outputs: Map<String, Value>,
        missing: Vec<String>,
    },
    Rejected {
        reason: String,
    },
}

/// Reads an issue (`issue` object of a webhook payload): done or not, and how.
pub fn outcome(
    issue: &Value,
    output_fields: &std::collections::BTreeMap<String, String>,
) -> Outcome {
    let fields = &issue["fields"];
    let done = fields["status"]["statusCategory"]["key"].as_str() == Some("done");
    if !done {
        return Outcome::Open;
    }
    let resolution = fields["resolution"]["name"].as_str().unwrap_or_default();
    if is_negative(resolution, REJECTING) {
        return Outcome::Rejected {
            reason: refusal(fields, resolution),
        };
    }
    let mut outputs = Map::new();
    let mut missing = Vec::new();
    for (output, field) in output_fields {
        match &fields[field.as_str()] {
            Value::Null => missing.push(output.clone()),
            // Select lists and similar come as {"value": ...}.
            Value::Object(o) if o.contains_key("value") => {
                outputs.insert(output.clone(), o["value"].clone());
            }
            other => {
                outputs.insert(output.clone(), other.clone());
            }
        }
    }
    Outcome::Completed { outputs, missing }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_done_issue_completes_with_outputs_and_a_declined_one_rejects_with_the_last_comment() {
        let map = [
            ("endpoint".to_owned(), "customfield_1".to_owned()),
            ("port".to_owned(), "customfield_2".to_owned()),
        ]
        .into();
        let done = json!({"fields": {"status": {"statusCategory": {"key": "done"}}, "resolution": {"name": "Done"},
                                     "customfield_1": "db.example", "customfield_2": {"value": "5432"}}});
        assert_eq!(
            outcome(&done, &map),
            Outcome::Completed {
                outputs: json!({"endpoint": "db.example", "port": "5432"})
                    .as_object()
                    .unwrap()
                    .clone(),
                missing: vec![]
            }
        );
        let declined = json!({"fields": {"status": {"statusCategory": {"key": "done"}}, "resolution": {"name": "Won't Do"},
                                         "comment": {"comments": [{"body": "first"}, {"body": "use the shared cluster"}]}}});
        assert_eq!(
            outcome(&declined, &map),
            Outcome::Rejected {
                reason: "use the shared cluster".into()
            }
        );
        let open = json!({"fields": {"status": {"statusCategory": {"key": "indeterminate"}}}});
        assert_eq!(outcome(&open, &map), Outcome::Open);
    }
}
