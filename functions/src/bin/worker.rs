//! The worker Lambda: batches of the action queue (SQS event source with partial batch
//! responses).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = orchestrator_functions::Deployment::from_lambda_environment().await?;
    let worker = deployment.assembly.worker.clone();
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        let worker = worker.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(
                orchestrator_functions::worker::handle(&worker, event).await,
            )
        }
    }))
    .await
}
