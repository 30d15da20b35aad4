//! YAML with positions.
//!
//! Keelson parses YAML itself (on top of `saphyr-parser`'s event stream) into a
//! tree whose every node and key keeps its source span. That is what lets a
//! JSON Schema error at `/spec/apps/2/memory` point at line 31, column 15 of
//! the file, and what lets `keelson set-image` rewrite one scalar in place
//! without touching comments or formatting.
//!
//! The loader is also the place where hostile input is refused: duplicate
//! keys, alias bombs (alias expansion is budgeted), deep nesting, tabs used for
//! indentation, and oversized files. Merge keys (`<<`) are expanded as
//! kubectl reads them, or refused where readers disagree (see `merge`).

mod merge;

use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};
use serde_json::{Map, Number, Value as Json};

/// Limits the loader enforces on untrusted input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Most nodes that alias expansion may add to a document.
    pub max_alias_nodes: usize,
    /// Deepest accepted nesting of sequences and mappings.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_alias_nodes: 10_000,
            max_depth: 64,
        }
    }
}

/// A position in a source text: 1-based line and column (in characters) and
/// the 0-based character offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// 0-based offset, counted in characters.
    pub offset: usize,
}

/// A half-open range of source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First character.
    pub start: Pos,
    /// One past the last character.
    pub end: Pos,
}

impl Span {
    fn from_parser(span: saphyr_parser::Span) -> Span {
        Span {
            start: pos(span.start),
            end: pos(span.end),
        }
    }

    /// A zero-length span at `p`.
    pub fn point(p: Pos) -> Span {
        Span { start: p, end: p }
    }
}

fn pos(m: saphyr_parser::Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
        offset: m.index(),
    }
}

/// How a scalar was written, which decides how it resolves and how
/// `set-image` must rewrite it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Written without quotes.
    Plain,
    /// `'single quoted'`.
    SingleQuoted,
    /// `"double quoted"`.
    DoubleQuoted,
    /// `|` or `>` block scalar.
    Block,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or empty.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string, with how it was written.
    Str(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
}

/// A mapping entry: the key (always a string here) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key text.
    pub key: String,
    /// Where the key was written.
    pub key_span: Span,
    /// The value.
    pub value: Node,
}

/// A YAML node with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub span: Span,
}

/// A YAML error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// What the user can do about it.
    pub help: Option<String>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.span.start.line, self.span.start.col, self.message
        )
    }
}

impl std::error::Error for YamlError {}

impl YamlError {
    fn at(span: Span, message: impl Into<String>) -> Self {
        YamlError {
            message: message.into(),
            span,
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Parse every document in `text`.
pub fn parse_documents(text: &str, limits: Limits) -> Result<Vec<Node>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::at(
            Span::default(),
            format!(
                "file is {} bytes, over the {} byte limit",
                text.len(),
                limits.max_bytes
            ),
        )
        .help("split the file, or move bulky data out of the spec"));
    }
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: Vec::new(),
        alias_nodes: 0,
        limits,
        text,
        ascii: text.is_ascii(),
    };
    builder.stream()
}

/// Parse `text`, which must hold exactly one document.
pub fn parse_one(text: &str, limits: Limits) -> Result<Node, YamlError> {
    let mut docs = parse_documents(text, limits)?;
    match docs.len() {
        0 => Err(YamlError::at(
            Span::point(Pos {
                line: 1,
                col: 1,
                offset: 0,
            }),
            "file is empty",
        )
        .help("a spec file holds one YAML mapping with apiVersion, kind and spec")),
        1 => Ok(docs.remove(0)),
        _ => Err(YamlError::at(
            Span::point(docs[1].span.start),
            "file holds more than one YAML document",
        )
        .help("keep one document per spec file; raw manifests belong under manifests/")),
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: Vec<(usize, Node, usize)>,
    alias_nodes: usize,
    limits: Limits,
    text: &'a str,
    /// Character offsets equal byte offsets (the common case).
    ascii: bool,
}

type Ev<'a> = (Event<'a>, saphyr_parser::Span);

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<Ev<'a>, YamlError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(self.scan_error(e)),
            None => Err(YamlError::at(Span::default(), "unexpected end of YAML")),
        }
    }

    fn scan_error(&self, e: ScanError) -> YamlError {
        let mut p = pos(*e.marker());
        let line_text = self
            .text
            .lines()
            .nth(p.line.saturating_sub(1))
            .unwrap_or("");
        if let Some(tab) = line_text.chars().position(|c| c == '\t') {
            // Point at the tab itself, which is what the user must change.
            p.offset = (p.offset + 1).saturating_sub(p.col) + tab;
            p.col = tab + 1;
            let err = YamlError::at(Span::point(p), format!("invalid YAML: {}", e.info()));
            err.help("this line contains a tab; YAML indentation must use spaces")
        } else {
            YamlError::at(Span::point(p), format!("invalid YAML: {}", e.info()))
        }
    }

    fn stream(&mut self) -> Result<Vec<Node>, YamlError> {
        let mut docs = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    self.anchors.clear();
                    self.alias_nodes = 0;
                    let (ev, span) = self.next()?;
                    let node = self.node(ev, span, 0)?;
                    docs.push(node);
                }
                other => {
                    return Err(YamlError::at(
                        Span::from_parser(span),
                        format!("unexpected YAML event {other:?}"),
                    ));
                }
            }
        }
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        span: saphyr_parser::Span,
        depth: usize,
    ) -> Result<Node, YamlError> {
        let span = Span::from_parser(span);
        if depth > self.limits.max_depth {
            return Err(YamlError::at(
                span,
                format!("nesting deeper than {} levels", self.limits.max_depth),
            ));
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(&text, style, tag.as_deref());
                let span = match style {
                    // The parser's span for a quoted scalar runs on to the
                    // next token; `set-image` needs exactly the quoted text.
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        quoted_span(self.text, self.ascii, span.start)
                    }
                    _ => span,
                };
                let node = Node { value, span };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let end = loop {
                    let (ev, s) = self.next()?;
                    if let Event::SequenceEnd = ev {
                        break Span::from_parser(s).end;
                    }
                    items.push(self.node(ev, s, depth + 1)?);
                };
                let node = Node {
                    value: Value::Seq(items),
                    span: Span {
                        start: span.start,
                        end: end.max(span.end),
                    },
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<Entry> = Vec::new();
                let mut seen: std::collections::HashMap<String, usize> =
                    std::collections::HashMap::new();
                // The `<<` entry: its key span, how many entries preceded it, its value.
                let mut merge: Option<(Span, usize, Node)> = None;
                let end = loop {
                    let (ev, s) = self.next()?;
                    if let Event::MappingEnd = ev {
                        break Span::from_parser(s).end;
                    }
                    let key_node = self.node(ev, s, depth + 1)?;
                    let key = match &key_node.value {
                        Value::Str(k, _) => k.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Null => "null".to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(YamlError::at(
                                key_node.span,
                                "mapping keys must be plain strings, not sequences or mappings",
                            ));
                        }
                    };
                    let (ev, s) = self.next()?;
                    let value = self.node(ev, s, depth + 1)?;
                    if key == "<<" {
                        if !matches!(key_node.value, Value::Str(_, Style::Plain)) {
                            return Err(merge::quoted_merge_key(key_node.span));
                        }
                        if let Some((first, _, _)) = &merge {
                            return Err(YamlError::at(
                                key_node.span,
                                format!(
                                    "duplicate key `<<` (first defined at line {}, column {})",
                                    first.start.line, first.start.col
                                ),
                            )
                            .help("merge several mappings with one key: `<<: [*a, *b]`"));
                        }
                        merge = Some((key_node.span, entries.len(), value));
                        continue;
                    }
                    let duplicate = if entries.len() < 16 {
                        entries.iter().find(|e| e.key == key)
                    } else {
                        // Large mappings (a pipeline of a thousand apps):
                        // look keys up in an index instead of scanning.
                        seen.get(key.as_str()).map(|&i| &entries[i])
                    };
                    if let Some(prev) = duplicate {
                        return Err(YamlError::at(
                            key_node.span,
                            format!(
                                "duplicate key `{key}` (first defined at line {}, column {})",
                                prev.key_span.start.line, prev.key_span.start.col
                            ),
                        )
                        .help("YAML keeps only one of them; remove or rename one"));
                    }
                    if entries.len() >= 15 {
                        if seen.is_empty() {
                            seen.extend(
                                entries.iter().enumerate().map(|(i, e)| (e.key.clone(), i)),
                            );
                        }
                        seen.insert(key.clone(), entries.len());
                    }
                    entries.push(Entry {
                        key,
                        key_span: key_node.span,
                        value,
                    });
                };
                if let Some((key, at, value)) = merge {
                    merge::expand(&mut entries, at, key, value)?;
                }
                let node = Node {
                    value: Value::Map(entries),
                    span: Span {
                        start: span.start,
                        end: end.max(span.end),
                    },
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(id) => {
                let Some((_, target, count)) = self.anchors.iter().rev().find(|(a, _, _)| *a == id)
                else {
                    return Err(YamlError::at(span, "alias refers to an unknown anchor"));
                };
                self.alias_nodes = self.alias_nodes.saturating_add(*count);
                if self.alias_nodes > self.limits.max_alias_nodes {
                    return Err(YamlError::at(
                        span,
                        format!(
                            "YAML aliases expand to more than {} nodes (an alias bomb?)",
                            self.limits.max_alias_nodes
                        ),
                    )
                    .help("write the values out, or use fewer nested aliases"));
                }
                let mut node = target.clone();
                node.span = span;
                Ok(node)
            }
            other => Err(YamlError::at(
                span,
                format!("unexpected YAML event {other:?}"),
            )),
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone(), node.count()));
        }
    }
}

fn quoted_span(text: &str, ascii: bool, start: Pos) -> Span {
    let from = if ascii {
        start.offset
    } else {
        byte_offset(text, start.offset)
    };
    let bytes = text.as_bytes();
    let quote = bytes.get(from).copied().unwrap_or(b'"');
    let mut i = from + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => {
                i += 1;
                break;
            }
            _ => i += 1,
        }
    }
    let inner = &text[from..i.min(text.len())];
    let chars = inner.chars().count();
    let newlines = inner.matches('\n').count();
    let col = if newlines == 0 {
        start.col + chars
    } else {
        inner.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1
    };
    Span {
        start,
        end: Pos {
            line: start.line + newlines,
            col,
            offset: start.offset + chars,
        },
    }
}

fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&saphyr_parser::Tag>) -> Value {
    let style = match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::SingleQuoted,
        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        _ => Style::Block,
    };
    if let Some(tag) = tag
        && (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:")
        && tag.suffix == "str"
    {
        return Value::Str(text.to_string(), style);
    }
    if style != Style::Plain {
        return Value::Str(text.to_string(), style);
    }
    resolve_plain(text)
}

/// Resolve a plain scalar with the YAML 1.2 core schema (so `no` and `on`
/// stay strings, unlike YAML 1.1).
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Int(i);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(i);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Int(i);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_string(), Style::Plain)
}

fn looks_like_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let int_ok = int.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()));
    let has_digits = !int.is_empty() || frac.is_some_and(|f| !f.is_empty());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    int_ok && frac_ok && has_digits && exp_ok && (frac.is_some() || exp.is_some())
}

impl Node {
    /// Number of nodes in this subtree (what an alias to it costs).
    pub fn count(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries.iter().map(|e| e.value.count()).sum(),
            _ => 0,
        }
    }

    /// Convert to JSON (mapping order is kept).
    pub fn to_json(&self) -> Json {
        match &self.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Number((*i).into()),
            Value::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Str(s, _) => Json::String(s.clone()),
            Value::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                let mut map = Map::new();
                for e in entries {
                    map.insert(e.key.clone(), e.value.to_json());
                }
                Json::Object(map)
            }
        }
    }

    /// The entry with key `key`, if this is a mapping that has it.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The value at key `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The string value, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s, _) => Some(s),
            _ => None,
        }
    }

    /// The node a JSON pointer (RFC 6901) names exactly, if it exists.
    pub fn pointer(&self, pointer: &str) -> Option<&Node> {
        let mut node = self;
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            node = match &node.value {
                Value::Map(entries) => &entries.iter().find(|e| e.key == token)?.value,
                Value::Seq(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// A null node at no position, with nothing under it.
    pub fn empty() -> Node {
        Node {
            value: Value::Null,
            span: Span::default(),
        }
    }

    /// Where a JSON pointer (RFC 6901) points. `key_of_last` asks for the span
    /// of the last key rather than of its value, which reads better for
    /// "unknown field" errors. Falls back to the deepest node that exists.
    pub fn locate(&self, pointer: &str, key_of_last: bool) -> Span {
        let mut node = self;
        let mut span = self.span;
        let tokens: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            match &node.value {
                Value::Map(entries) => match entries.iter().find(|e| &e.key == token) {
                    Some(e) => {
                        span = if last && key_of_last {
                            e.key_span
                        } else {
                            e.value.span
                        };
                        node = &e.value;
                    }
                    None => return span,
                },
                Value::Seq(items) => match token.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    Some(item) => {
                        span = item.span;
                        node = item;
                    }
                    None => return span,
                },
                _ => return span,
            }
        }
        span
    }
}

/// The 1-based line and column of byte `offset` in `text`, for errors found
/// before YAML parsing (bad UTF-8, tabs).
pub fn line_col_of_byte(text: &[u8], offset: usize) -> Pos {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Pos {
        line,
        col,
        offset: String::from_utf8_lossy(before).chars().count(),
    }
}

/// Byte offset of character offset `chars` in `text`.
pub fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        parse_one(text, Limits::default()).unwrap()
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let n = one("a: 1\nb:\n  c: hello\n  d: [1, 2]\n");
        let c = n.get("b").unwrap().entry("c").unwrap();
        assert_eq!((c.key_span.start.line, c.key_span.start.col), (3, 3));
        assert_eq!((c.value.span.start.line, c.value.span.start.col), (3, 6));
        let span = n.locate("/b/d/1", false);
        assert_eq!((span.start.line, span.start.col), (4, 10));
        let key = n.locate("/b/c", true);
        assert_eq!((key.start.line, key.start.col), (3, 3));
    }

    #[test]
    fn resolves_yaml_1_2_core_scalars() {
        let n = one("a: no\nb: on\nc: 0x10\nd: 1.5\ne: '1'\nf: ~\ng: 1e3\nh: 1.2.3\n");
        let j = n.to_json();
        assert_eq!(j["a"], "no");
        assert_eq!(j["b"], "on");
        assert_eq!(j["c"], 16);
        assert_eq!(j["d"], 1.5);
        assert_eq!(j["e"], "1");
        assert_eq!(j["f"], Json::Null);
        assert_eq!(j["g"], 1000.0);
        assert_eq!(j["h"], "1.2.3");
    }

    #[test]
    fn refuses_duplicate_keys_with_both_positions() {
        let e = parse_one("a: 1\nb: 2\na: 3\n", Limits::default()).unwrap_err();
        assert_eq!((e.span.start.line, e.span.start.col), (3, 1));
        assert!(
            e.message.contains("first defined at line 1, column 1"),
            "{}",
            e.message
        );
    }

    #[test]
    fn refuses_alias_bombs() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse_one(&text, Limits::default()).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
        // A modest alias is fine.
        let n = one("base: &b {x: 1}\nother: *b\n");
        assert_eq!(n.to_json()["other"]["x"], 1);
    }

    #[test]
    fn refuses_oversized_input_and_deep_nesting() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(
            parse_one("a: 123456789012", limits)
                .unwrap_err()
                .message
                .contains("byte limit")
        );
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(
            parse_one(&deep, Limits::default())
                .unwrap_err()
                .message
                .contains("nesting")
        );
    }

    #[test]
    fn tab_indentation_gets_a_hint() {
        let e = parse_one("a:\n\tb: 1\n", Limits::default()).unwrap_err();
        assert_eq!(e.span.start.line, 2);
        assert!(e.help.unwrap().contains("tab"));
    }

    #[test]
    fn scalar_spans_cover_the_written_text() {
        let text = "tag: \"1.2.3\" # comment\nplain: abc\n";
        let n = one(text);
        let s = n.get("tag").unwrap().span;
        let start = byte_offset(text, s.start.offset);
        let end = byte_offset(text, s.end.offset);
        assert_eq!(&text[start..end], "\"1.2.3\"");
        let p = n.get("plain").unwrap().span;
        assert_eq!(
            &text[byte_offset(text, p.start.offset)..byte_offset(text, p.end.offset)],
            "abc"
        );
    }
}
