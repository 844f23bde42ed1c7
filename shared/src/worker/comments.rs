//! Comments on a request: from its requester, its owning team, its approvers and admins,
//! on its timeline; on a request a person fulfils, also on its JIRA issues. Comments
//! made in JIRA come back onto the timeline (`comment_created`), except the
//! orchestrator's own.

use serde::Serialize;
use utoipa::ToSchema;

use super::Worker;
use super::jira::{COMPONENT_TICKETS, ComponentTicket};
use crate::access::Principal;
use crate::ports::StoreError;
use crate::requests::model::{EventDetail, EventKind, Note, Request, RequestId, Ticket};
use crate::requests::service::RequestError;

/// How a comment the orchestrator adds to a JIRA issue starts: a JIRA comment that
/// starts so is its own, coming back, and is not noted twice.
pub const FROM_PORTAL: &str = "[from the developer portal]";

/// The longest comment.
pub const MAX_COMMENT: usize = 5_000;

/// A JIRA issue the comment went to.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Copied {
    pub key: String,
    pub added: bool,
    /// Why it could not be added (JIRA unavailable or refusing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Worker {
    /// Comments on request `id` as `who` (who must be its requester, a member of its
    /// owning team, one of its approvers or an admin).
    pub async fn comment(
        &self,
        who: &Principal,
        id: RequestId,
        text: &str,
    ) -> Result<Vec<Copied>, RequestError> {
        let request = self.participant(who, id).await?;
        let note = Note::new(EventKind::Comment, text.to_owned());
        self.requests
            .annotate(request.id, &who.sub, vec![note])
            .await?;
        let mut copied = Vec::new();
        if let Some(jira) = &self.jira {
            for ticket in self.tickets(&request).await? {
                let body = format!("{FROM_PORTAL} {}: {text}", who.sub);
                let result = jira.add_comment(&ticket.key, &body).await;
                copied.push(Copied {
                    key: ticket.key,
                    added: result.is_ok(),
                    error: result.err().map(|e| e.to_string()),
                });
            }
        }
        Ok(copied)
    }

    /// The request, if `who` may comment on it; otherwise it does not exist for them.
    async fn participant(&self, who: &Principal, id: RequestId) -> Result<Request, RequestError> {
        let request = self
            .requests
            .store
            .get(&id)
            .await?
            .ok_or_else(|| RequestError::NotFound(id.to_string()))?;
        let roles = &self.requests.roles;
        if roles.may_see(who, &request.requester.sub, &request.owner) {
            return Ok(request);
        }
        let approver = self
            .approvals
            .of_request(request.id)
            .await?
            .iter()
            .any(|a| a.may_decide(roles, who) || a.decisions.iter().any(|d| d.by == who.sub));
        if approver {
            Ok(request)
        } else {
            Err(RequestError::NotFound(id.to_string()))
        }
    }

    /// The JIRA issues of a request: its own, and its components' (from the timeline).
    async fn tickets(&self, request: &Request) -> Result<Vec<Ticket>, StoreError> {
        let mut tickets: Vec<Ticket> = request.ticket.iter().cloned().collect();
        for event in self.requests.store.events(&request.id).await? {
            if event.kind == EventKind::TicketCreated
                && let Some(ticket) = event.detail.ticket
                && !tickets.iter().any(|t| t.key == ticket.key)
            {
                tickets.push(ticket);
            }
        }
        Ok(tickets)
    }

    /// A comment made in JIRA on issue `key`, by `author`: onto its request's timeline
    /// (the orchestrator's own comments excepted).
    pub async fn jira_comment(
        &self,
        key: &str,
        author: &str,
        body: &str,
    ) -> Result<(), RequestError> {
        if body.trim_start().starts_with(FROM_PORTAL) {
            return Ok(());
        }
        let request_id = match self.engine.state.get(COMPONENT_TICKETS, key).await? {
            Some(found) => {
                let waiting: ComponentTicket = serde_json::from_value(found.value)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                waiting.request_id
            }
            None => match self.requests.store.find_by_ticket(key).await? {
                Some(request) => request.id,
                None => return Ok(()),
            },
        };
        let text: String = body.chars().take(MAX_COMMENT).collect();
        let note = Note::new(EventKind::Comment, format!("{author} on {key}: {text}")).with(
            EventDetail::ticket(Ticket {
                key: key.to_owned(),
                url: self
                    .jira
                    .as_ref()
                    .map(|j| j.browse_url(key))
                    .unwrap_or_default(),
            }),
        );
        self.requests
            .annotate(request_id, &format!("jira:{author}"), vec![note])
            .await
    }
}
