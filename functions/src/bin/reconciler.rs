//! The reconciler Lambda: on its EventBridge schedule, re-enqueues requests that lost
//! their queue message and enqueues every provisioned resource, in batches, for the
//! worker to verify against its target.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment =
        std::sync::Arc::new(orchestrator_functions::Deployment::from_lambda_environment().await?);
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        let deployment = deployment.clone();
        async move { orchestrator_functions::schedule::handle(&deployment, event).await }
    }))
    .await
}
