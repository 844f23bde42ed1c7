//! The worker Lambda's handler: a batch of the action queue from the SQS event source.
//! Each message is handled and settled as local mode's worker does (deleted when done,
//! replaced by a delayed copy to wait, hidden for a while to retry); the messages left on
//! the queue to come back are reported as the batch's failures, so Lambda deletes only
//! the others (`ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use shared::ports::Message;

use crate::Deployment;

/// The queue message an SQS event record is.
fn message(record: &aws_lambda_events::event::sqs::SqsMessage) -> Option<Message> {
    Some(Message {
        id: record.message_id.clone()?,
        receipt: record.receipt_handle.clone()?,
        body: record.body.clone().unwrap_or_default(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
    })
}

/// Handles a batch on the catalog version live now: one read per batch, so a request for
/// an item ingestion just added never meets a worker that has not heard of it.
pub async fn handle(deployment: &Deployment, event: LambdaEvent<SqsEvent>) -> SqsBatchResponse {
    deployment.refresh_environment_when_due().await;
    if let Err(e) = deployment.refresh_catalog().await {
        tracing::warn!(error = %e, "could not look at the live catalog version; working on the one in hand");
    }
    let worker = &deployment.assembly.worker;
    let mut response = SqsBatchResponse::default();
    let mut batch = Vec::new();
    for record in &event.payload.records {
        match message(record) {
            Some(m) => batch.push(m),
            // Without an id or a receipt nothing can be settled or reported.
            None => tracing::error!("an SQS record without a message id or receipt handle"),
        }
    }
    for id in worker.process_batch(batch).await {
        response.add_failure(id);
    }
    response
}
