//! Where each component of a bundle request stands, read off the request's timeline: the
//! worker and the JIRA completion name the component an entry is about (`component`) and
//! the ticket it opened (`detail.ticket`), so the portal can colour the component graph
//! without knowing the engine's records.

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{EventKind, RequestEvent, Ticket};
use crate::catalog::document::Component;

/// Where a component stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Pending,
    InProgress,
    /// A person works on its JIRA issue.
    AwaitingFulfillment,
    Completed,
    Failed,
    /// Failed with an action whose last call got no answer: what it made, if anything,
    /// is unknown (the entry's `detail` names the key and the target to look at).
    OutcomeUnknown,
    Rejected,
    /// Not started, because a sibling or a component it depends on had failed (or the
    /// request ended before it was reached): it made nothing.
    NotStarted,
    RolledBack,
    /// Completed, and nothing to roll back automatically.
    Kept,
    Deleted,
}

impl ComponentState {
    /// The state an entry of `kind` puts its component in, if it changes it.
    fn after(kind: EventKind) -> Option<ComponentState> {
        Some(match kind {
            EventKind::ComponentStarted => ComponentState::InProgress,
            EventKind::TicketCreated => ComponentState::AwaitingFulfillment,
            EventKind::ComponentCompleted => ComponentState::Completed,
            EventKind::ComponentFailed | EventKind::RollbackFailed => ComponentState::Failed,
            EventKind::OutcomeUnknown => ComponentState::OutcomeUnknown,
            EventKind::OutcomeResolved => ComponentState::Failed,
            EventKind::ComponentRejected => ComponentState::Rejected,
            EventKind::ComponentNotStarted => ComponentState::NotStarted,
            EventKind::ComponentRolledBack => ComponentState::RolledBack,
            EventKind::ComponentKept => ComponentState::Kept,
            EventKind::ComponentDeleted | EventKind::ComponentLeft => ComponentState::Deleted,
            _ => return None,
        })
    }
}

/// One component of a bundle request.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentProgress {
    pub id: String,
    /// The catalog item it provisions.
    pub item: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    pub status: ComponentState,
    /// The JIRA issue a person fulfils it through, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// The last timeline entry about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The state of every component in `components`, from `events` (oldest first).
pub fn progress(components: &[Component], events: &[RequestEvent]) -> Vec<ComponentProgress> {
    // A request that ended never reaches the components still pending.
    let ended = events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Failed | EventKind::Rejected | EventKind::Cancelled
        )
    });
    components
        .iter()
        .map(|c| {
            let mut state = ComponentProgress {
                id: c.id.clone(),
                item: c.item.clone(),
                depends_on: c.depends_on.clone(),
                status: ComponentState::Pending,
                ticket: None,
                message: None,
            };
            for event in events {
                let Some(entry) = legacy::about(event, &c.id) else {
                    continue;
                };
                match ComponentState::after(event.kind) {
                    // The component failed because an outcome is unknown: that stays
                    // what it is, until a rollback settles it.
                    Some(ComponentState::Failed)
                        if state.status == ComponentState::OutcomeUnknown
                            && event.kind == EventKind::ComponentFailed => {}
                    Some(status) => state.status = status,
                    None => {}
                }
                if event.kind == EventKind::TicketCreated {
                    state.ticket = entry.ticket;
                }
                state.message = entry.message;
            }
            if ended && state.status == ComponentState::Pending {
                state.status = ComponentState::NotStarted;
            }
            state
        })
        .collect()
}

/// Entries stored before they named their component: the worker then labelled an
/// entry's message with `<id>: ` and a ticket's with `JIRA issue KEY opened: URL`. Read
/// as they are, they keep their requests' component graphs; entries of the typed
/// timeline are read from their fields alone.
mod legacy {
    use super::super::model::{RequestEvent, Ticket};

    /// What an entry says about component `id`, if it is about it.
    pub(super) struct Entry {
        pub message: Option<String>,
        pub ticket: Option<Ticket>,
    }

    pub(super) fn about(event: &RequestEvent, id: &str) -> Option<Entry> {
        match &event.component {
            Some(component) if component == id => Some(Entry {
                message: event
                    .message
                    .as_deref()
                    .map(|m| unlabelled(m, id).to_owned()),
                ticket: event.detail.ticket.clone(),
            }),
            Some(_) => None,
            // The typed timeline names the component of every entry that changes one's
            // state, and gives its failures and tickets their detail: an entry without
            // either is an old one only when its kind is about a component.
            None if !event.detail.is_empty()
                || super::ComponentState::after(event.kind).is_none() =>
            {
                None
            }
            None => {
                let message = event
                    .message
                    .as_deref()?
                    .strip_prefix(id)?
                    .strip_prefix(": ")?;
                Some(Entry {
                    message: Some(message.to_owned()),
                    ticket: ticket(message),
                })
            }
        }
    }

    /// A message without its component's label, for the component's row.
    fn unlabelled<'m>(message: &'m str, id: &str) -> &'m str {
        message
            .strip_prefix(id)
            .and_then(|m| m.strip_prefix(": "))
            .unwrap_or(message)
    }

    fn ticket(message: &str) -> Option<Ticket> {
        let rest = message.strip_prefix("JIRA issue ")?;
        let (key, url) = rest.split_once(" opened: ")?;
        Some(Ticket {
            key: key.to_owned(),
            url: url.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::model::{EventDetail, RequestId, RequestStatus};

    /// An entry as the worker wrote it before the typed timeline.
    fn event(kind: EventKind, message: &str) -> RequestEvent {
        RequestEvent {
            request_id: RequestId::new_at(time::OffsetDateTime::UNIX_EPOCH),
            seq: 1,
            at: time::OffsetDateTime::UNIX_EPOCH,
            actor: "worker".to_owned(),
            kind,
            status: RequestStatus::InProgress,
            component: None,
            message: Some(message.to_owned()),
            detail: Default::default(),
        }
    }

    /// An entry of the typed timeline.
    fn typed(
        kind: EventKind,
        component: Option<&str>,
        message: &str,
        detail: EventDetail,
    ) -> RequestEvent {
        RequestEvent {
            component: component.map(str::to_owned),
            detail,
            ..event(kind, message)
        }
    }

    #[test]
    fn each_component_takes_the_state_of_its_last_entry_whatever_its_message_says() {
        let components = [
            component("net", &[]),
            component("db", &["net"]),
            component("app", &[]),
        ];
        let ticket = Ticket {
            key: "OPS-7".to_owned(),
            url: "https://jira.example.com/browse/OPS-7".to_owned(),
        };
        let events = [
            typed(
                EventKind::ComponentStarted,
                Some("net"),
                "starting",
                EventDetail::default(),
            ),
            typed(
                EventKind::ComponentCompleted,
                Some("net"),
                "all good",
                EventDetail::default(),
            ),
            // Prose that reads like another component's label changes nothing.
            typed(
                EventKind::ComponentStarted,
                Some("db"),
                "app: provisioning",
                EventDetail::default(),
            ),
            typed(
                EventKind::TicketCreated,
                Some("db"),
                "a person takes over",
                EventDetail::ticket(ticket.clone()),
            ),
            typed(
                EventKind::Failed,
                None,
                "app: failed",
                EventDetail::cause("app: failed"),
            ),
        ];
        let states = progress(&components, &events);
        assert_eq!(states[0].status, ComponentState::Completed);
        assert_eq!(states[0].message.as_deref(), Some("all good"));
        assert_eq!(states[1].status, ComponentState::AwaitingFulfillment);
        assert_eq!(states[1].ticket, Some(ticket));
        // The request failed before it was reached.
        assert_eq!(states[2].status, ComponentState::NotStarted);
        assert_eq!(
            serde_json::to_value(&states[1]).unwrap()["status"],
            "awaiting_fulfillment"
        );
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
    fn a_component_whose_action_has_an_unknown_outcome_says_so_until_rolled_back() {
        let components = [component("db", &[])];
        let mut events = vec![
            typed(
                EventKind::ComponentStarted,
                Some("db"),
                "provisioning",
                EventDetail::default(),
            ),
            typed(
                EventKind::OutcomeUnknown,
                Some("db"),
                "action `create`: outcome unknown",
                EventDetail {
                    idempotency_key: Some("r/db/actions/create".to_owned()),
                    ..Default::default()
                },
            ),
            typed(
                EventKind::ComponentFailed,
                Some("db"),
                "failed",
                EventDetail::cause("x"),
            ),
        ];
        assert_eq!(
            progress(&components, &events)[0].status,
            ComponentState::OutcomeUnknown
        );
        events.push(typed(
            EventKind::ComponentRolledBack,
            Some("db"),
            "rolled back",
            EventDetail::default(),
        ));
        assert_eq!(
            progress(&components, &events)[0].status,
            ComponentState::RolledBack
        );
    }

    #[test]
    fn entries_stored_before_the_typed_timeline_are_read_by_their_labels() {
        let components = [
            component("net", &[]),
            component("db", &["net"]),
            component("app", &["db"]),
            component("db-replica", &["db"]),
        ];
        let events = [
            event(EventKind::ExecutionStarted, "provisioning 4 components"),
            event(EventKind::ComponentStarted, "net: provisioning `net-item`"),
            event(EventKind::ComponentCompleted, "net: completed with vpcId"),
            event(EventKind::ComponentStarted, "db: provisioning `db-item`"),
            event(
                EventKind::TicketCreated,
                "db: JIRA issue OPS-7 opened: https://jira.example.com/browse/OPS-7",
            ),
            event(
                EventKind::ComponentStarted,
                "db-replica: provisioning `db-replica-item`",
            ),
            event(
                EventKind::ComponentFailed,
                "db-replica: the API answered 500",
            ),
            event(EventKind::ComponentRolledBack, "net: rolled back"),
        ];
        let states = progress(&components, &events);
        let by_id = |id: &str| states.iter().find(|s| s.id == id).unwrap().clone();
        assert_eq!(by_id("net").status, ComponentState::RolledBack);
        assert_eq!(by_id("net").message.as_deref(), Some("rolled back"));
        let db = by_id("db");
        assert_eq!(db.status, ComponentState::AwaitingFulfillment);
        assert_eq!(
            db.ticket,
            Some(Ticket {
                key: "OPS-7".to_owned(),
                url: "https://jira.example.com/browse/OPS-7".to_owned()
            })
        );
        assert_eq!(db.depends_on, vec!["net".to_owned()]);
        // `db: ` is not a prefix of `db-replica: `'s entries, nor the other way round.
        assert_eq!(by_id("db-replica").status, ComponentState::Failed);
        assert_eq!(by_id("app").status, ComponentState::Pending);
        assert_eq!(by_id("app").message, None);
    }
}
