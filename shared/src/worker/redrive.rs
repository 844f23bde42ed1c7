//! Redriving a paused request: an admin resumes a bundle that stopped at a failed
//! component (`onFailure: pause`). The failed actions are forgotten so they run again (with
//! the same `Idempotency-Key`), the request goes back to `in_progress`, and its execution
//! is redriven: Step Functions' RedriveExecution on AWS, the local runner's equivalent in
//! local mode. Completed components, and the actions that succeeded in the failed one,
//! are not run again.

use super::Worker;
use crate::access::Principal;
use crate::bundle::asl::machine_name_of;
use crate::ports::{StoreError, WorkflowError};
use crate::requests::model::{EventKind, Request, RequestId, RequestStatus, Transition};
use crate::requests::service::RequestError;

impl Worker {
    /// Resumes the paused request `id` from its failed component (admins only).
    pub async fn redrive(&self, who: &Principal, id: RequestId) -> Result<Request, RequestError> {
        if !self.requests.roles.is_admin(who) {
            return Err(RequestError::Forbidden(
                "redriving a request is for admins".to_owned(),
            ));
        }
        let request = self.requests.get(who, id).await?;
        if request.status != RequestStatus::Paused {
            return Err(RequestError::InvalidTransition {
                status: request.status,
                next: RequestStatus::InProgress,
            });
        }
        let paused_at = self.paused_component(&request).await?;
        let forgotten = self.engine.forget_failures(request.id).await?;
        let mut resume = Transition::to(RequestStatus::InProgress, &who.sub);
        resume.kind = Some(EventKind::Redriven);
        resume.message = Some(match &paused_at {
            Some(component) => format!(
                "redriven by {}: resuming from `{component}` ({} failed action{} to run again)",
                who.sub,
                forgotten.len(),
                if forgotten.len() == 1 { "" } else { "s" }
            ),
            None => format!("redriven by {}", who.sub),
        });
        resume.component = paused_at;
        let resumed = self
            .requests
            .apply(request.id, resume.from(request.clone()))
            .await?;
        let machine = machine_name_of(request.kind, &request.target);
        let arn = self
            .workflows
            .execution_arn(&machine, &request.id.to_string());
        match self.workflows.redrive(&arn).await {
            Ok(()) => Ok(resumed),
            Err(e) => {
                // The execution did not resume: the request is paused again, saying why.
                let why = format!("the redrive failed: {e}");
                tracing::warn!(error = %e, "redrive failed");
                let mut back = Transition::ended(RequestStatus::Paused, "worker", why.clone());
                back.kind = Some(EventKind::Paused);
                self.requests.apply(request.id, back).await?;
                Err(match e {
                    WorkflowError::Store(e) => e.into(),
                    WorkflowError::NotRedrivable(_) | WorkflowError::NoSuchExecution(_) => {
                        RequestError::InvalidTransition {
                            status: RequestStatus::Paused,
                            next: RequestStatus::InProgress,
                        }
                    }
                    other => StoreError::Unavailable(other.to_string()).into(),
                })
            }
        }
    }

    /// The component the request paused at, from its last `paused` entry.
    async fn paused_component(&self, request: &Request) -> Result<Option<String>, StoreError> {
        let events = self.requests.store.events(&request.id).await?;
        Ok(events
            .iter()
            .rev()
            .find(|e| e.kind == EventKind::Paused)
            .and_then(|e| e.component.clone()))
    }
}
