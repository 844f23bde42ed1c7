//! The reconciler Lambda: on its EventBridge schedule, verifies every provisioned
//! resource against its target and re-enqueues requests that lost their queue message.

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
