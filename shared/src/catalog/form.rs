//! The request form a portal renders: `{"schema", "uiSchema"}` in the shape
//! react-jsonschema-form (the form library Backstage uses) takes directly.

use serde_json::{Map, Value, json};

use super::document::Presentation;

/// The form of a presentation section: the JSON Schema as written, and a uiSchema built
/// from the UI hints (`ui:order`, `ui:widget`, `ui:placeholder`, `ui:help`, ...).
pub fn render(title: &str, description: &str, presentation: &Presentation) -> Value {
    let mut schema = presentation.schema.clone();
    if let Value::Object(s) = &mut schema {
        s.entry("title").or_insert_with(|| json!(title));
        s.entry("description").or_insert_with(|| json!(description));
    }
    let mut ui = Map::new();
    let order = &presentation.ui.order;
    if !order.is_empty() {
        let mut order: Vec<Value> = order.iter().map(|f| json!(f)).collect();
        // RJSF rejects an order that omits fields unless a wildcard says where they go.
        if !order.iter().any(|f| f == "*") {
            order.push(json!("*"));
        }
        ui.insert("ui:order".to_owned(), Value::Array(order));
    }
    for (field, hint) in &presentation.ui.fields {
        let mut options = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                options.insert(format!("ui:{key}"), value);
            }
        };
        put("widget", hint.widget.clone().map(Value::String));
        put("placeholder", hint.placeholder.clone().map(Value::String));
        put("help", hint.help.clone().map(Value::String));
        put("readonly", hint.readonly.map(Value::Bool));
        put("autofocus", hint.autofocus.map(Value::Bool));
        ui.insert(field.clone(), Value::Object(options));
    }
    json!({ "schema": schema, "uiSchema": ui })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::document::UiHints;

    #[test]
    fn hints_become_rjsf_ui_options_and_order_gets_a_wildcard() {
        let hint = crate::catalog::document::FieldHint {
            widget: Some("radio".into()),
            help: Some("Pick one".into()),
            ..Default::default()
        };
        let fields = [("size".to_owned(), hint)].into();
        let presentation = Presentation {
            schema: json!({"type": "object", "properties": {"name": {"type": "string"}, "size": {"enum": ["s", "m"]}}}),
            ui: UiHints {
                order: vec!["size".into()],
                fields,
            },
        };
        let form = render("T", "D", &presentation);
        assert_eq!(form["schema"]["title"], "T");
        assert_eq!(form["uiSchema"]["ui:order"], json!(["size", "*"]));
        assert_eq!(
            form["uiSchema"]["size"],
            json!({"ui:widget": "radio", "ui:help": "Pick one"})
        );
    }
}
