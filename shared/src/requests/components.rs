//! Where each component of a bundle request stands, read off the request's timeline: the
//! worker and the JIRA webhook label every entry about a component with `<id>: `, so the
//! portal can colour the component graph without knowing the engine's records.

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{RequestEvent, Ticket};
use crate::catalog::document::Component;

/// One component of a bundle request.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentProgress {
    pub id: String,
    /// The catalog item it provisions.
    pub item: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// `pending`, `in_progress`, `awaiting_fulfillment` (a person works on its JIRA
    /// issue), `completed`, `failed`, `rejected`, `rolled_back`, `kept` (completed, and
    /// nothing to roll back automatically), `deleted`.
    pub status: &'static str,
    /// The JIRA issue a person fulfils it through, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// The last timeline entry about it, without its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The timeline message of a ticket opened for a request or one of its components.
pub fn ticket_opened(label: &str, key: &str, url: &str) -> String {
    format!("{label}JIRA issue {key} opened: {url}")
}

fn parse_ticket(message: &str) -> Option<Ticket> {
    let rest = message.strip_prefix("JIRA issue ")?;
    let (key, url) = rest.split_once(" opened: ")?;
    Some(Ticket {
        key: key.to_owned(),
        url: url.to_owned(),
    })
}

/// The state of every component in `components`, from `events` (oldest first).
pub fn progress(components: &[Component], events: &[RequestEvent]) -> Vec<ComponentProgress> {
    components
        .iter()
        .map(|c| {
            let label = format!("{}: ", c.id);
            let mut state = ComponentProgress {
                id: c.id.clone(),
                item: c.item.clone(),
                depends_on: c.depends_on.clone(),
                status: "pending",
                ticket: None,
                message: None,
            };
            for event in events {
                let Some(message) = event
                    .message
                    .as_deref()
                    .and_then(|m| m.strip_prefix(&label))
                else {
                    continue;
                };
                match event.kind.as_str() {
                    "component_started" => state.status = "in_progress",
                    "ticket_created" => {
                        state.status = "awaiting_fulfillment";
                        state.ticket = parse_ticket(message);
                    }
                    "component_completed" => state.status = "completed",
                    "component_failed" | "rollback_failed" => state.status = "failed",
                    "component_rejected" => state.status = "rejected",
                    "component_rolled_back" => state.status = "rolled_back",
                    "component_kept" => state.status = "kept",
                    "component_deleted" | "component_left" => state.status = "deleted",
                    _ => {}
                }
                state.message = Some(message.to_owned());
            }
            state
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::model::{RequestId, RequestStatus};

    fn event(kind: &str, message: &str) -> RequestEvent {
        RequestEvent {
            request_id: RequestId::new_at(time::OffsetDateTime::UNIX_EPOCH),
            seq: 1,
            at: time::OffsetDateTime::UNIX_EPOCH,
            actor: "worker".to_owned(),
            kind: kind.to_owned(),
            status: RequestStatus::InProgress,
            message: Some(message.to_owned()),
        }
    }

    fn component(id: &str, depends_on: &[&str]) -> Component {
        Component {
            id: id.to_owned(),
            item: format!("{id}-item"),
            inputs: Default::default(),
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn each_component_takes_the_state_of_its_last_labelled_entry() {
        let components = [
            component("net", &[]),
            component("db", &["net"]),
            component("app", &["db"]),
            component("db-replica", &["db"]),
        ];
        let events = [
            event("execution_started", "provisioning 4 components"),
            event("component_started", "net: provisioning `net-item`"),
            event("component_completed", "net: completed with vpcId"),
            event("component_started", "db: provisioning `db-item`"),
            event(
                "ticket_created",
                &ticket_opened("db: ", "OPS-7", "https://jira.example.com/browse/OPS-7"),
            ),
            event(
                "component_started",
                "db-replica: provisioning `db-replica-item`",
            ),
            event("component_failed", "db-replica: the API answered 500"),
            event("component_rolled_back", "net: rolled back"),
        ];
        let states = progress(&components, &events);
        let by_id = |id: &str| states.iter().find(|s| s.id == id).unwrap().clone();
        assert_eq!(by_id("net").status, "rolled_back");
        assert_eq!(by_id("net").message.as_deref(), Some("rolled back"));
        let db = by_id("db");
        assert_eq!(db.status, "awaiting_fulfillment");
        assert_eq!(
            db.ticket,
            Some(Ticket {
                key: "OPS-7".to_owned(),
                url: "https://jira.example.com/browse/OPS-7".to_owned()
            })
        );
        assert_eq!(db.depends_on, vec!["net".to_owned()]);
        // `db: ` is not a prefix of `db-replica: `'s entries, nor the other way round.
        assert_eq!(by_id("db-replica").status, "failed");
        assert_eq!(by_id("app").status, "pending");
        assert_eq!(by_id("app").message, None);
    }
}
