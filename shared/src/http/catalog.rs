//! `GET /catalog/...`: what can be requested, with the forms to request it.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::cursor::PageFilter;
use super::problem::{Problem, QueryParams, page_limit};
use crate::access::Principal;
use crate::access::Roles;
use crate::catalog::document::{Lifecycle, Metadata, Mode, Presentation};
use crate::catalog::form;
use crate::catalog::listing::{Facets, Filter};
use crate::catalog::snapshot::{CatalogSnapshot, TargetRef};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogFilter {
    category: Option<String>,
    tag: Option<String>,
    owner: Option<String>,
    /// Free text, matched case-insensitively in name, title, description and tags.
    q: Option<String>,
    /// The `next` of the previous page; valid only with that page's filters.
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// The largest page of a catalog list.
const MAX_PAGE: usize = 500;
/// A catalog list's page when the caller names none.
const DEFAULT_PAGE: usize = 100;

impl CatalogFilter {
    /// The filter, where the page starts and its size; `list` names the list the
    /// cursor must come from.
    fn read(self, list: &str) -> Result<(Filter, PageFilter, Option<String>, usize), Problem> {
        let pages = PageFilter::new(list)
            .with("category", self.category.as_deref())
            .with("tag", self.tag.as_deref())
            .with("owner", self.owner.as_deref())
            .with("q", self.q.as_deref());
        let after = pages.read(self.cursor.as_deref())?;
        let limit = match self.limit {
            None => DEFAULT_PAGE,
            limit => page_limit(limit, MAX_PAGE)?,
        };
        let filter = Filter {
            category: self.category,
            owner: self.owner,
            tag: self.tag,
            text: self.q,
        };
        Ok((filter, pages, after, limit))
    }
}

fn requestable(roles: &Roles, who: &Principal, m: &Metadata) -> bool {
    m.access_groups.is_empty()
        || roles.is_admin(who)
        || who.groups.iter().any(|g| m.access_groups.contains(g))
}

/// A catalog entry in a list, serialized straight from the documents (lists are the
/// hottest read of the API).
#[derive(Serialize, ToSchema)]
pub struct Summary<'a> {
    kind: &'static str,
    name: &'a str,
    title: &'a str,
    description: &'a str,
    owner: &'a str,
    category: &'a str,
    tags: &'a [String],
    #[schema(value_type = String)]
    lifecycle: Lifecycle,
    /// Whether the caller may request it: its access groups let them, and it is not
    /// deprecated.
    requestable: bool,
    /// What to request instead of a deprecated one.
    #[serde(rename = "replacedBy", skip_serializing_if = "Option::is_none")]
    #[schema(rename = "replacedBy")]
    replaced_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    mode: Option<Mode>,
}

impl<'a> Summary<'a> {
    fn new(
        m: &'a Metadata,
        kind: &'static str,
        roles: &Roles,
        who: &Principal,
        mode: Option<Mode>,
    ) -> Self {
        Summary {
            kind,
            name: &m.name,
            title: &m.title,
            description: &m.description,
            owner: &m.owner,
            category: &m.category,
            tags: &m.tags,
            lifecycle: m.lifecycle,
            requestable: requestable(roles, who, m) && m.lifecycle != Lifecycle::Deprecated,
            replaced_by: m.replaced_by.as_deref(),
            mode,
        }
    }
}

/// A page of a catalog list, in name order; `next` is the cursor of the following page.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listing<'a> {
    catalog_version: &'a str,
    items: Vec<Summary<'a>>,
    next: Option<String>,
}

/// What the detail of an item and of a bundle share: the summary, links, access groups,
/// the form and the catalog version.
fn detail(
    m: &Metadata,
    kind: &'static str,
    presentation: &Presentation,
    version: &str,
    roles: &Roles,
    who: &Principal,
) -> Value {
    let mut body =
        serde_json::to_value(Summary::new(m, kind, roles, who, None)).unwrap_or(Value::Null);
    body["links"] = json!(m.links);
    body["accessGroups"] = json!(m.access_groups);
    body["form"] = form::render(&m.title, &m.description, presentation);
    body["catalogVersion"] = json!(version);
    body
}

/// Where to go instead of a deprecated item or bundle: `{kind, name}` of what replaces
/// it, or null.
fn replacement(snapshot: &CatalogSnapshot, m: &Metadata) -> Value {
    let Some(name) = &m.replaced_by else {
        return Value::Null;
    };
    match snapshot.target(name) {
        Some(TargetRef::Item(_)) => json!({"kind": "item", "name": name}),
        Some(TargetRef::Bundle(_)) => json!({"kind": "bundle", "name": name}),
        None => Value::Null,
    }
}

/// How many resources of item `name` the caller may see, and how many of them an older
/// definition of the item made: `{counted, outdated, more}` (`more`: past the
/// [`COUNTED`] it reads, there are others).
async fn resource_versions(
    state: &AppState,
    who: &Principal,
    snapshot: &CatalogSnapshot,
    name: &str,
    owner: &str,
) -> Result<Value, Problem> {
    let roles = &state.requests.roles;
    let mut query = crate::ports::ResourceQuery {
        item: Some(name.to_owned()),
        limit: 200,
        ..Default::default()
    };
    if !roles.is_admin(who) {
        if roles.in_team(who, owner) {
            query.owner = Some(owner.to_owned());
        } else {
            query.requester = Some(who.sub.clone());
        }
    }
    let (mut counted, mut outdated) = (0, 0);
    loop {
        let page = state.resources.store.list(&query).await?;
        for r in &page.items {
            counted += 1;
            outdated += usize::from(r.outdated(snapshot));
        }
        match page.next {
            Some(next) if counted < COUNTED => query.cursor = Some(next),
            more => {
                return Ok(
                    json!({"counted": counted, "outdated": outdated, "more": more.is_some()}),
                );
            }
        }
    }
}

/// The most resources an item's page counts.
const COUNTED: usize = 1_000;

/// Catalog items, filtered, a page at a time in name order.
#[utoipa::path(get, path = "/catalog/items", tag = "catalog", security(("bearer" = [])), params(CatalogFilter),
    responses((status = 200, body = Listing), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn list_items(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(filter): QueryParams<CatalogFilter>,
) -> Result<Response, Problem> {
    let (filter, pages, after, limit) = filter.read("catalog-items")?;
    let snapshot = state.requests.catalog.current();
    let roles = &state.requests.roles;
    let (page, next) = snapshot.items_page(&filter, after.as_deref(), limit);
    let items = page
        .into_iter()
        .map(|i| {
            Summary::new(
                &i.doc.metadata,
                "item",
                roles,
                &who,
                Some(i.doc.spec.fulfillment.mode),
            )
        })
        .collect();
    Ok(Json(Listing {
        catalog_version: &snapshot.version,
        items,
        next: pages.issue(next),
    })
    .into_response())
}

/// The categories, owners and tags of the catalog's items and bundles: the choices of
/// the lists' filters, without reading the lists.
#[utoipa::path(get, path = "/catalog/facets", tag = "catalog", security(("bearer" = [])),
    responses((status = 200, body = Facets)))]
pub async fn facets(State(state): State<AppState>, Caller(_): Caller) -> Json<Facets> {
    Json(state.requests.catalog.current().facets().clone())
}

/// An item with its form (`form.schema` and `form.uiSchema` for react-jsonschema-form).
#[utoipa::path(get, path = "/catalog/items/{name}", tag = "catalog", security(("bearer" = [])),
    params(("name" = String, Path, description = "The item's name")),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_item(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    let snapshot = state.requests.catalog.current();
    let item = snapshot
        .catalog
        .item(&name)
        .ok_or_else(|| Problem::not_found(format!("there is no item `{name}` in the catalog")))?;
    let doc = &item.doc;
    let roles = &state.requests.roles;
    let mut body = detail(
        &doc.metadata,
        "item",
        &doc.spec.presentation,
        &snapshot.version,
        roles,
        &who,
    );
    body["mode"] = json!(doc.spec.fulfillment.mode);
    body["manualFallback"] = json!(
        doc.spec.fulfillment.mode == Mode::Automated && doc.spec.fulfillment.manual.is_some()
    );
    body["outputs"] = json!(doc.spec.outputs);
    body["approvals"] = json!(doc.spec.approvals);
    body["sla"] = json!(doc.spec.sla);
    body["replacement"] = replacement(&snapshot, &doc.metadata);
    body["calendars"] = calendars_of(&snapshot.catalog, &name, &doc.metadata.owner);
    body["resources"] =
        resource_versions(&state, &who, &snapshot, &name, &doc.metadata.owner).await?;
    let forced = crate::fulfillment::mode::get(state.state.as_ref(), &name).await?;
    if let Some(forced) = &forced {
        body["mode"] = json!(Mode::Manual);
        body["declaredMode"] = json!(doc.spec.fulfillment.mode);
        body["modeOverride"] = json!(forced);
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeChange {
    /// `manual`: requests for the item open its JIRA ticket until the override is lifted.
    #[schema(value_type = ForcedMode, example = "manual")]
    mode: Mode,
    /// Why (shown to requesters and in the audit log).
    #[schema(min_length = 1, pattern = "\\S")]
    reason: String,
}

/// The only mode an admin can force (documentation of `ModeChange.mode`).
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
enum ForcedMode {
    Manual,
}

/// Forces an automated item to manual while its automation is broken (admins). Survives
/// catalog reloads until lifted with `DELETE`.
#[utoipa::path(put, path = "/catalog/items/{name}/mode", tag = "catalog", security(("bearer" = [])),
    params(("name" = String, Path, description = "The item's name")),
    request_body = ModeChange,
    responses((status = 200, body = crate::fulfillment::mode::ModeOverride),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The item has no manual section to force")))]
pub async fn set_mode(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    super::problem::JsonBody(change): super::problem::JsonBody<ModeChange>,
) -> Result<Json<crate::fulfillment::mode::ModeOverride>, Problem> {
    if !state.requests.roles.is_admin(&who) {
        return Err(Problem::forbidden("only admins may change an item's mode"));
    }
    let snapshot = state.requests.catalog.current();
    let item = snapshot
        .catalog
        .item(&name)
        .ok_or_else(|| Problem::not_found(format!("there is no item `{name}` in the catalog")))?;
    if change.mode != Mode::Manual {
        return Err(Problem::bad_request(
            "/mode: only `manual` can be forced; DELETE the override to return to the catalog's mode",
        ));
    }
    if item.doc.spec.fulfillment.manual.is_none() {
        return Err(Problem::conflict(
            "no-manual-section",
            "No manual section",
            format!("`{name}` has no manual section: there is no JIRA ticket to fall back to"),
        ));
    }
    if change.reason.trim().is_empty() {
        return Err(Problem::bad_request(
            "/reason: say why the item is forced to manual",
        ));
    }
    let forced = crate::fulfillment::mode::ModeOverride {
        mode: "manual".to_owned(),
        reason: change.reason,
        by: who.sub.clone(),
        at: state.requests.clock.now(),
    };
    crate::fulfillment::mode::set(state.state.as_ref(), &name, &forced).await?;
    tracing::warn!(item = %name, by = %who.sub, reason = %forced.reason, "item forced to manual");
    Ok(Json(forced))
}

/// Lifts an admin's mode override: the item runs in its catalog mode again (admins).
#[utoipa::path(delete, path = "/catalog/items/{name}/mode", tag = "catalog", security(("bearer" = [])),
    params(("name" = String, Path, description = "The item's name")),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn lift_mode(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, Problem> {
    if !state.requests.roles.is_admin(&who) {
        return Err(Problem::forbidden("only admins may change an item's mode"));
    }
    if crate::fulfillment::mode::lift(state.state.as_ref(), &name).await? {
        tracing::warn!(item = %name, by = %who.sub, "mode override lifted");
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("`{name}` has no mode override")))
    }
}

/// Catalog bundles, filtered, a page at a time in name order.
#[utoipa::path(get, path = "/catalog/bundles", tag = "catalog", security(("bearer" = [])), params(CatalogFilter),
    responses((status = 200, body = Listing), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn list_bundles(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(filter): QueryParams<CatalogFilter>,
) -> Result<Response, Problem> {
    let (filter, pages, after, limit) = filter.read("catalog-bundles")?;
    let snapshot = state.requests.catalog.current();
    let roles = &state.requests.roles;
    let (page, next) = snapshot.bundles_page(&filter, after.as_deref(), limit);
    let items = page
        .into_iter()
        .map(|b| Summary::new(&b.doc.metadata, "bundle", roles, &who, None))
        .collect();
    Ok(Json(Listing {
        catalog_version: &snapshot.version,
        items,
        next: pages.issue(next),
    })
    .into_response())
}

/// A bundle with its components and form.
#[utoipa::path(get, path = "/catalog/bundles/{name}", tag = "catalog", security(("bearer" = [])),
    params(("name" = String, Path, description = "The bundle's name")),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_bundle(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    let snapshot = state.requests.catalog.current();
    let bundle = snapshot
        .catalog
        .bundle(&name)
        .ok_or_else(|| Problem::not_found(format!("there is no bundle `{name}` in the catalog")))?;
    let doc = &bundle.doc;
    let roles = &state.requests.roles;
    let mut body = detail(
        &doc.metadata,
        "bundle",
        &doc.spec.presentation,
        &snapshot.version,
        roles,
        &who,
    );
    body["components"] = doc
        .spec
        .components
        .iter()
        .map(|c| json!({"id": c.id, "item": c.item, "dependsOn": c.depends_on}))
        .collect();
    body["onFailure"] = json!(doc.spec.on_failure);
    body["outputs"] = json!(doc.spec.outputs);
    body["approvals"] = json!(doc.spec.approvals);
    body["sla"] = json!(doc.spec.sla);
    body["replacement"] = replacement(&snapshot, &doc.metadata);
    body["calendars"] = calendars_of(&snapshot.catalog, &name, &doc.metadata.owner);
    // The component graph for the portal, as a Mermaid flowchart.
    body["graph"] =
        json!(crate::bundle::asl::mermaid(&snapshot.catalog, &name).unwrap_or_default());
    Ok(Json(body))
}

/// The bundle's state machine: the Amazon States Language definition its requests run
/// (the action queue's URL is a placeholder the workflow engine fills in).
#[utoipa::path(get, path = "/catalog/bundles/{name}/definition", tag = "catalog", security(("bearer" = [])),
    params(("name" = String, Path, description = "The bundle's name")),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_bundle_definition(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    let snapshot = state.requests.catalog.current();
    crate::bundle::asl::compile_bundle(&snapshot.catalog, &name)
        .map(Json)
        .map_err(|e| match e {
            crate::bundle::asl::CompileError::NoSuchBundle(_) => {
                Problem::not_found(format!("there is no bundle `{name}` in the catalog"))
            }
            // A served catalog was validated, so its bundles compile; say so if not.
            other => Problem::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "bundle-does-not-compile",
                "The bundle does not compile",
                format!("the bundle `{name}` does not compile: {other}"),
            ),
        })
}

/// The report of a push from GitHub (its id is the delivery's `X-GitHub-Delivery`):
/// whether it went live, was rejected or ignored, and every finding of its validation.
#[utoipa::path(get, path = "/catalog/ingestions/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "The delivery id")),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_ingestion(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let report = match &state.ingest {
        Some(ingest) => ingest.report(&id).await?,
        None => None,
    };
    report
        .map(|r| Json(json!(r)))
        .ok_or_else(|| Problem::not_found(format!("there is no ingestion `{id}`")))
}

fn ingest_of(state: &AppState) -> Result<&crate::ingest::Ingest, Problem> {
    state.ingest.as_deref().ok_or_else(|| {
        Problem::not_found("GitHub ingestion is not configured (github.catalog.repository)")
    })
}

fn admin_only(state: &AppState, who: &Principal) -> Result<(), Problem> {
    if state.requests.roles.is_admin(who) {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "only admins may manage catalog versions",
        ))
    }
}

/// The catalog versions GitHub pushes made live, newest first (admins).
#[utoipa::path(get, path = "/catalog/versions", tag = "catalog", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_versions(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Value>, Problem> {
    admin_only(&state, &who)?;
    let versions = ingest_of(&state)?.versions().await?;
    Ok(Json(json!({
        "serving": state.requests.catalog.current().version,
        "versions": versions,
    })))
}

/// Serves a kept version again: rolls the catalog back (or forward) to it (admins).
#[utoipa::path(post, path = "/catalog/versions/{sha}/activate", tag = "catalog", security(("bearer" = [])),
    params(("sha" = String, Path, description = "The version's commit SHA")),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn activate_version(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(sha): Path<String>,
) -> Result<Json<Value>, Problem> {
    admin_only(&state, &who)?;
    match ingest_of(&state)?.activate(&sha).await? {
        None => Err(Problem::not_found(format!(
            "no catalog version `{sha}` is kept"
        ))),
        Some(Ok(summary)) => Ok(Json(json!({"serving": sha, "summary": summary}))),
        Some(Err(why)) => Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "version-not-activated",
            "The version was not activated",
            why,
        )),
    }
}

/// Synchronises the catalog from the branch's head now, in full (admins): for a missed
/// delivery, or after fixing the repository's webhook.
#[utoipa::path(post, path = "/catalog/sync", tag = "catalog", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn sync(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Value>, Problem> {
    admin_only(&state, &who)?;
    let id = format!("sync-{}", uuid::Uuid::now_v7());
    let report = ingest_of(&state)?
        .sync_head(&id)
        .await
        .map_err(|e| match e {
            crate::ingest::IngestError::Store(e) => Problem::from(e),
        })?;
    Ok(Json(json!({ "ingestion": report })))
}

/// The change calendars that may cover requests of `name` (owned by `owner`): their
/// freezes and windows, and the conditions on the fields that decide, for the portal
/// to show before a request is made.
fn calendars_of(catalog: &crate::catalog::load::Catalog, name: &str, owner: &str) -> Value {
    catalog
        .calendars
        .iter()
        .map(|c| &c.doc)
        .filter(|c| c.spec.scope.names(name, owner))
        .map(|c| {
            json!({
                "name": c.metadata.name,
                "title": c.metadata.title,
                "timeZone": c.spec.time_zone,
                "operations": c.spec.scope.operations,
                "when": c.spec.scope.when,
                "freezes": c.spec.freezes,
                "windows": c.spec.windows,
            })
        })
        .collect()
}
