//! What a notification says, and its shape on each channel: a Slack message, the signed
//! webhook's JSON (the notification itself), an SNS message with its subject.

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::approvals::model::Approval;
use crate::catalog::document::Approvers;
use crate::catalog::subscription::Topic;
use crate::requests::model::{EventKind, Request, RequestEvent};
use crate::resources::model::Resource;

/// A notification, as every channel receives it. Made of timeline entries, records'
/// names and links: never fields' values, outputs or secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `notification.<topic>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The same for every delivery of one notice: receivers drop duplicates by it.
    pub id: String,
    pub topic: Topic,
    #[serde(with = "crate::timestamp")]
    pub timestamp: OffsetDateTime,
    /// One line for people.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSummary>,
    /// Where a drifted resource differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// Where to act on it in the portal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestSummary {
    pub id: String,
    pub target: String,
    pub owner: String,
    pub requester: String,
    pub operation: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    pub id: String,
    pub item: String,
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalSummary {
    pub id: String,
    pub policy: String,
    pub stage: String,
    /// Who may decide (the owning team appears as `owner: true`).
    pub approvers: Approvers,
    /// The same, in words (`team database, group security-leads`).
    pub approvers_described: String,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
    /// The portal's approvals page, where they decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The portal's address, for links (`None`: notifications carry none).
#[derive(Debug, Clone, Default)]
pub struct Portal(pub Option<String>);

impl Portal {
    fn link(&self, path: &str) -> Option<String> {
        self.0
            .as_deref()
            .map(|base| format!("{}/#/{path}", base.trim_end_matches('/')))
    }
}

impl Notification {
    /// A notification of a request's timeline entry (`approval`: the stage it is about).
    pub fn of_request(
        id: String,
        topic: Topic,
        event: &RequestEvent,
        request: &Request,
        approval: Option<&Approval>,
        portal: &Portal,
    ) -> Notification {
        let what = match topic {
            Topic::ApprovalNeeded => "Approval needed",
            Topic::Approved => "Approved",
            Topic::Denied => "Denied",
            Topic::Completed => "Completed",
            Topic::Failed => "Failed",
            Topic::Cancelled => "Cancelled",
            Topic::Waiting => "Waiting",
            Topic::Comment => "Comment",
            Topic::Drift => "Drift",
            Topic::Sla if event.kind == EventKind::SlaBreached => "Service level missed",
            Topic::Sla => "Service level at risk",
        };
        let mut summary = format!(
            "{what}: {} of `{}` for {} (request {})",
            request.operation.as_str(),
            request.target,
            request.requester.sub,
            request.id
        );
        let approval = approval.map(|a| ApprovalSummary {
            id: a.id.clone(),
            policy: a.policy.clone(),
            stage: a.stage.clone(),
            approvers: a.approvers.clone(),
            approvers_described: a.approvers.describe(&a.owner),
            expires_at: a.expires_at,
            link: portal.link("approvals"),
        });
        if let (Topic::ApprovalNeeded, Some(a)) = (topic, &approval) {
            summary.push_str(&format!(
                "; `{}` / `{}` awaits {} until {}",
                a.policy,
                a.stage,
                a.approvers_described,
                crate::timestamp::format(a.expires_at)
            ));
        }
        Notification {
            kind: format!("notification.{}", topic.as_str()),
            id,
            topic,
            timestamp: event.at,
            summary,
            message: event.message.clone(),
            actor: Some(event.actor.clone()),
            request: Some(RequestSummary {
                id: request.id.to_string(),
                target: request.target.clone(),
                owner: request.owner.clone(),
                requester: request.requester.sub.clone(),
                operation: request.operation.as_str().to_owned(),
                status: event.status.as_str().to_owned(),
            }),
            resource: None,
            link: match (topic, &approval) {
                (Topic::ApprovalNeeded, Some(a)) => a.link.clone(),
                _ => portal.link(&format!("requests/{}", request.id)),
            },
            approval,
            drift: Vec::new(),
        }
    }

    /// A notification of drift found on `resource`.
    pub fn of_drift(
        id: String,
        at: OffsetDateTime,
        resource: &Resource,
        paths: &[String],
        portal: &Portal,
    ) -> Notification {
        Notification {
            kind: format!("notification.{}", Topic::Drift.as_str()),
            id,
            topic: Topic::Drift,
            timestamp: at,
            summary: format!(
                "Drift: resource {} (`{}`, team {}) differs from what was provisioned at {}",
                resource.id,
                resource.item,
                resource.owner,
                paths.join(", ")
            ),
            message: None,
            actor: Some("reconciler".to_owned()),
            request: None,
            resource: Some(ResourceSummary {
                id: resource.id.clone(),
                item: resource.item.clone(),
                owner: resource.owner.clone(),
            }),
            approval: None,
            drift: paths.to_vec(),
            link: portal.link(&format!("resources/{}", resource.id)),
        }
    }

    /// The item or bundle it is about.
    pub fn target(&self) -> Option<&str> {
        match (&self.request, &self.resource) {
            (Some(r), _) => Some(&r.target),
            (None, Some(r)) => Some(&r.item),
            _ => None,
        }
    }

    /// The team that owns what it is about.
    pub fn owner(&self) -> Option<&str> {
        match (&self.request, &self.resource) {
            (Some(r), _) => Some(&r.owner),
            (None, Some(r)) => Some(&r.owner),
            _ => None,
        }
    }

    /// The teams asked to approve (the owning team when the stage says `owner`).
    pub fn approver_teams(&self) -> Vec<&str> {
        let Some(a) = &self.approval else {
            return Vec::new();
        };
        let mut teams: Vec<&str> = a.approvers.teams.iter().map(String::as_str).collect();
        if a.approvers.owner
            && let Some(owner) = self.owner()
        {
            teams.push(owner);
        }
        teams
    }

    /// The signed webhook's body (and the SNS message): the notification as JSON.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A Slack message: a plain-text fallback and a section in Slack's markup, with the
    /// text escaped so that nothing in it becomes a mention or a link.
    pub fn slack(&self) -> Value {
        let mut text = format!("*{}*", slack_escape(&self.summary));
        if let Some(message) = &self.message {
            text.push_str(&format!("\n{}", slack_escape(message)));
        }
        if let Some(link) = &self.link {
            let label = if self.topic == Topic::ApprovalNeeded {
                "Approve or deny in the portal"
            } else {
                "Open in the portal"
            };
            text.push_str(&format!("\n<{}|{label}>", slack_escape(link)));
        }
        json!({
            "text": self.summary,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        })
    }

    /// An SNS subject: ASCII, one line, under 100 characters (as SNS requires).
    pub fn subject(&self) -> String {
        let ascii: String = self
            .summary
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        let mut subject = ascii.trim().to_owned();
        if subject.len() > 99 {
            subject.truncate(96);
            subject.push_str("...");
        }
        subject
    }
}

/// Slack reads `&`, `<` and `>` as markup (`<!channel>` would ping everyone).
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift() -> Notification {
        let resource: Resource = serde_json::from_value(json!({
            "id": "res-1", "kind": "item", "item": "rds-postgres", "catalogVersion": "v1",
            "owner": "database", "requester": "alice", "inputs": {}, "outputs": {},
            "status": "drifted", "serial": 2, "lineage": "l",
            "requestId": "0190a0f0-0000-7000-8000-000000000000",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "version": 2
        }))
        .unwrap();
        Notification::of_drift(
            "n-1".to_owned(),
            OffsetDateTime::UNIX_EPOCH,
            &resource,
            &["/storageGb <b>".to_owned()],
            &Portal(Some("https://idp.example/".to_owned())),
        )
    }

    #[test]
    fn slack_text_is_escaped_and_links_the_portal() {
        let n = drift();
        let text = n.slack()["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.contains("&lt;b&gt;"), "{text}");
        assert!(text.contains("<https://idp.example/#/resources/res-1|Open in the portal>"));
        assert_eq!(n.kind, "notification.drift");
        assert_eq!(n.target(), Some("rds-postgres"));
        assert_eq!(n.owner(), Some("database"));
    }

    #[test]
    fn sns_subjects_are_short_ascii_lines() {
        let mut n = drift();
        n.summary = format!("é\n{}", "x".repeat(200));
        let s = n.subject();
        assert!(s.len() < 100 && s.is_ascii() && !s.contains('\n'), "{s}");
    }
}
