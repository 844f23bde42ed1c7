//! Notification subscriptions: which events go where. Written per team in `teams.yaml`
//! (a team hears about its own requests, resources and the approvals it is asked for) and
//! in the deployment's configuration (`notifications.subscriptions`, which hear about
//! everything their filters let through).
//!
//! A subscription never holds a secret: a Slack incoming webhook's URL is itself a
//! credential, so it is named as a secret (`urlSecret`), and a signed webhook names the
//! secret it is signed with.

use serde::{Deserialize, Serialize};

/// What a subscription may ask to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// An approval stage awaits its approvers (opened, or escalated to others).
    ApprovalNeeded,
    /// An approval stage was approved.
    Approved,
    /// An approver denied a stage: the request ends.
    Denied,
    /// A request completed.
    Completed,
    /// A request failed or was rejected.
    Failed,
    /// A request was cancelled.
    Cancelled,
    /// A request waits for a change window or its scheduled time.
    Waiting,
    /// A comment was added to a request.
    Comment,
    /// The reconciler found a resource drifted from what was provisioned.
    Drift,
    /// A request is at risk of missing a service level target, or missed it.
    Sla,
}

impl Topic {
    pub const ALL: [Topic; 10] = [
        Topic::ApprovalNeeded,
        Topic::Approved,
        Topic::Denied,
        Topic::Completed,
        Topic::Failed,
        Topic::Cancelled,
        Topic::Waiting,
        Topic::Comment,
        Topic::Drift,
        Topic::Sla,
    ];

    /// The name written in subscriptions and sent with each notification.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::ApprovalNeeded => "approval_needed",
            Topic::Approved => "approved",
            Topic::Denied => "denied",
            Topic::Completed => "completed",
            Topic::Failed => "failed",
            Topic::Cancelled => "cancelled",
            Topic::Waiting => "waiting",
            Topic::Comment => "comment",
            Topic::Drift => "drift",
            Topic::Sla => "sla",
        }
    }
}

/// One subscription: events, one channel, and optional filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Subscription {
    /// Names the subscription in logs and deliveries (unique where it is written).
    pub name: String,
    /// The events it hears about.
    pub events: Vec<Topic>,
    /// Only about these items or bundles (empty: all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Only about requests and resources these teams own (empty: any team). For a team's
    /// own subscriptions this is implied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns: Option<SnsChannel>,
}

/// A Slack incoming webhook (or anything that takes Slack's message shape: Mattermost,
/// Rocket.Chat, Teams' Slack-compatible connectors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlackChannel {
    /// The secret holding the webhook's URL (`https://hooks.slack.com/services/...`).
    pub url_secret: String,
}

/// A generic webhook, signed as `webhook` actions are (`X-Orchestrator-Signature-256`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookChannel {
    pub url: String,
    /// The secret whose value signs each body.
    pub signing_secret: String,
}

/// An Amazon SNS topic (deployments on AWS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SnsChannel {
    pub topic_arn: String,
}

/// Where a subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Channel<'a> {
    Slack(&'a SlackChannel),
    Webhook(&'a WebhookChannel),
    Sns(&'a SnsChannel),
}

impl Subscription {
    /// Its one channel; `None` when it names none or several (validation refuses both).
    pub fn channel(&self) -> Option<Channel<'_>> {
        match (&self.slack, &self.webhook, &self.sns) {
            (Some(s), None, None) => Some(Channel::Slack(s)),
            (None, Some(w), None) => Some(Channel::Webhook(w)),
            (None, None, Some(t)) => Some(Channel::Sns(t)),
            _ => None,
        }
    }

    pub fn wants(&self, topic: Topic) -> bool {
        self.events.contains(&topic)
    }

    /// Whether a notice about `target`, owned by `owner`, passes the filters.
    pub fn covers(&self, target: Option<&str>, owner: Option<&str>) -> bool {
        let target_ok =
            self.targets.is_empty() || target.is_some_and(|t| self.targets.iter().any(|x| x == t));
        let team_ok =
            self.teams.is_empty() || owner.is_some_and(|o| self.teams.iter().any(|x| x == o));
        target_ok && team_ok
    }

    /// What is wrong with it, as (JSON pointer below the subscription, reason).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.events.is_empty() {
            out.push(("/events".to_owned(), "names no event".to_owned()));
        }
        let channels = [
            self.slack.is_some(),
            self.webhook.is_some(),
            self.sns.is_some(),
        ]
        .iter()
        .filter(|c| **c)
        .count();
        if channels != 1 {
            out.push((
                String::new(),
                format!(
                    "subscription `{}` must name exactly one of slack, webhook and sns ({channels} given)",
                    self.name
                ),
            ));
        }
        if let Some(w) = &self.webhook {
            match url::Url::parse(&w.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => out.push((
                    "/webhook/url".to_owned(),
                    "is not an http(s) URL".to_owned(),
                )),
            }
        }
        if let Some(t) = &self.sns
            && !t.topic_arn.starts_with("arn:")
        {
            out.push(("/sns/topicArn".to_owned(), "is not an ARN".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(json: &str) -> Subscription {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn one_channel_exactly() {
        let ok = sub(r#"{"name":"a","events":["approval_needed"],"slack":{"urlSecret":"s"}}"#);
        assert!(ok.problems().is_empty());
        assert!(matches!(ok.channel(), Some(Channel::Slack(_))));
        let none = sub(r#"{"name":"a","events":["failed"]}"#);
        assert!(none.channel().is_none());
        assert_eq!(none.problems().len(), 1);
        let two = sub(
            r#"{"name":"a","events":["failed"],"slack":{"urlSecret":"s"},"sns":{"topicArn":"arn:aws:sns:eu-west-1:1:t"}}"#,
        );
        assert!(two.problems()[0].1.contains("2 given"));
        let bad =
            sub(r#"{"name":"a","events":[],"webhook":{"url":"ftp://x","signingSecret":"k"}}"#);
        let pointers: Vec<_> = bad.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(pointers, ["/events", "/webhook/url"]);
    }

    #[test]
    fn filters_narrow_what_is_covered() {
        let s = sub(
            r#"{"name":"a","events":["failed"],"targets":["rds-postgres"],"teams":["database"],"slack":{"urlSecret":"s"}}"#,
        );
        assert!(s.covers(Some("rds-postgres"), Some("database")));
        assert!(!s.covers(Some("app-stack"), Some("database")));
        assert!(!s.covers(Some("rds-postgres"), Some("platform")));
        assert!(!s.covers(None, None));
        let all = sub(r#"{"name":"a","events":["failed"],"slack":{"urlSecret":"s"}}"#);
        assert!(all.covers(None, None));
    }

    #[test]
    fn unknown_events_are_refused() {
        let e = serde_json::from_str::<Subscription>(
            r#"{"name":"a","events":["exploded"],"slack":{"urlSecret":"s"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("exploded"), "{e}");
    }
}
