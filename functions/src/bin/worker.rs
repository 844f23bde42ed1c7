//! The worker Lambda: batches of the action queue (SQS event source with partial batch
//! responses).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment =
        std::sync::Arc::new(orchestrator_functions::Deployment::from_lambda_environment().await?);
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        let deployment = deployment.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(
                orchestrator_functions::worker::handle(&deployment, event).await,
            )
        }
    }))
    .await
}
