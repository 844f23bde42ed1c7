//! The ingest Lambda: GitHub's push webhook (`POST /webhooks/github`), which validates a
//! catalog version, makes it live and deploys its state machines. The same router as the
//! api Lambda; API Gateway sends it only the webhook, and only its role may change state
//! machines.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orchestrator_functions::api::serve().await
}
