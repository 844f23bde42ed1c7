//! A CloudFormation stand-in for what moto lacks: drift detection, and change sets whose
//! resource changes reflect parameters. It speaks the query protocol the SDK uses (a
//! form-encoded `Action=...` body, XML answers in the shapes of the CloudFormation API
//! Reference) and checks each request carries what the reference requires of it.
//!
//! It holds one stack, which exists once `CreateStack` was called; its bucket's
//! versioning was turned off by hand, so drift detection finds it drifted. Started with
//! [`start_failing`], the stack's bucket fails to create and the stack rolls back, as
//! moto never does (it refuses `CreateStack` itself).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const NAMESPACE: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";

/// The stand-in's state, shared with the test.
#[derive(Default)]
pub struct Stack {
    created: AtomicBool,
    fails: AtomicBool,
    detection_checks: AtomicU32,
    /// Every call, in order: the action and its parameters.
    pub calls: Mutex<Vec<(String, BTreeMap<String, String>)>>,
}

impl Stack {
    /// The names of the calls made, in order.
    pub fn actions(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }
}

/// The form body's parameters.
fn form(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body).replace('+', " ");
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn answer(action: &str, result: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml")
        .set_body_string(format!(
            "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>standin</RequestId></ResponseMetadata></{action}Response>"
        ))
}

fn refuse(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "text/xml")
        .set_body_string(format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>standin</RequestId></ErrorResponse>"
        ))
}

const STACK_ID: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/standin/1";

struct Responder(std::sync::Arc<Stack>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let params = form(&request.body);
        let action = params.get("Action").cloned().unwrap_or_default();
        if params.get("Version").map(String::as_str) != Some("2010-05-15") {
            return refuse(400, "MissingParameter", "Version 2010-05-15 is required");
        }
        self.0
            .calls
            .lock()
            .unwrap()
            .push((action.clone(), params.clone()));
        let stack = params.get("StackName").cloned().unwrap_or_default();
        let required: &[&str] = match action.as_str() {
            "DescribeStacks" => &["StackName"],
            "CreateStack" => &["StackName", "TemplateBody", "ClientRequestToken"],
            "CreateChangeSet" => &["StackName", "ChangeSetName", "TemplateBody"],
            "DescribeChangeSet" | "DeleteChangeSet" => &["StackName", "ChangeSetName"],
            "DetectStackDrift" | "DeleteStack" => &["StackName"],
            "DescribeStackDriftDetectionStatus" => &["StackDriftDetectionId"],
            "DescribeStackResourceDrifts" => &["StackName"],
            "DescribeStackEvents" => &["StackName"],
            _ => return refuse(400, "InvalidAction", &format!("{action} is not stood in")),
        };
        if let Some(missing) = required.iter().find(|n| !params.contains_key(**n)) {
            return refuse(400, "ValidationError", &format!("{missing} is required"));
        }
        match action.as_str() {
            "DescribeStacks" if !self.0.created.load(Ordering::SeqCst) => refuse(
                400,
                "ValidationError",
                &format!("Stack with id {stack} does not exist"),
            ),
            "DescribeStacks" if self.0.fails.load(Ordering::SeqCst) => answer(
                &action,
                &format!(
                    "<Stacks><member><StackName>{stack}</StackName><StackId>{STACK_ID}</StackId>\
                     <CreationTime>2026-12-07T10:00:00Z</CreationTime>\
                     <StackStatus>ROLLBACK_COMPLETE</StackStatus>\
                     <StackStatusReason>The following resource(s) failed to create: [Bucket]. \
                     Rollback requested by user.</StackStatusReason></member></Stacks>"
                ),
            ),
            "DescribeStackEvents" => answer(&action, &events(&stack)),
            "DescribeStacks" => answer(
                &action,
                &format!(
                    "<Stacks><member><StackName>{stack}</StackName><StackId>{STACK_ID}</StackId>\
                     <CreationTime>2026-12-07T10:00:00Z</CreationTime>\
                     <StackStatus>CREATE_COMPLETE</StackStatus>\
                     <Outputs><member><OutputKey>BucketArn</OutputKey>\
                     <OutputValue>arn:aws:s3:::standin-bucket</OutputValue></member></Outputs>\
                     </member></Stacks>"
                ),
            ),
            "CreateStack" => {
                self.0.created.store(true, Ordering::SeqCst);
                answer(&action, &format!("<StackId>{STACK_ID}</StackId>"))
            }
            "CreateChangeSet" => answer(
                &action,
                &format!(
                    "<Id>arn:aws:cloudformation:eu-west-1:123456789012:changeSet/{}/1</Id>\
                     <StackId>{STACK_ID}</StackId>",
                    params["ChangeSetName"]
                ),
            ),
            "DescribeChangeSet" => answer(
                &action,
                &format!(
                    "<ChangeSetName>{}</ChangeSetName><StackName>{stack}</StackName>\
                     <StackId>{STACK_ID}</StackId><Status>CREATE_COMPLETE</Status>\
                     <ExecutionStatus>AVAILABLE</ExecutionStatus>\
                     <Changes><member><Type>Resource</Type><ResourceChange>\
                     <Action>Modify</Action><LogicalResourceId>Bucket</LogicalResourceId>\
                     <PhysicalResourceId>standin-bucket</PhysicalResourceId>\
                     <ResourceType>AWS::S3::Bucket</ResourceType><Replacement>True</Replacement>\
                     <Scope><member>Properties</member></Scope>\
                     <Details><member><Target><Attribute>Properties</Attribute>\
                     <Name>BucketName</Name><RequiresRecreation>Always</RequiresRecreation>\
                     </Target><Evaluation>Static</Evaluation>\
                     <ChangeSource>DirectModification</ChangeSource></member></Details>\
                     </ResourceChange></member></Changes>",
                    params["ChangeSetName"]
                ),
            ),
            "DeleteChangeSet" => answer(&action, ""),
            // The stack is gone; made again, it no longer fails.
            "DeleteStack" => {
                self.0.created.store(false, Ordering::SeqCst);
                self.0.fails.store(false, Ordering::SeqCst);
                answer(&action, "")
            }
            "DetectStackDrift" => answer(
                &action,
                "<StackDriftDetectionId>b78ac9b0-dec1-11e8-a451-503f3157b0d1</StackDriftDetectionId>",
            ),
            "DescribeStackDriftDetectionStatus" => {
                // The first look finds it still running.
                let status = if self.0.detection_checks.fetch_add(1, Ordering::SeqCst) == 0 {
                    "<DetectionStatus>DETECTION_IN_PROGRESS</DetectionStatus>"
                } else {
                    "<DetectionStatus>DETECTION_COMPLETE</DetectionStatus>\
                     <StackDriftStatus>DRIFTED</StackDriftStatus>\
                     <DriftedStackResourceCount>1</DriftedStackResourceCount>"
                };
                answer(
                    &action,
                    &format!(
                        "<StackId>{STACK_ID}</StackId><StackDriftDetectionId>{}</StackDriftDetectionId>\
                         {status}<Timestamp>2026-12-07T10:05:00Z</Timestamp>",
                        params["StackDriftDetectionId"]
                    ),
                )
            }
            "DescribeStackResourceDrifts" => {
                // Only drifted resources are asked for.
                let filters: Vec<&str> = params
                    .iter()
                    .filter(|(k, _)| k.starts_with("StackResourceDriftStatusFilters.member."))
                    .map(|(_, v)| v.as_str())
                    .collect();
                if !filters.contains(&"MODIFIED") || filters.contains(&"IN_SYNC") {
                    return refuse(400, "ValidationError", "expected drifted resources only");
                }
                answer(
                    &action,
                    &format!(
                        "<StackResourceDrifts><member><StackId>{STACK_ID}</StackId>\
                         <LogicalResourceId>Bucket</LogicalResourceId>\
                         <PhysicalResourceId>standin-bucket</PhysicalResourceId>\
                         <ResourceType>AWS::S3::Bucket</ResourceType>\
                         <ExpectedProperties>{{\"VersioningConfiguration\":{{\"Status\":\"Enabled\"}}}}</ExpectedProperties>\
                         <ActualProperties>{{\"VersioningConfiguration\":{{\"Status\":\"Suspended\"}}}}</ActualProperties>\
                         <PropertyDifferences><member>\
                         <PropertyPath>/VersioningConfiguration/Status</PropertyPath>\
                         <ExpectedValue>Enabled</ExpectedValue><ActualValue>Suspended</ActualValue>\
                         <DifferenceType>NOT_EQUAL</DifferenceType></member></PropertyDifferences>\
                         <StackResourceDriftStatus>MODIFIED</StackResourceDriftStatus>\
                         <Timestamp>2026-12-07T10:05:00Z</Timestamp></member></StackResourceDrifts>"
                    ),
                )
            }
            _ => refuse(400, "InvalidAction", &action),
        }
    }
}

/// The failing stack's events, newest first as CloudFormation lists them, stamped now.
fn events(stack: &str) -> String {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let history = [
        (stack, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", ""),
        ("Bucket", "AWS::S3::Bucket", "DELETE_COMPLETE", ""),
        (
            stack,
            "AWS::CloudFormation::Stack",
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [Bucket].",
        ),
        (
            "Bucket",
            "AWS::S3::Bucket",
            "CREATE_FAILED",
            "standin-bucket already exists",
        ),
        ("Bucket", "AWS::S3::Bucket", "CREATE_IN_PROGRESS", ""),
        (
            stack,
            "AWS::CloudFormation::Stack",
            "CREATE_IN_PROGRESS",
            "User Initiated",
        ),
    ];
    let members: String = history
        .iter()
        .enumerate()
        .map(|(i, (id, kind, status, reason))| {
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!("<ResourceStatusReason>{reason}</ResourceStatusReason>")
            };
            format!(
                "<member><StackId>{STACK_ID}</StackId><EventId>event-{}</EventId>\
                 <StackName>{stack}</StackName><LogicalResourceId>{id}</LogicalResourceId>\
                 <ResourceType>{kind}</ResourceType><Timestamp>{now}</Timestamp>\
                 <ResourceStatus>{status}</ResourceStatus>{reason}</member>",
                history.len() - i
            )
        })
        .collect();
    format!("<StackEvents>{members}</StackEvents>")
}

/// Starts the stand-in; point an SDK configuration's endpoint at its URI.
pub async fn start() -> (MockServer, std::sync::Arc<Stack>) {
    start_with(Stack::default()).await
}

/// The stand-in whose stack fails: its bucket cannot be created, and it rolls back.
pub async fn start_failing() -> (MockServer, std::sync::Arc<Stack>) {
    let stack = Stack::default();
    stack.fails.store(true, Ordering::SeqCst);
    start_with(stack).await
}

async fn start_with(stack: Stack) -> (MockServer, std::sync::Arc<Stack>) {
    let server = MockServer::start().await;
    let stack = std::sync::Arc::new(stack);
    Mock::given(method("POST"))
        .respond_with(Responder(stack.clone()))
        .mount(&server)
        .await;
    (server, stack)
}
