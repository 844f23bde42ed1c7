//! Loads YAML text into JSON values while remembering where every node came from.
//!
//! Catalog documents are YAML, but everything downstream (JSON Schema validation, serde,
//! templates) works on JSON values. This loader builds the JSON value from the parser's
//! event stream and, beside it, a tree of source positions so that any JSON pointer can be
//! mapped back to a file, line and column.
//!
//! It is also the line of defence against hostile input: duplicate keys, non-string keys,
//! unsupported tags, nesting deeper than [`Limits::max_depth`] and documents that expand
//! (through aliases) to more than [`Limits::max_nodes`] nodes are errors with a position,
//! never a panic, a hang or unbounded memory. The tree is built with an explicit stack, so
//! deep input cannot overflow the call stack.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// A position in a source file: line and column, both 1-based. Kept small: every node of
/// every loaded document has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Pos {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Pos {
            line: clamp(line),
            column: clamp(column),
        }
    }

    fn start_of(span: &Span) -> Pos {
        Pos::new(span.start.line(), span.start.col() + 1)
    }
}

/// Bounds that keep a hostile document from exhausting the process.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How deeply mappings and sequences may nest.
    pub max_depth: usize,
    /// How many nodes one document may hold once aliases are expanded.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_nodes: 100_000,
        }
    }
}

/// Where each node of a loaded document came from, shaped like the document itself.
#[derive(Debug, Clone)]
pub enum SpanTree {
    Leaf(Pos),
    Seq(Pos, Vec<SpanTree>),
    /// Entries in the order of the JSON object's entries (document order): the position of
    /// the key and the subtree of the value. The keys themselves are in the JSON value.
    Map(Pos, Vec<(Pos, SpanTree)>),
}

impl SpanTree {
    pub fn pos(&self) -> Pos {
        match self {
            SpanTree::Leaf(p) | SpanTree::Seq(p, _) | SpanTree::Map(p, _) => *p,
        }
    }

    /// The position of the node a JSON pointer names in `value`, the document this tree
    /// describes. A pointer that runs past the document (a missing property, say) resolves
    /// to the deepest node that exists, which is where the author has to add what is
    /// missing. A pointer ending at a mapping entry resolves to its key, so that the
    /// position names the line the author reads.
    pub fn locate(&self, value: &Value, pointer: &str) -> Pos {
        let mut node = self;
        let mut value = value;
        let mut at = node.pos();
        for token in pointer_tokens(pointer) {
            let found = match (node, value) {
                (SpanTree::Map(_, entries), Value::Object(map)) => map
                    .iter()
                    .position(|(k, _)| *k == token)
                    .and_then(|i| Some((entries.get(i)?, map.get(&token)?)))
                    .map(|((key_pos, child), v)| (*key_pos, child, v)),
                (SpanTree::Seq(_, items), Value::Array(values)) => token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| Some((items.get(i)?, values.get(i)?)))
                    .map(|(child, v)| (child.pos(), child, v)),
                _ => None,
            };
            let Some((pos, child, v)) = found else {
                return at;
            };
            at = pos;
            node = child;
            value = v;
        }
        at
    }
}

/// Splits a JSON pointer (RFC 6901) into its unescaped reference tokens.
pub fn pointer_tokens(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
}

/// Escapes one reference token for use in a JSON pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// One YAML document, as JSON, with the positions of its nodes.
#[derive(Debug, Clone)]
pub struct LoadedDocument {
    pub value: Value,
    pub spans: SpanTree,
    /// Where the document starts (its `---` marker or first node).
    pub start: Pos,
}

/// Why a file could not be loaded. Loading stops at the first such error: the YAML parser
/// cannot resynchronise, and anything after a structural error would be guesswork.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub pos: Pos,
    /// JSON pointer of the node being built when the error occurred, if known.
    pub pointer: String,
    pub message: String,
}

/// Loads every document of a YAML stream, with the position of every node.
pub fn load_documents(text: &str, limits: Limits) -> Result<Vec<LoadedDocument>, YamlError> {
    load(text, limits, true, false)
}

/// The first document of a YAML (or JSON) file a person wrote (a configuration, a form's
/// values), `None` when it holds none; errors name the file, and the line and column.
pub fn read_file(path: &std::path::Path) -> Result<Option<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let docs = load_documents(&text, Limits::default()).map_err(|e| {
        format!(
            "{}:{}:{}: {}",
            path.display(),
            e.pos.line,
            e.pos.column,
            e.message
        )
    })?;
    Ok(docs.into_iter().next().map(|d| d.value))
}

/// Loads every document without recording node positions (their `spans` are empty),
/// which halves the work; errors still carry the position where loading stopped, though
/// a duplicate key's message then cannot name the first occurrence's line. For the
/// common case of valid files, with positions recomputed only where they are needed.
pub fn load_values(text: &str, limits: Limits) -> Result<Vec<LoadedDocument>, YamlError> {
    load(text, limits, false, false)
}

fn load(
    text: &str,
    limits: Limits,
    with_spans: bool,
    intrinsics: bool,
) -> Result<Vec<LoadedDocument>, YamlError> {
    let mut builder = Builder::new(limits, with_spans);
    builder.intrinsics = intrinsics;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let message = if e.info().contains("recursion limit") {
                nesting_message(limits.max_depth)
            } else {
                format!("YAML syntax error: {}", e.info())
            };
            YamlError {
                pos: Pos::new(e.marker().line(), e.marker().col() + 1),
                pointer: builder.current_pointer(),
                message,
            }
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.documents)
}

struct Built {
    value: Value,
    spans: SpanTree,
    nodes: usize,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        /// A CloudFormation intrinsic's short form (`!Join [...]`): the function's name.
        intrinsic: Option<String>,
        items: Vec<Value>,
        spans: Vec<SpanTree>,
        nodes: usize,
    },
    Map {
        pos: Pos,
        anchor: usize,
        intrinsic: Option<String>,
        map: Map<String, Value>,
        spans: Vec<(Pos, SpanTree)>,
        key: Option<(String, Pos)>,
        nodes: usize,
    },
}

struct Builder {
    limits: Limits,
    with_spans: bool,
    /// Read CloudFormation's short-form tags (`!Ref`, `!Sub`, ...) as their long forms.
    intrinsics: bool,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Built>,
    documents: Vec<LoadedDocument>,
    doc_start: Pos,
    doc_nodes: usize,
}

impl Builder {
    fn new(limits: Limits, with_spans: bool) -> Self {
        Builder {
            limits,
            with_spans,
            intrinsics: false,
            stack: Vec::new(),
            anchors: HashMap::new(),
            documents: Vec::new(),
            doc_start: Pos::default(),
            doc_nodes: 0,
        }
    }

    /// The JSON pointer of the node under construction, for error messages.
    fn current_pointer(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            out.push('/');
            match frame {
                Frame::Seq { items, .. } => out.push_str(&items.len().to_string()),
                Frame::Map { key, .. } => {
                    if let Some((k, _)) = key {
                        out.push_str(&escape_token(k));
                    }
                }
            }
        }
        if out.ends_with('/') {
            out.pop();
        }
        out
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> YamlError {
        YamlError {
            pos,
            pointer: self.current_pointer(),
            message: message.into(),
        }
    }

    fn count_nodes(&mut self, pos: Pos, n: usize) -> Result<(), YamlError> {
        self.doc_nodes = self.doc_nodes.saturating_add(n);
        if self.doc_nodes > self.limits.max_nodes {
            return Err(self.error(
                pos,
                format!(
                    "document expands to more than {} nodes (are aliases expanding exponentially?); \
                     catalog documents are small: remove the aliases or split the document",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = Pos::start_of(&span);
        match event {
            Event::DocumentStart(_) => {
                self.doc_start = pos;
                self.doc_nodes = 0;
                self.anchors.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    return self.key(text.into_owned(), pos, tag.as_deref());
                }
                self.count_nodes(pos, 1)?;
                let value = self.scalar(&text, style, tag.as_deref(), pos)?;
                self.complete(
                    Built {
                        value,
                        spans: SpanTree::Leaf(pos),
                        nodes: 1,
                    },
                    anchor,
                )?;
            }
            Event::Alias(id) => {
                if self.expecting_key() {
                    return Err(self.error(pos, "an alias cannot be used as a mapping key"));
                }
                let Some(nodes) = self.anchors.get(&id).map(|b| b.nodes) else {
                    return Err(self.error(pos, "alias refers to an unknown anchor"));
                };
                // Check the budget before cloning, so an alias bomb never allocates.
                self.count_nodes(pos, nodes)?;
                let built = self.anchors.get(&id).map(|b| Built {
                    value: b.value.clone(),
                    spans: b.spans.clone(),
                    nodes: b.nodes,
                });
                if let Some(built) = built {
                    self.complete(built, 0)?;
                }
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if self.expecting_key() {
                    return Err(self.error(
                        pos,
                        "mapping keys must be plain strings, not sequences or mappings",
                    ));
                }
                let intrinsic = match tag.as_deref() {
                    Some(tag) if self.intrinsics && tag.handle == "!" => Some(tag.suffix.clone()),
                    Some(tag) => return Err(self.unsupported_tag(tag, pos)),
                    None => None,
                };
                if self.stack.len() >= self.limits.max_depth {
                    return Err(self.error(pos, nesting_message(self.limits.max_depth)));
                }
                self.count_nodes(pos, 1)?;
                let is_seq = matches!(event, Event::SequenceStart(..));
                self.stack.push(if is_seq {
                    Frame::Seq {
                        pos,
                        anchor,
                        intrinsic,
                        items: Vec::new(),
                        spans: Vec::new(),
                        nodes: 1,
                    }
                } else {
                    Frame::Map {
                        pos,
                        anchor,
                        intrinsic,
                        map: Map::new(),
                        spans: Vec::new(),
                        key: None,
                        nodes: 1,
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (built, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        pos,
                        anchor,
                        intrinsic,
                        items,
                        mut spans,
                        nodes,
                    }) => (
                        Built {
                            value: long_form(intrinsic, Value::Array(items)),
                            spans: SpanTree::Seq(pos, {
                                spans.shrink_to_fit();
                                spans
                            }),
                            nodes,
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        intrinsic,
                        map,
                        mut spans,
                        nodes,
                        ..
                    }) => (
                        Built {
                            value: long_form(intrinsic, Value::Object(map)),
                            spans: SpanTree::Map(pos, {
                                spans.shrink_to_fit();
                                spans
                            }),
                            nodes,
                        },
                        anchor,
                    ),
                    None => return Err(self.error(pos, "unbalanced YAML structure")),
                };
                self.complete(built, anchor)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn key(&mut self, text: String, pos: Pos, tag: Option<&Tag>) -> Result<(), YamlError> {
        if let Some(tag) = tag.filter(|t| !is_core(t, "str")) {
            return Err(self.unsupported_tag(tag, pos));
        }
        let duplicate = match self.stack.last() {
            Some(Frame::Map { map, spans, .. }) => map
                .keys()
                .position(|k| *k == text)
                .map(|i| spans.get(i).map(|(first, _)| first.line)),
            _ => None,
        };
        if let Some(first_line) = duplicate {
            let first =
                first_line.map_or_else(String::new, |l| format!(" (first defined at line {l})"));
            return Err(self.error(
                pos,
                format!("duplicate key `{text}`{first}; a key may appear once per mapping"),
            ));
        }
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = Some((text, pos));
        }
        Ok(())
    }

    /// Hands a finished node to its parent (or ends the document).
    fn complete(&mut self, built: Built, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Built {
                    value: built.value.clone(),
                    spans: built.spans.clone(),
                    nodes: built.nodes,
                },
            );
        }
        match self.stack.last_mut() {
            None => self.documents.push(LoadedDocument {
                value: built.value,
                spans: built.spans,
                start: self.doc_start,
            }),
            Some(Frame::Seq {
                items,
                spans,
                nodes,
                ..
            }) => {
                items.push(built.value);
                if self.with_spans {
                    spans.push(built.spans);
                }
                *nodes += built.nodes;
            }
            Some(Frame::Map {
                map,
                spans,
                key,
                nodes,
                ..
            }) => {
                if let Some((k, key_pos)) = key.take() {
                    map.insert(k, built.value);
                    if self.with_spans {
                        spans.push((key_pos, built.spans));
                    }
                    *nodes += built.nodes;
                }
            }
        }
        Ok(())
    }

    fn unsupported_tag(&self, tag: &Tag, pos: Pos) -> YamlError {
        self.error(
            pos,
            format!(
                "YAML tag `{}{}` is not supported; catalog documents use plain YAML values",
                tag.handle, tag.suffix
            ),
        )
    }

    /// Resolves a scalar with the YAML 1.2 core schema (so `no` stays a string).
    fn scalar(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<Value, YamlError> {
        if let Some(tag) = tag {
            if is_core(tag, "str") {
                return Ok(Value::String(text.to_owned()));
            }
            if self.intrinsics && tag.handle == "!" {
                let value = self.scalar(text, style, None, pos)?;
                return Ok(long_form(Some(tag.suffix.clone()), value));
            }
            return Err(self.unsupported_tag(tag, pos));
        }
        if style != ScalarStyle::Plain {
            return Ok(Value::String(text.to_owned()));
        }
        Ok(match text {
            "" | "~" | "null" | "Null" | "NULL" => Value::Null,
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            _ => match core_number(text) {
                Some(Ok(n)) => Value::Number(n),
                Some(Err(())) => {
                    return Err(self.error(
                        pos,
                        format!("`{text}` is not a finite number; quote it if it is meant as text"),
                    ));
                }
                None => Value::String(text.to_owned()),
            },
        })
    }
}

/// A CloudFormation intrinsic in its long form: `!Ref x` is `{"Ref": "x"}`, `!GetAtt
/// a.b` is `{"Fn::GetAtt": ["a", "b"]}`, `!Sub s` is `{"Fn::Sub": "s"}`.
fn long_form(intrinsic: Option<String>, value: Value) -> Value {
    let Some(name) = intrinsic else {
        return value;
    };
    let mut map = Map::new();
    match (name.as_str(), value) {
        ("Ref" | "Condition", value) => {
            map.insert(name, value);
        }
        ("GetAtt", Value::String(text)) => {
            let parts = match text.split_once('.') {
                Some((resource, attribute)) => vec![json_str(resource), json_str(attribute)],
                None => vec![json_str(&text)],
            };
            map.insert("Fn::GetAtt".to_owned(), Value::Array(parts));
        }
        (_, value) => {
            map.insert(format!("Fn::{name}"), value);
        }
    }
    Value::Object(map)
}

fn json_str(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// A CloudFormation template written in YAML (or JSON), its short-form intrinsics
/// (`!Ref`, `!Sub`, `!GetAtt`, ...) read as their long forms: the JSON template
/// CloudFormation takes. Positions are not recorded.
pub fn load_cloudformation(text: &str) -> Result<Option<Value>, YamlError> {
    let documents = load(text, Limits::default(), false, true)?;
    Ok(documents.into_iter().next().map(|d| d.value))
}

fn nesting_message(max_depth: usize) -> String {
    format!("document nests deeper than {max_depth} levels; flatten it")
}

fn is_core(tag: &Tag, suffix: &str) -> bool {
    (tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!") && tag.suffix == suffix
}

/// The YAML 1.2 core schema's int and float forms. `Some(Err)` marks infinities and NaN,
/// which JSON cannot represent.
fn core_number(text: &str) -> Option<Result<Number, ()>> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(|n| Ok(n.into()));
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok().map(|n| Ok(n.into()));
    }
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(Err(()));
    }
    let first = unsigned.chars().next()?;
    if !(first.is_ascii_digit() || first == '.') {
        return None;
    }
    if unsigned.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Ok(n.into()));
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(Ok(n.into()));
        }
    }
    let float_chars = unsigned
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if float_chars && let Ok(f) = text.parse::<f64>() {
        return Some(Number::from_f64(f).ok_or(()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<LoadedDocument>, YamlError> {
        load_documents(text, Limits::default())
    }

    #[test]
    fn scalars_follow_the_yaml_1_2_core_schema() {
        let docs = load("a: no\nb: 12\nc: 1.5\nd: true\ne: ~\nf: '12'\ng: 0x1F\nh: yes\n").unwrap();
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a":"no","b":12,"c":1.5,"d":true,"e":null,"f":"12","g":31,"h":"yes"})
        );
    }

    #[test]
    fn positions_are_recorded_for_every_node() {
        let docs = load("metadata:\n  name: x\nspec:\n  list:\n    - a\n    - b: 1\n").unwrap();
        let at = |pointer| docs[0].spans.locate(&docs[0].value, pointer);
        assert_eq!(at("/metadata/name"), Pos { line: 2, column: 3 });
        assert_eq!(at("/spec/list/1"), Pos { line: 6, column: 7 });
        assert_eq!(at("/spec/list/1/b"), Pos { line: 6, column: 7 });
        // A missing property resolves to the deepest existing node.
        assert_eq!(at("/spec/missing/x"), Pos { line: 3, column: 1 });
    }

    #[test]
    fn duplicate_keys_are_rejected_with_both_lines() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 3);
        assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
        assert!(err.message.contains("line 1"), "{}", err.message);
    }

    #[test]
    fn alias_bombs_stop_at_the_node_budget() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = load(&text).unwrap_err();
        assert!(
            err.message.contains("more than 100000 nodes"),
            "{}",
            err.message
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // Flow style trips the scanner's own limit, block style ours: both say the same.
        let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let block: String = (0..200)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        for text in [flow, block] {
            let err = load(&text).unwrap_err();
            assert!(err.message.contains("deeper than 64"), "{}", err.message);
        }
    }

    #[test]
    fn non_finite_numbers_and_custom_tags_are_rejected() {
        assert!(load("a: .inf\n").unwrap_err().message.contains("finite"));
        assert!(load("a: !secret x\n").unwrap_err().message.contains("tag"));
        assert_eq!(
            load("a: !!str 12\n").unwrap()[0].value,
            serde_json::json!({"a":"12"})
        );
    }

    #[test]
    fn complex_keys_are_rejected() {
        assert!(load("? [a]\n: 1\n").unwrap_err().message.contains("keys"));
    }

    #[test]
    fn several_documents_are_all_returned() {
        let docs = load("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].start.line, 2);
    }
}
