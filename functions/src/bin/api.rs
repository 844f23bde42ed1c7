//! The api Lambda: the HTTP API (and the JIRA webhook) behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orchestrator_functions::api::serve().await
}
