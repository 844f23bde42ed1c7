//! Templates: the variable scopes, the helpers, and static analysis of template strings.
//!
//! Catalog documents hold Handlebars templates such as `{{fields.appName}}-db`. This
//! module fixes the vocabulary (scopes and helpers) that the catalog validator checks
//! against and `render` renders with.

pub mod refs;
pub mod render;

/// The variable scopes a template may read. Which ones are available depends on where the
/// template is (an item's actions, a bundle's component inputs, ...).
pub const SCOPES: [&str; 10] = [
    "fields",
    "metadata",
    "request",
    "system",
    "environment",
    "secrets",
    "outputs",
    "components",
    "resource",
    "bundle",
];

/// The scopes an item's fulfillment (actions, manual ticket) may read.
pub const ITEM_SCOPES: &[&str] = &[
    "fields",
    "metadata",
    "request",
    "system",
    "environment",
    "secrets",
    "outputs",
    "resource",
    "bundle",
];

/// The scopes a bundle's component inputs and outputs may read. No `secrets`: inputs are
/// kept in the execution history.
pub const BUNDLE_SCOPES: &[&str] = &[
    "fields",
    "metadata",
    "request",
    "system",
    "environment",
    "components",
    "bundle",
];

/// Helpers a template may call inline (`{{lower fields.name}}`).
pub const HELPERS: &[&str] = &[
    // Catalog helpers (see docs/catalog-format.md).
    "default", "lower", "upper", "slug", "json", "join", "date", "trim", "replace", "concat",
    // Handlebars built-ins.
    "lookup", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len",
];

/// Helpers a template may open as a block (`{{#if fields.public}}...{{/if}}`).
pub const BLOCK_HELPERS: &[&str] = &["if", "unless", "each", "with"];

/// The keys of the `request` scope.
pub const REQUEST_KEYS: &[&str] = &["id", "requester", "email", "groups", "createdAt"];

/// The keys of the `system` scope.
pub const SYSTEM_KEYS: &[&str] = &["now", "region", "stage", "version"];

/// The keys of the `resource` scope (the recorded state of a resource, for day-2 changes).
pub const RESOURCE_KEYS: &[&str] = &[
    "id",
    "inputs",
    "outputs",
    "status",
    "serial",
    "createdAt",
    "updatedAt",
];

/// The keys of the `bundle` scope (the bundle an item runs in, when it runs in one): its
/// name, its form's values, and the id of the component being run.
pub const BUNDLE_KEYS: &[&str] = &["name", "fields", "component"];
