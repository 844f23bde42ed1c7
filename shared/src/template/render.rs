//! Rendering: templates apply to the string leaves of structured values (JSON bodies, JIRA
//! fields), never to text that is then parsed. Strict: a missing variable is an error
//! naming the template, its location and the variable. No HTML escaping. A leaf that is
//! exactly one `{{path}}` keeps the type of its value (a number stays a number).

use handlebars::{
    Context, Handlebars, Helper, HelperDef, JsonRender, RenderContext, RenderError,
    RenderErrorReason, Renderable, ScopedJson, StringOutput, Template, handlebars_helper,
};
use serde_json::Value;

use super::refs::{analyze, is_template};

/// A template that could not be rendered, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}` at {location}: {message}")]
pub struct RenderFailure {
    /// Where the template is: a JSON pointer within the rendered value, prefixed by the
    /// caller's description of the value (e.g. `manual.ticket/summary`).
    pub location: String,
    pub template: String,
    pub message: String,
}

/// The template engine, configured once: strict, no escaping, the catalog's helpers.
/// URLs render through a second registry whose `{{...}}` output is percent-encoded.
pub struct Renderer {
    hb: Handlebars<'static>,
    url: Handlebars<'static>,
    /// Compiled templates by their text: a catalog's templates are few and rendered often,
    /// and compiling is most of rendering's cost.
    compiled: Cache,
    compiled_url: Cache,
}

/// Compiled templates, dropped wholesale if they ever pass `CACHE_LIMIT`.
#[derive(Default)]
struct Cache(std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<Template>>>);

const CACHE_LIMIT: usize = 20_000;

impl Cache {
    fn get(&self, text: &str) -> Result<std::sync::Arc<Template>, RenderError> {
        if let Ok(map) = self.0.read()
            && let Some(found) = map.get(text)
        {
            return Ok(found.clone());
        }
        let compiled = std::sync::Arc::new(Template::compile(text).map_err(RenderError::from)?);
        if let Ok(mut map) = self.0.write() {
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
            map.insert(text.to_owned(), compiled.clone());
        }
        Ok(compiled)
    }
}

/// Renders a compiled template as the registry would (`render_template_with_context`).
fn run(
    registry: &Handlebars<'static>,
    cache: &Cache,
    text: &str,
    context: &Context,
) -> Result<String, RenderError> {
    let template = cache.get(text)?;
    let mut out = StringOutput::new();
    let mut rc = RenderContext::new(None);
    template.render(registry, context, &mut rc, &mut out)?;
    out.into_string().map_err(RenderError::from)
}

/// Characters a value rendered into a URL keeps as they are: RFC 3986's unreserved set.
/// Everything else (`/`, `?`, `#`, `&`, `=`, `%`, spaces, quotes, ...) is percent-encoded,
/// so a value stays inside its path segment or query value.
const URL_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn url_escape(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, URL_COMPONENT).to_string()
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

handlebars_helper!(lower: |s: str| s.to_lowercase());
handlebars_helper!(upper: |s: str| s.to_uppercase());
handlebars_helper!(trim: |s: str| s.trim());
handlebars_helper!(json: |v: Json| v.to_string());
handlebars_helper!(replace: |s: str, from: str, to: str| s.replace(from, to));
handlebars_helper!(slug: |s: str| slugify(s));
handlebars_helper!(join: |items: array, sep: str| {
    items.iter().map(|v| v.render()).collect::<Vec<_>>().join(sep)
});
handlebars_helper!(concat: |*args| args.iter().map(|v| v.render()).collect::<String>());

/// `{{default value fallback}}`: the value, or the fallback when it is missing, null or "".
struct DefaultHelper;

impl HelperDef for DefaultHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = h.param(0);
        let absent = value.is_none_or(|p| {
            p.is_value_missing()
                || p.value().is_null()
                || p.value().as_str().is_some_and(str::is_empty)
        });
        let chosen = if absent { h.param(1) } else { value };
        let chosen = chosen.ok_or(RenderErrorReason::ParamNotFoundForIndex("default", 1))?;
        Ok(ScopedJson::Derived(chosen.value().clone()))
    }
}

/// `{{date value format}}`: an RFC 3339 timestamp (such as `system.now` or
/// `request.createdAt`) formatted with a `time` format description, e.g.
/// `[year]-[month]-[day]`.
struct DateHelper;

impl HelperDef for DateHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let text = |i: usize, what: &'static str| {
            h.param(i)
                .and_then(|p| p.value().as_str().map(str::to_owned))
                .ok_or(RenderErrorReason::ParamNotFoundForIndex(what, i))
        };
        let value = text(0, "date")?;
        let format = text(1, "date")?;
        let at =
            time::OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    RenderErrorReason::Other(format!(
                        "date: `{value}` is not an RFC 3339 timestamp: {e}"
                    ))
                })?;
        let description = time::format_description::parse_borrowed::<2>(&format).map_err(|e| {
            RenderErrorReason::Other(format!("date: `{format}` is not a format description: {e}"))
        })?;
        let out = at
            .format(&description)
            .map_err(|e| RenderErrorReason::Other(format!("date: {e}")))?;
        Ok(ScopedJson::Derived(serde_json::Value::String(out)))
    }
}

/// A strict registry with the catalog's helpers and the given escaping.
fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(escape);
    hb.register_helper("lower", Box::new(lower));
    hb.register_helper("upper", Box::new(upper));
    hb.register_helper("trim", Box::new(trim));
    hb.register_helper("json", Box::new(json));
    hb.register_helper("replace", Box::new(replace));
    hb.register_helper("slug", Box::new(slug));
    hb.register_helper("join", Box::new(join));
    hb.register_helper("concat", Box::new(concat));
    hb.register_helper("default", Box::new(DefaultHelper));
    hb.register_helper("date", Box::new(DateHelper));
    hb
}

/// Lower-case, ASCII letters and digits, single hyphens: `My Service` -> `my-service`.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

impl Renderer {
    pub fn new() -> Self {
        Renderer {
            hb: registry(handlebars::no_escape),
            url: registry(url_escape),
            compiled: Cache::default(),
            compiled_url: Cache::default(),
        }
    }

    /// Renders a URL template. A leading `{{...}}` is the base URL (deployment
    /// configuration such as `{{environment.apiUrl}}`) and is inserted as written; every
    /// other value is percent-encoded, and a value that would still change the path (a
    /// `.` or `..` segment) is refused.
    pub fn render_url(
        &self,
        template: &str,
        context: &Value,
        location: &str,
    ) -> Result<String, RenderFailure> {
        self.url_in(template, &wrap(context, location)?, location)
    }

    fn url_in(
        &self,
        template: &str,
        context: &Context,
        location: &str,
    ) -> Result<String, RenderFailure> {
        let fail = |message: String| RenderFailure {
            location: location.to_owned(),
            template: template.to_owned(),
            message,
        };
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        let (base, rest) = match template.find("}}") {
            Some(end)
                if template.starts_with("{{")
                    && !template[2..].starts_with(['#', '!', '{', '>', '/', '~']) =>
            {
                template.split_at(end + 2)
            }
            _ => ("", template),
        };
        let base = self.text_in(base, context, location)?;
        let rest = run(&self.url, &self.compiled_url, rest, context)
            .map_err(|e| fail(render_message(&e)))?;
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        let dot_segment = path.split('/').skip(1).any(|segment| {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            decoded == "." || decoded == ".."
        });
        if dot_segment {
            return Err(fail(format!(
                "a value would change the URL's path: `{path}` has a `.` or `..` segment"
            )));
        }
        Ok(format!("{base}{rest}"))
    }

    /// Renders every string leaf of `value` like [`Renderer::render_value`], but the leaves
    /// at `urls` (JSON pointers) as URLs ([`Renderer::render_url`]).
    pub fn render_config(
        &self,
        value: &Value,
        context: &Value,
        location: &str,
        urls: &[&str],
    ) -> Result<Value, RenderFailure> {
        // The context is wrapped once for every leaf (handlebars would copy it per call).
        let wrapped = wrap(context, location)?;
        let mut out = self.render_at(value, &wrapped, location, String::new(), urls)?;
        for pointer in urls {
            if let (Some(Value::String(template)), Some(slot)) =
                (value.pointer(pointer), out.pointer_mut(pointer))
            {
                *slot = Value::String(self.url_in(
                    template,
                    &wrapped,
                    &format!("{location}{pointer}"),
                )?);
            }
        }
        Ok(out)
    }

    /// Renders one template to text.
    pub fn render_str(
        &self,
        template: &str,
        context: &Value,
        location: &str,
    ) -> Result<String, RenderFailure> {
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        self.text_in(template, &wrap(context, location)?, location)
    }

    fn text_in(
        &self,
        template: &str,
        context: &Context,
        location: &str,
    ) -> Result<String, RenderFailure> {
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        run(&self.hb, &self.compiled, template, context).map_err(|e| RenderFailure {
            location: location.to_owned(),
            template: template.to_owned(),
            message: render_message(&e),
        })
    }

    /// Renders every string leaf of `value`; `location` names the value in errors.
    pub fn render_value(
        &self,
        value: &Value,
        context: &Value,
        location: &str,
    ) -> Result<Value, RenderFailure> {
        let wrapped = wrap(context, location)?;
        self.render_at(value, &wrapped, location, String::new(), &[])
    }

    /// Renders the leaves of `value`; those at `skip` (URLs, rendered by the caller) are
    /// left as they are.
    fn render_at(
        &self,
        value: &Value,
        context: &Context,
        location: &str,
        pointer: String,
        skip: &[&str],
    ) -> Result<Value, RenderFailure> {
        Ok(match value {
            Value::String(_) if skip.contains(&pointer.as_str()) => value.clone(),
            Value::String(text) => {
                let here = || format!("{location}{pointer}");
                if let Some(path) = single_expression(text) {
                    lookup(context.data(), &path)
                        .cloned()
                        .ok_or_else(|| RenderFailure {
                            location: here(),
                            template: text.clone(),
                            message: format!("`{}` has no value", path.join(".")),
                        })?
                } else {
                    Value::String(self.text_in(text, context, &here())?)
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        self.render_at(v, context, location, format!("{pointer}/{i}"), skip)
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let child = format!("{pointer}/{}", crate::catalog::yaml::escape_token(k));
                        Ok((
                            k.clone(),
                            self.render_at(v, context, location, child, skip)?,
                        ))
                    })
                    .collect::<Result<_, RenderFailure>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// The variables as handlebars holds them, built once per rendered value.
fn wrap(context: &Value, location: &str) -> Result<Context, RenderFailure> {
    Context::wraps(context).map_err(|e| RenderFailure {
        location: location.to_owned(),
        template: String::new(),
        message: render_message(&e),
    })
}

/// The path of a template that is exactly one plain variable, `{{a.b.c}}`.
fn single_expression(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    let analysis = analyze(text);
    match analysis.variables.as_slice() {
        [only]
            if analysis.problems.is_empty()
                && only.raw == inner.trim()
                && only.segments.len() > 1 =>
        {
            Some(only.segments.clone())
        }
        _ => None,
    }
}

fn lookup<'v>(context: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(context, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn render_message(e: &RenderError) -> String {
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => format!("`{path}` has no value"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"fields": {"name": "Orders API", "size": 3, "tags": ["a", "b"], "empty": "", "on": true},
               "request": {"id": "r1"}})
    }

    #[test]
    fn leaves_render_and_single_expressions_keep_their_type() {
        let r = Renderer::new();
        let value = json!({"name": "{{fields.name}}-x", "size": "{{fields.size}}", "tags": "{{fields.tags}}",
                           "n": 5, "list": ["{{request.id}}", "<{{fields.name}}>"]});
        let out = r.render_value(&value, &ctx(), "body").unwrap();
        assert_eq!(
            out,
            json!({"name": "Orders API-x", "size": 3, "tags": ["a", "b"], "n": 5,
                               "list": ["r1", "<Orders API>"]})
        );
    }

    #[test]
    fn a_missing_variable_names_the_template_location_and_variable() {
        let r = Renderer::new();
        let err = r
            .render_value(&json!({"a": {"b": "x {{fields.nope}}"}}), &ctx(), "ticket")
            .unwrap_err();
        assert_eq!(err.location, "ticket/a/b");
        assert!(err.message.contains("fields.nope"), "{}", err.message);
        let err = r
            .render_value(&json!("{{fields.nope}}"), &ctx(), "ticket")
            .unwrap_err();
        assert!(err.message.contains("fields.nope"), "{}", err.message);
    }

    #[test]
    fn every_helper_the_validator_accepts_is_registered() {
        let r = Renderer::new();
        let templates = crate::template::HELPERS
            .iter()
            .map(|h| format!("{{{{{h} 'x'}}}}"))
            .chain(
                crate::template::BLOCK_HELPERS
                    .iter()
                    .map(|h| format!("{{{{#{h} 'x'}}}}{{{{/{h}}}}}")),
            );
        for template in templates {
            // Wrong arguments are fine here; an unknown helper is not.
            if let Err(e) = r.hb.render_template(&template, &json!({})) {
                let unknown = matches!(e.reason(), RenderErrorReason::HelperNotFound(_));
                assert!(
                    !unknown,
                    "the validator accepts `{template}`, but rendering does not know it: {e}"
                );
            }
        }
    }

    #[test]
    fn helpers_work_and_nothing_is_html_escaped() {
        let r = Renderer::new();
        let t = |s: &str| r.render_str(s, &ctx(), "t").unwrap();
        assert_eq!(
            t("{{lower fields.name}}|{{upper fields.name}}|{{slug fields.name}}"),
            "orders api|ORDERS API|orders-api"
        );
        assert_eq!(t("{{join fields.tags ', '}}"), "a, b");
        assert_eq!(
            t(
                "{{default fields.missing 'x'}}/{{default fields.empty 'y'}}/{{default fields.name 'z'}}"
            ),
            "x/y/Orders API"
        );
        assert_eq!(
            t("{{#if fields.on}}yes{{else}}no{{/if}} {{#if (eq fields.size 3)}}three{{/if}}"),
            "yes three"
        );
        assert_eq!(t("{{json fields.tags}} & <b>"), "[\"a\",\"b\"] & <b>");
        assert_eq!(t("{{concat fields.name '-' request.id}}"), "Orders API-r1");
        let at = json!({"system": {"now": "2026-11-21T06:55:00Z"}});
        assert_eq!(
            r.render_str("{{date system.now '[year]-[month]-[day]'}}", &at, "t")
                .unwrap(),
            "2026-11-21"
        );
        // An optional field that was not given: guard it with #if (or use default).
        assert_eq!(
            t("{{#if fields.absent}}{{join fields.absent ', '}}{{else}}none{{/if}}"),
            "none"
        );
    }

    #[test]
    fn values_in_urls_are_encoded_and_cannot_change_their_structure() {
        let r = Renderer::new();
        let ctx = json!({"environment": {"api": "https://api.example.com/v2"},
                         "fields": {"name": "a/../b?x=1&y=2#f %{{x}}\"", "dots": "..", "dot": ".",
                                    "enc": "%2e%2E", "ok": "orders-api_1.0~x"}});
        let url = |t: &str| r.render_url(t, &ctx, "with/url");
        assert_eq!(
            url("{{environment.api}}/queues/{{fields.name}}?q={{fields.name}}").unwrap(),
            "https://api.example.com/v2/queues/a%2F..%2Fb%3Fx%3D1%26y%3D2%23f%20%25%7B%7Bx%7D%7D%22\
             ?q=a%2F..%2Fb%3Fx%3D1%26y%3D2%23f%20%25%7B%7Bx%7D%7D%22"
        );
        assert_eq!(
            url("{{environment.api}}/q/{{fields.ok}}").unwrap(),
            "https://api.example.com/v2/q/orders-api_1.0~x"
        );
        // Helpers' output is encoded too.
        assert_eq!(
            url("{{environment.api}}/q/{{lower fields.name}}").unwrap(),
            "https://api.example.com/v2/q/a%2F..%2Fb%3Fx%3D1%26y%3D2%23f%20%25%7B%7Bx%7D%7D%22"
        );
        // An encoded dot is encoded again: a literal `%2e%2E`, not a dot segment.
        assert_eq!(
            url("{{environment.api}}/q/{{fields.enc}}/x").unwrap(),
            "https://api.example.com/v2/q/%252e%252E/x"
        );
        for field in ["dots", "dot"] {
            let err = url(&format!(
                "{{{{environment.api}}}}/q/{{{{fields.{field}}}}}/x"
            ))
            .unwrap_err();
            assert!(err.message.contains("change the URL's path"), "{err}");
            assert_eq!(err.location, "with/url");
        }
        // A value the author placed in the query with a dot is fine.
        assert_eq!(
            url("https://h/x?v={{fields.dots}}").unwrap(),
            "https://h/x?v=.."
        );
        // Not a template: unchanged.
        assert_eq!(url("https://h/x").unwrap(), "https://h/x");
        // Strict as everywhere.
        assert!(
            url("{{environment.api}}/{{fields.nope}}")
                .unwrap_err()
                .message
                .contains("fields.nope")
        );
    }

    #[test]
    fn render_config_renders_urls_at_their_pointers_and_other_leaves_plainly() {
        let r = Renderer::new();
        let ctx = json!({"fields": {"name": "a b/c", "n": 2}});
        let out = r
            .render_config(
                &json!({"url": "https://h/{{fields.name}}", "body": {"name": "{{fields.name}}", "n": "{{fields.n}}"}}),
                &ctx,
                "with",
                &["/url", "/poll/url"],
            )
            .unwrap();
        assert_eq!(
            out,
            json!({"url": "https://h/a%20b%2Fc", "body": {"name": "a b/c", "n": 2}})
        );
    }
}
