//! Retention: audit entries and ended requests' timelines older than their configured
//! number of days are exported (JSON Lines, to the [`Archive`]: a directory in local
//! mode, S3 on AWS) and only then removed. With an archive configured nothing is removed
//! that was not exported first: an export that fails stops the step before anything is
//! removed, and the next step starts again from what is left.
//!
//! - Audit entries go a batch at a time: the oldest the log gives, written as one file
//!   `audit/<yyyy>/<mm>/<dd>/<first id>_<last id>.jsonl` (one entry a line), then removed.
//! - A timeline goes with its request: each line of `timelines/<yyyy>/<mm>/<dd>/<first
//!   id>_<last id>.jsonl` is `{"request": …, "events": […]}`, and the timeline is then
//!   replaced by one `timeline_archived` event naming the export (`detail.archive`). The
//!   request itself (status, fields, outputs) stays. Requests are taken by the time they
//!   were made: an ended request made more than `timelineDays` ago. The window already
//!   done is kept in the state store (table `retention`), so each step reads only what
//!   came of age since; a request made before the window that had not ended by then keeps
//!   its timeline.
//!
//! Each step does a bounded amount of work; the next goes on.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::ports::{Archive, AuditLog, Clock, RequestQuery, RequestStore, StateStore, StoreError};
use crate::requests::model::{EventDetail, EventKind, Request, RequestEvent, RequestStatus};

/// Audit entries exported and removed at a time.
const AUDIT_BATCH: usize = 1000;
/// Requests whose timelines are exported at a time.
const TIMELINE_PAGE: usize = 100;
/// Batches one step handles at most.
const BATCHES_PER_STEP: usize = 50;
/// The state table of the timelines' window.
const TABLE: &str = "retention";

const ENDED: [RequestStatus; 4] = [
    RequestStatus::Completed,
    RequestStatus::Failed,
    RequestStatus::Rejected,
    RequestStatus::Cancelled,
];

pub struct Retention {
    pub requests: Arc<dyn RequestStore>,
    pub audit: Arc<dyn AuditLog>,
    pub state: Arc<dyn StateStore>,
    /// Where exports go; `None` removes without exporting.
    pub archive: Option<Arc<dyn Archive>>,
    pub clock: Arc<dyn Clock>,
    /// 0 keeps for ever.
    pub timeline_days: u32,
    pub audit_days: u32,
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionReport {
    pub audit_removed: usize,
    pub timelines_removed: usize,
    /// The exports written (keys of the archive).
    pub exports: Vec<String>,
    /// The step stopped at its bound with work left: the next may follow at once.
    pub more: bool,
}

/// The timelines' window: requests made in `[through, until)`, an ended status at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    /// Everything made before this is done.
    #[serde(with = "crate::timestamp")]
    through: OffsetDateTime,
    /// The end of the window under way (set when it starts).
    #[serde(default, with = "crate::timestamp::option")]
    until: Option<OffsetDateTime>,
    /// Which of [`ENDED`] is being read, and where its listing goes on.
    status: usize,
    #[serde(default)]
    cursor: Option<String>,
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 24 * 3600)
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("retention: {e}"))
}

/// One JSON document a line.
fn lines<T: Serialize>(records: &[T]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    for record in records {
        serde_json::to_writer(&mut out, record).map_err(corrupt)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// `<kind>/<yyyy>/<mm>/<dd>/<first>_<last>.jsonl`, dated by the first record.
fn export_key(kind: &str, at: OffsetDateTime, first: &str, last: &str) -> String {
    format!(
        "{kind}/{:04}/{:02}/{:02}/{first}_{last}.jsonl",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

#[derive(Serialize)]
struct TimelineLine<'a> {
    request: &'a Request,
    events: &'a [RequestEvent],
}

impl Retention {
    /// One step: audit entries, then timelines.
    pub async fn run_once(&self) -> Result<RetentionReport, StoreError> {
        let now = self.clock.now();
        let mut report = RetentionReport::default();
        if self.audit_days > 0 {
            self.audit_step(now - days(self.audit_days), &mut report)
                .await?;
        }
        if self.timeline_days > 0 {
            self.timeline_step(now - days(self.timeline_days), now, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Exports what `archive` keeps under `key`; `None` when exports are off.
    async fn export(&self, key: String, body: &[u8]) -> Result<Option<String>, StoreError> {
        match &self.archive {
            Some(archive) => {
                archive.put(&key, body).await?;
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    async fn audit_step(
        &self,
        cutoff: OffsetDateTime,
        report: &mut RetentionReport,
    ) -> Result<(), StoreError> {
        for batch in 0..=BATCHES_PER_STEP {
            let entries = self.audit.older_than(cutoff, AUDIT_BATCH).await?;
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
                break;
            };
            if batch == BATCHES_PER_STEP {
                report.more = true;
                break;
            }
            let key = export_key("audit", first.at, &first.id, &last.id);
            if let Some(key) = self.export(key, &lines(&entries)?).await? {
                report.exports.push(key);
            }
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            self.audit.remove(&ids).await?;
            report.audit_removed += ids.len();
        }
        Ok(())
    }

    async fn timeline_step(
        &self,
        cutoff: OffsetDateTime,
        now: OffsetDateTime,
        report: &mut RetentionReport,
    ) -> Result<(), StoreError> {
        let found = self.state.get(TABLE, "timelines").await?;
        let mut version = found.as_ref().map(|f| f.version);
        let mut window: Window = match found {
            Some(found) => serde_json::from_value(found.value).map_err(corrupt)?,
            None => Window {
                through: OffsetDateTime::UNIX_EPOCH,
                until: None,
                status: 0,
                cursor: None,
            },
        };
        for batch in 0..=BATCHES_PER_STEP {
            if batch == BATCHES_PER_STEP {
                report.more = true;
                break;
            }
            let until = *window.until.get_or_insert(cutoff);
            let Some(status) = ENDED.get(window.status).copied() else {
                // The window is done: the next starts where it ended.
                window = Window {
                    through: until,
                    until: None,
                    status: 0,
                    cursor: None,
                };
                version = self.save(&window, version).await?;
                if until >= cutoff {
                    break;
                }
                continue;
            };
            let page = self
                .requests
                .list(&RequestQuery {
                    status: Some(status),
                    created: Some(window.through..until),
                    cursor: window.cursor.clone(),
                    limit: TIMELINE_PAGE,
                    ..Default::default()
                })
                .await?;
            self.archive_timelines(&page.items, now, report).await?;
            match page.next {
                Some(cursor) => window.cursor = Some(cursor),
                None => {
                    window.status += 1;
                    window.cursor = None;
                }
            }
            version = self.save(&window, version).await?;
        }
        Ok(())
    }

    /// Records the window; a conflict means another step is at it, which is no error
    /// for this one's work (done again, it changes nothing).
    async fn save(&self, window: &Window, version: Option<u64>) -> Result<Option<u64>, StoreError> {
        let value = serde_json::to_value(window).map_err(corrupt)?;
        match self.state.put(TABLE, "timelines", &value, version).await {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::VersionConflict { .. }) => Err(StoreError::Unavailable(
                "another retention step moved the timelines' window".to_owned(),
            )),
            Err(e) => Err(e),
        }
    }

    /// Exports the timelines of `requests` not yet archived, as one file, then replaces
    /// each with its marker.
    async fn archive_timelines(
        &self,
        requests: &[Request],
        now: OffsetDateTime,
        report: &mut RetentionReport,
    ) -> Result<(), StoreError> {
        let mut timelines = Vec::new();
        for request in requests {
            let events = self.requests.events(&request.id).await?;
            match events.last() {
                None => {}
                // Archived before; what is left beside the marker (a replacement that
                // stopped half way) goes now, with the same marker.
                Some(last) if last.kind == EventKind::TimelineArchived && events.len() > 1 => {
                    self.requests.replace_timeline(&request.id, last).await?;
                }
                Some(last) if last.kind == EventKind::TimelineArchived => {}
                Some(_) => timelines.push((request, events)),
            }
        }
        let (Some((first, _)), Some((last, _))) = (timelines.first(), timelines.last()) else {
            return Ok(());
        };
        let key = export_key(
            "timelines",
            first.created_at,
            &first.id.to_string(),
            &last.id.to_string(),
        );
        let body: Vec<TimelineLine> = timelines
            .iter()
            .map(|(request, events)| TimelineLine { request, events })
            .collect();
        let exported = self.export(key, &lines(&body)?).await?;
        let location = self.archive.as_ref().map(|a| a.location());
        for (request, _) in &timelines {
            let marker = RequestEvent {
                request_id: request.id,
                seq: 0,
                at: now,
                actor: "retention".to_owned(),
                kind: EventKind::TimelineArchived,
                status: request.status,
                component: None,
                message: Some(match &exported {
                    Some(key) => format!(
                        "the timeline was exported to {key} and removed after {} days",
                        self.timeline_days
                    ),
                    None => format!("the timeline was removed after {} days", self.timeline_days),
                }),
                detail: EventDetail {
                    archive: exported.as_ref().map(|key| match &location {
                        Some(location) => format!("{}/{key}", location.trim_end_matches('/')),
                        None => key.clone(),
                    }),
                    ..Default::default()
                },
            };
            self.requests.replace_timeline(&request.id, &marker).await?;
            report.timelines_removed += 1;
        }
        report.exports.extend(exported);
        Ok(())
    }

    /// A step, logged: whether it left work for another at once.
    async fn run_once_logged(&self) -> bool {
        match self.run_once().await {
            Ok(report) => {
                if report.audit_removed + report.timelines_removed > 0 {
                    tracing::info!(
                        audit = report.audit_removed,
                        timelines = report.timelines_removed,
                        exports = report.exports.len(),
                        "retention removed what was past its time"
                    );
                }
                report.more
            }
            Err(e) => {
                tracing::warn!(error = %e, "the retention step stopped; nothing unexported was removed");
                false
            }
        }
    }

    /// Takes a step at once and then every `every` (at once again while steps leave work)
    /// until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = match self.run_once_logged().await {
                true => Duration::ZERO,
                false => every,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
            }
        }
    }
}
