//! `operation: detect-drift`: CloudFormation's drift detection of a stack
//! (`DetectStackDrift`, followed with `DescribeStackDriftDetectionStatus`), then the
//! resources that drifted with their property differences (`DescribeStackResourceDrifts`).
//! The answer names each drifted resource; [`reported`] turns it into the resource's
//! drift, one entry per property, which the verifier adds to its report.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{StackDriftDetectionStatus, StackResourceDriftStatus};
use serde_json::{Value, json};
use shared::fulfillment::actions::{ActionError, ReportedDrift};

use super::super::aws_error;

/// How often a detection's status is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The longest a detection is waited for: CloudFormation takes seconds for most
/// stacks, minutes for the largest.
const DETECT_WITHIN: Duration = Duration::from_secs(300);

/// A property value as CloudFormation reports it (JSON text, or plain text).
fn value_of(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())),
    }
}

/// Detects the drift of `stack`, waiting for the detection up to `within` (at least a
/// few minutes), and answers `{stackName, driftStatus, drifted: [...]}`.
pub(super) async fn detect(
    client: &Client,
    stack: &str,
    within: Duration,
) -> Result<Value, ActionError> {
    if super::find(client, stack).await?.is_none() {
        return Ok(json!({"stackName": stack, "driftStatus": "DELETED", "drifted": []}));
    }
    let started = client
        .detect_stack_drift()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| aws_error("DetectStackDrift", &e))?;
    let id = started.stack_drift_detection_id().unwrap_or_default();
    let until = Instant::now() + within.max(DETECT_WITHIN);
    let status = loop {
        let status = client
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeStackDriftDetectionStatus", &e))?;
        match status.detection_status() {
            Some(StackDriftDetectionStatus::DetectionInProgress) | None => {
                if Instant::now() > until {
                    return Err(ActionError::retryable(format!(
                        "the drift detection of stack {stack} ({id}) has not finished"
                    )));
                }
                tokio::time::sleep(CHECK_EVERY).await;
            }
            // A failed detection still has the results of the resources it could check.
            Some(_) => break status,
        }
    };
    let mut drifted = Vec::new();
    let mut next = None;
    loop {
        let page = client
            .describe_stack_resource_drifts()
            .stack_name(stack)
            .stack_resource_drift_status_filters(StackResourceDriftStatus::Modified)
            .stack_resource_drift_status_filters(StackResourceDriftStatus::Deleted)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| aws_error("DescribeStackResourceDrifts", &e))?;
        for resource in page.stack_resource_drifts() {
            let differences: Vec<Value> = resource
                .property_differences()
                .iter()
                .map(|d| {
                    json!({
                        "path": d.property_path(),
                        "expected": value_of(d.expected_value()),
                        "actual": value_of(d.actual_value()),
                        "difference": d.difference_type().map(|t| t.as_str()),
                    })
                })
                .collect();
            drifted.push(json!({
                "logicalId": resource.logical_resource_id(),
                "physicalId": resource.physical_resource_id(),
                "type": resource.resource_type(),
                "status": resource.stack_resource_drift_status().map(|s| s.as_str()),
                "differences": differences,
            }));
        }
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    Ok(json!({
        "stackName": stack,
        "driftStatus": status.stack_drift_status().map(|s| s.as_str()),
        "detectionStatus": status.detection_status().map(|s| s.as_str()),
        "detectionStatusReason": status.detection_status_reason(),
        "drifted": drifted,
    }))
}

/// The drift a detection's answer reports: each property that differs
/// (`Bucket/VersioningConfiguration/Status`), each resource deleted, or the stack itself
/// when it is gone.
pub(super) fn reported(document: &Value) -> Vec<ReportedDrift> {
    let stack = document["stackName"].as_str().unwrap_or("stack");
    if document["driftStatus"] == "DELETED" {
        return vec![ReportedDrift {
            attribute: format!("stack {stack}"),
            expected: Value::String("exists".to_owned()),
            actual: Value::Null,
        }];
    }
    let mut found = Vec::new();
    for resource in document["drifted"].as_array().into_iter().flatten() {
        let id = resource["logicalId"].as_str().unwrap_or("?");
        if resource["status"] == "DELETED" {
            found.push(ReportedDrift {
                attribute: id.to_owned(),
                expected: resource["type"].clone(),
                actual: Value::Null,
            });
            continue;
        }
        for difference in resource["differences"].as_array().into_iter().flatten() {
            found.push(ReportedDrift {
                attribute: format!("{id}{}", difference["path"].as_str().unwrap_or_default()),
                expected: difference["expected"].clone(),
                actual: difference["actual"].clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_drifted_property_and_deleted_resource_is_reported() {
        let document = json!({
            "stackName": "s",
            "driftStatus": "DRIFTED",
            "drifted": [
                {"logicalId": "Bucket", "type": "AWS::S3::Bucket", "status": "MODIFIED",
                 "differences": [
                    {"path": "/VersioningConfiguration/Status", "expected": "Enabled",
                     "actual": "Suspended", "difference": "NOT_EQUAL"},
                    {"path": "/Tags/1", "expected": null, "actual": {"Key": "x", "Value": "y"},
                     "difference": "ADD"}]},
                {"logicalId": "Queue", "type": "AWS::SQS::Queue", "status": "DELETED",
                 "differences": []}
            ]
        });
        let found = reported(&document);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].attribute, "Bucket/VersioningConfiguration/Status");
        assert_eq!(found[0].expected, "Enabled");
        assert_eq!(found[0].actual, "Suspended");
        assert_eq!(found[1].expected, Value::Null);
        assert_eq!(found[2].attribute, "Queue");
        assert_eq!(found[2].actual, Value::Null);
        let gone = reported(&json!({"stackName": "s", "driftStatus": "DELETED"}));
        assert_eq!(gone[0].attribute, "stack s");
    }

    #[test]
    fn property_values_are_read_as_json_when_they_are() {
        assert_eq!(value_of(Some("20")), json!(20));
        assert_eq!(value_of(Some("[\"a\"]")), json!(["a"]));
        assert_eq!(value_of(Some("Enabled")), json!("Enabled"));
        assert_eq!(value_of(None), Value::Null);
    }
}
