//! The function's IAM permissions, read from `template.yaml`: least privilege, enforced.
//!
//! The function only creates objects (conditionally), reads them and lists its prefix. It must
//! never be able to delete a version, change or bypass an Object Lock retention, or place a
//! legal hold (README, "What the function is allowed to do"). This test reads every IAM
//! statement in the template and fails if a forbidden or wildcard action is granted, if the S3
//! actions granted are not exactly the expected set, or if KMS actions escape the `UseKms`
//! condition. A second test mutates the template in memory to show that each check can fail.
//!
//! There is no YAML parser among the dependencies (serde_yaml is unmaintained and fails
//! `cargo audit --deny warnings`), so this file carries a small one for the YAML that
//! CloudFormation templates use: block mappings and sequences, flow collections, quoted and
//! plain scalars, block scalars, comments and the short-form intrinsic function tags. It fails
//! closed: a line it cannot place is an error, and an action-like value that it cannot
//! attribute to a policy statement is a violation, not a pass.

use std::collections::{BTreeSet, HashMap};

/// Never granted to the function (compared case-insensitively, as IAM does).
const FORBIDDEN: &[&str] = &[
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
];

/// Exactly the S3 actions the function is granted. PutObject covers CreateMultipartUpload,
/// UploadPart and CompleteMultipartUpload; GetObject covers HeadObject; GetObjectVersion is
/// HeadObject with a VersionId; ListBucket is ListObjectsV2 of an attempt's folder.
const EXPECTED_S3: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListBucket",
    "s3:PutObject",
];

/// KMS actions allowed, and only inside `!If [UseKms, <here>, ...]`.
const EXPECTED_KMS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];
const KMS_CONDITION: &str = "UseKms";

/// Scalars that look like `service:Name` but are not actions (an SSE algorithm name).
const NOT_ACTIONS: &[&str] = &["aws:kms"];

fn template() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// A small YAML reader for CloudFormation templates.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Scalar {
        tag: Option<String>,
        text: String,
        line: usize,
        /// A `|` or `>` block scalar (descriptions): prose, never an action list item.
        block: bool,
    },
    Seq {
        tag: Option<String>,
        items: Vec<Node>,
        line: usize,
    },
    Map {
        tag: Option<String>,
        entries: Vec<(String, Node)>,
        line: usize,
    },
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
        }
    }

    fn tag(&self) -> Option<&str> {
        match self {
            Node::Scalar { tag, .. } | Node::Seq { tag, .. } | Node::Map { tag, .. } => {
                tag.as_deref()
            }
        }
    }

    fn set_tag(&mut self, new: Option<String>) {
        if new.is_none() {
            return;
        }
        match self {
            Node::Scalar { tag, .. } | Node::Seq { tag, .. } | Node::Map { tag, .. } => *tag = new,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// `!If [cond, a, b]` or `{Fn::If: [cond, a, b]}`: (condition name, then, else).
    fn as_if(&self) -> Option<(&Node, &Node, &Node)> {
        let items = match self {
            Node::Seq {
                tag: Some(t),
                items,
                ..
            } if t == "!If" => items,
            Node::Map { entries, .. } if entries.len() == 1 && entries[0].0 == "Fn::If" => {
                match &entries[0].1 {
                    Node::Seq { items, .. } => items,
                    _ => return None,
                }
            }
            _ => return None,
        };
        match items.as_slice() {
            [c, a, b] => Some((c, a, b)),
            _ => None,
        }
    }

    /// `!Ref AWS::NoValue` or `{Ref: AWS::NoValue}`.
    fn is_no_value(&self) -> bool {
        match self {
            Node::Scalar {
                tag: Some(t), text, ..
            } => t == "!Ref" && text == "AWS::NoValue",
            Node::Map { entries, .. } => {
                entries.len() == 1
                    && entries[0].0 == "Ref"
                    && entries[0].1.scalar() == Some("AWS::NoValue")
            }
            _ => false,
        }
    }
}

struct Line {
    no: usize,
    indent: usize,
    text: String,
}

/// Removes a trailing comment: `#` at the start or after whitespace, outside quotes.
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(b'"') if c == b'\\' => i += 1,
            Some(q) if c == q => {
                if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None => {
                let after_space = i == 0 || b[i - 1].is_ascii_whitespace();
                if c == b'#' && after_space {
                    return &s[..i];
                }
                if (c == b'"' || c == b'\'')
                    && (after_space || matches!(b[i - 1], b'[' | b'{' | b','))
                {
                    quote = Some(c);
                }
            }
        }
        i += 1;
    }
    s
}

/// The end (exclusive) of the quoted scalar starting at `s[0]`.
fn quoted_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let q = b[0];
    let mut i = 1;
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

fn unquote(s: &str) -> String {
    let inner = &s[1..s.len() - 1];
    if s.starts_with('\'') {
        inner.replace("''", "'")
    } else {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}

fn is_seq_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: rest` (block mapping entry) -> (key, rest).
fn split_key(text: &str) -> Option<(String, String)> {
    if text.starts_with('"') || text.starts_with('\'') {
        let end = quoted_end(text)?;
        let rest = text[end..].strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        return Some((unquote(&text[..end]), rest.trim().to_string()));
    }
    if is_seq_item(text) || text.starts_with(['[', '{', '!', '&', '*', '|', '>', '%', '@', '`']) {
        return None;
    }
    let b = text.as_bytes();
    for i in 0..b.len() {
        if b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ') {
            return Some((
                text[..i].trim().to_string(),
                text[i + 1..].trim().to_string(),
            ));
        }
    }
    None
}

/// `!Tag rest` -> (Some("!Tag"), rest).
fn split_tag(text: &str) -> (Option<String>, &str) {
    if !text.starts_with('!') {
        return (None, text);
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == '[' || c == '{')
        .unwrap_or(text.len());
    (Some(text[..end].to_string()), text[end..].trim_start())
}

fn is_block_indicator(text: &str) -> bool {
    (text.starts_with('|') || text.starts_with('>'))
        && text[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == '+' || c == '-')
}

/// For a line that starts a block scalar, the indentation its content must exceed.
fn block_scalar_owner(indent: usize, text: &str) -> Option<usize> {
    let mut col = indent;
    let mut t = text;
    let mut dash_col = None;
    while is_seq_item(t) {
        dash_col = Some(col);
        let rest = &t[1..];
        let trimmed = rest.trim_start();
        col += 1 + (rest.len() - trimmed.len());
        t = trimmed;
    }
    let (owner, value) = match split_key(t) {
        Some((_, rest)) => (col, rest),
        None => (dash_col?, t.to_string()),
    };
    let (_, value) = split_tag(&value);
    is_block_indicator(value).then_some(owner)
}

fn balanced(s: &str) -> bool {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => match quoted_end(&s[i..]) {
                Some(n) => i += n - 1,
                None => return false,
            },
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    depth <= 0
}

struct Parser {
    lines: Vec<Line>,
    blocks: HashMap<usize, String>,
    i: usize,
}

impl Parser {
    fn new(src: &str) -> Result<Parser, String> {
        let raw: Vec<&str> = src.lines().collect();
        let mut lines = Vec::new();
        let mut blocks = HashMap::new();
        let mut k = 0;
        while k < raw.len() {
            let line = raw[k];
            let no = k + 1;
            k += 1;
            let body = line.trim_start_matches(' ');
            let indent = line.len() - body.len();
            if body.starts_with('\t') {
                return Err(format!("line {no}: tab in indentation"));
            }
            let text = strip_comment(body).trim_end().to_string();
            if text.is_empty() || text == "---" {
                continue;
            }
            if let Some(owner) = block_scalar_owner(indent, &text) {
                let mut content = Vec::new();
                while k < raw.len() {
                    let l = raw[k];
                    let ind = l.len() - l.trim_start_matches(' ').len();
                    if l.trim().is_empty() || ind > owner {
                        content.push(l.trim());
                        k += 1;
                    } else {
                        break;
                    }
                }
                blocks.insert(no, content.join(" ").trim().to_string());
            }
            lines.push(Line { no, indent, text });
        }
        Ok(Parser {
            lines,
            blocks,
            i: 0,
        })
    }

    fn parse_document(mut self) -> Result<Node, String> {
        if self.lines.is_empty() {
            return Err("empty template".into());
        }
        let root = self.parse_node(-1)?;
        if let Some(l) = self.lines.get(self.i) {
            return Err(format!(
                "line {}: unexpected indentation or structure",
                l.no
            ));
        }
        Ok(root)
    }

    fn parse_node(&mut self, owner: isize) -> Result<Node, String> {
        let (no, indent, text) = {
            let l = &self.lines[self.i];
            (l.no, l.indent, l.text.clone())
        };
        if is_seq_item(&text) {
            return self.parse_seq(indent);
        }
        if split_key(&text).is_some() {
            return self.parse_map(indent);
        }
        self.i += 1;
        self.parse_inline(&text, no, owner, false)
    }

    fn parse_seq(&mut self, indent: usize) -> Result<Node, String> {
        let line = self.lines[self.i].no;
        let mut items = Vec::new();
        while let Some(l) = self.lines.get(self.i) {
            if l.indent != indent || !is_seq_item(&l.text) {
                break;
            }
            let rest = l.text[1..].to_string();
            let trimmed = rest.trim_start();
            if trimmed.is_empty() {
                let no = l.no;
                self.i += 1;
                match self.lines.get(self.i) {
                    Some(n) if n.indent > indent => items.push(self.parse_node(indent as isize)?),
                    _ => items.push(Node::Scalar {
                        tag: None,
                        text: String::new(),
                        line: no,
                        block: false,
                    }),
                }
            } else {
                // The item's content becomes a line of its own, at its own column.
                let l = &mut self.lines[self.i];
                l.indent = indent + 1 + (rest.len() - trimmed.len());
                l.text = trimmed.to_string();
                items.push(self.parse_node(indent as isize)?);
            }
        }
        Ok(Node::Seq {
            tag: None,
            items,
            line,
        })
    }

    fn parse_map(&mut self, indent: usize) -> Result<Node, String> {
        let line = self.lines[self.i].no;
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(l) = self.lines.get(self.i) {
            if l.indent != indent {
                break;
            }
            let Some((key, rest)) = split_key(&l.text) else {
                return Err(format!("line {}: expected `key: value` in a mapping", l.no));
            };
            let no = l.no;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(format!("line {no}: duplicate key {key}"));
            }
            self.i += 1;
            let value = self.parse_inline(&rest, no, indent as isize, true)?;
            entries.push((key, value));
        }
        Ok(Node::Map {
            tag: None,
            entries,
            line,
        })
    }

    /// The value written on a line after `key:` or `- ` (`owner` is the key's or dash's
    /// column), with what follows it on deeper lines.
    fn parse_inline(
        &mut self,
        text: &str,
        no: usize,
        owner: isize,
        after_key: bool,
    ) -> Result<Node, String> {
        let (tag, rest) = split_tag(text);
        if rest.is_empty() {
            if let Some(n) = self.lines.get(self.i) {
                let deeper = n.indent as isize > owner;
                let compact_seq = after_key && n.indent as isize == owner && is_seq_item(&n.text);
                if deeper || compact_seq {
                    let mut child = if compact_seq {
                        self.parse_seq(n.indent)?
                    } else {
                        self.parse_node(owner)?
                    };
                    child.set_tag(tag);
                    return Ok(child);
                }
            }
            return Ok(Node::Scalar {
                tag,
                text: String::new(),
                line: no,
                block: false,
            });
        }
        if is_block_indicator(rest) {
            let text = self.blocks.get(&no).cloned().unwrap_or_default();
            return Ok(Node::Scalar {
                tag,
                text,
                line: no,
                block: true,
            });
        }
        let mut value = rest.to_string();
        // Continuation lines: multi-line flow collections, quoted and plain scalars.
        let needs_more = |v: &str| {
            if v.starts_with('[') || v.starts_with('{') {
                !balanced(v)
            } else if v.starts_with('"') || v.starts_with('\'') {
                quoted_end(v).is_none()
            } else {
                false
            }
        };
        while let Some(n) = self.lines.get(self.i) {
            let plain = !value.starts_with(['[', '{', '"', '\'']);
            if n.indent as isize <= owner || !(needs_more(&value) || plain) {
                break;
            }
            value.push(' ');
            value.push_str(&n.text);
            self.i += 1;
        }
        if needs_more(&value) {
            return Err(format!(
                "line {no}: unterminated flow collection or quoted scalar"
            ));
        }
        let mut node = if value.starts_with(['[', '{', '"', '\'']) {
            let mut flow = Flow {
                s: value.as_bytes(),
                src: &value,
                i: 0,
                line: no,
            };
            let node = flow.value()?;
            flow.skip_ws();
            if flow.i != value.len() {
                return Err(format!("line {no}: unexpected text after a value: {value}"));
            }
            node
        } else {
            Node::Scalar {
                tag: None,
                text: value,
                line: no,
                block: false,
            }
        };
        node.set_tag(tag);
        Ok(node)
    }
}

/// Flow collections: `[a, "b", !Ref c]`, `{k: v}`, nested.
struct Flow<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    line: usize,
}

impl Flow<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, what: &str) -> String {
        format!("line {}: {what} in flow value {}", self.line, self.src)
    }

    fn value(&mut self) -> Result<Node, String> {
        self.skip_ws();
        let mut tag = None;
        if self.peek() == Some(b'!') {
            let start = self.i;
            while self.i < self.s.len()
                && !self.s[self.i].is_ascii_whitespace()
                && !b"[]{},".contains(&self.s[self.i])
            {
                self.i += 1;
            }
            tag = Some(self.src[start..self.i].to_string());
            self.skip_ws();
        }
        let mut node = match self.peek() {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        None => return Err(self.err("unterminated [")),
                        _ => {}
                    }
                    items.push(self.value()?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return Err(self.err("expected , or ]")),
                    }
                }
                Node::Seq {
                    tag: None,
                    items,
                    line: self.line,
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        None => return Err(self.err("unterminated {")),
                        _ => {}
                    }
                    let key = self.scalar(true)?;
                    self.skip_ws();
                    let value = if self.peek() == Some(b':') {
                        self.i += 1;
                        self.value()?
                    } else {
                        Node::Scalar {
                            tag: None,
                            text: String::new(),
                            line: self.line,
                            block: false,
                        }
                    };
                    entries.push((key, value));
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(self.err("expected , or }")),
                    }
                }
                Node::Map {
                    tag: None,
                    entries,
                    line: self.line,
                }
            }
            _ => Node::Scalar {
                tag: None,
                text: self.scalar(false)?,
                line: self.line,
                block: false,
            },
        };
        node.set_tag(tag);
        Ok(node)
    }

    /// A quoted or plain scalar; a mapping key stops at `:` followed by a space or `,}`.
    fn scalar(&mut self, key: bool) -> Result<String, String> {
        if matches!(self.peek(), Some(b'"' | b'\'')) {
            let end =
                quoted_end(&self.src[self.i..]).ok_or_else(|| self.err("unterminated quote"))?;
            let text = unquote(&self.src[self.i..self.i + end]);
            self.i += end;
            return Ok(text);
        }
        let start = self.i;
        while let Some(c) = self.peek() {
            if b",[]{}".contains(&c) {
                break;
            }
            if key && c == b':' && matches!(self.s.get(self.i + 1), None | Some(b' ' | b',' | b'}'))
            {
                break;
            }
            self.i += 1;
        }
        Ok(self.src[start..self.i].trim().to_string())
    }
}

fn parse(src: &str) -> Result<Node, String> {
    Parser::new(src)?.parse_document()
}

// ---------------------------------------------------------------------------------------------
// Policy analysis.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Action {
    name: String,
    line: usize,
    /// Enclosing `!If` branches, outermost first: (condition, true for the "then" branch).
    conditions: Vec<(String, bool)>,
}

#[derive(Debug)]
struct Statement {
    line: usize,
    sid: String,
    effect: Option<String>,
    actions: Vec<Action>,
    not_actions: Vec<Action>,
    resource: Option<Node>,
    condition: Option<Node>,
}

#[derive(Default)]
struct Analysis {
    statements: Vec<Statement>,
    violations: Vec<String>,
}

fn is_action_syntax(t: &str) -> bool {
    if t == "*" {
        return true;
    }
    let Some((service, name)) = t.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && !name.is_empty()
        && service
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'*' || c == b'?')
}

fn is_wildcard(action: &str) -> bool {
    action.contains('*') || action.contains('?')
}

fn declared_conditions(root: &Node) -> BTreeSet<String> {
    match root.get("Conditions") {
        Some(Node::Map { entries, .. }) => entries.iter().map(|(k, _)| k.clone()).collect(),
        _ => BTreeSet::new(),
    }
}

fn describe(st: &Statement) -> String {
    if st.sid.is_empty() {
        format!("the statement at template.yaml line {}", st.line)
    } else {
        format!("statement {} (template.yaml line {})", st.sid, st.line)
    }
}

impl Analysis {
    fn new(root: &Node) -> Analysis {
        let mut a = Analysis::default();
        let conds = declared_conditions(root);
        a.walk(root, &mut Vec::new(), &conds);
        a.check_policy_forms(root);
        a.cross_check(root);
        a
    }

    fn walk(&mut self, node: &Node, path: &mut Vec<(String, bool)>, conds: &BTreeSet<String>) {
        if let Some((c, then, other)) = node.as_if() {
            let name = c.scalar().unwrap_or_default().to_string();
            path.push((name.clone(), true));
            self.walk(then, path, conds);
            path.pop();
            path.push((name, false));
            self.walk(other, path, conds);
            path.pop();
            return;
        }
        match node {
            Node::Map { entries, line, .. } => {
                if node.get("Action").is_some() || node.get("NotAction").is_some() {
                    self.statement(node, *line, path, conds);
                }
                for (_, v) in entries {
                    self.walk(v, path, conds);
                }
            }
            Node::Seq { items, .. } => {
                for item in items {
                    self.walk(item, path, conds);
                }
            }
            Node::Scalar { .. } => {}
        }
    }

    fn statement(
        &mut self,
        node: &Node,
        line: usize,
        path: &[(String, bool)],
        conds: &BTreeSet<String>,
    ) {
        let sid = node
            .get("Sid")
            .and_then(Node::scalar)
            .unwrap_or_default()
            .to_string();
        let mut st = Statement {
            line,
            sid,
            effect: None,
            actions: Vec::new(),
            not_actions: Vec::new(),
            resource: node
                .get("Resource")
                .or_else(|| node.get("NotResource"))
                .cloned(),
            condition: node.get("Condition").cloned(),
        };
        match node.get("Effect") {
            Some(Node::Scalar {
                tag: None, text, ..
            }) if text == "Allow" || text == "Deny" => {
                st.effect = Some(text.clone());
            }
            Some(other) => self.violations.push(format!(
                "{}: Effect must be a literal Allow or Deny (line {})",
                describe(&st),
                other.line()
            )),
            None => self
                .violations
                .push(format!("{} has no Effect", describe(&st))),
        }
        if let Some(v) = node.get("Action") {
            let mut out = Vec::new();
            self.actions(v, &mut path.to_vec(), conds, &mut out);
            st.actions = out;
        }
        if let Some(v) = node.get("NotAction") {
            let mut out = Vec::new();
            self.actions(v, &mut path.to_vec(), conds, &mut out);
            st.not_actions = out;
        }
        self.statements.push(st);
    }

    /// Every action named under an Action/NotAction key, through lists and `!If`.
    fn actions(
        &mut self,
        node: &Node,
        path: &mut Vec<(String, bool)>,
        conds: &BTreeSet<String>,
        out: &mut Vec<Action>,
    ) {
        if node.is_no_value() {
            return;
        }
        if let Some((c, then, other)) = node.as_if() {
            let name = c.scalar().unwrap_or_default().to_string();
            if !conds.contains(&name) {
                self.violations.push(format!(
                    "line {}: `{name}` in an !If under Action is not a declared condition",
                    c.line()
                ));
            }
            path.push((name.clone(), true));
            self.actions(then, path, conds, out);
            path.pop();
            path.push((name, false));
            self.actions(other, path, conds, out);
            path.pop();
            return;
        }
        match node {
            Node::Seq {
                tag: None, items, ..
            } => {
                for item in items {
                    self.actions(item, path, conds, out);
                }
            }
            Node::Scalar {
                tag: None,
                text,
                line,
                ..
            } if is_action_syntax(text.trim()) => {
                out.push(Action {
                    name: text.trim().to_string(),
                    line: *line,
                    conditions: path.clone(),
                });
            }
            other => self.violations.push(format!(
                "line {}: a value under Action is not a literal IAM action (or list of them) \
                 that this test can read: {other:?}",
                other.line()
            )),
        }
    }

    /// Permissions that do not show up as Action lists: SAM policy templates, managed
    /// policies, roles defined elsewhere, connectors. The function's policies must be inline
    /// documents so that this test sees every action.
    fn check_policy_forms(&mut self, root: &Node) {
        fn policy_items<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
            if node.is_no_value() {
                return;
            }
            if let Some((_, a, b)) = node.as_if() {
                policy_items(a, out);
                policy_items(b, out);
                return;
            }
            match node {
                Node::Seq {
                    tag: None, items, ..
                } => {
                    for i in items {
                        policy_items(i, out);
                    }
                }
                other => out.push(other),
            }
        }
        fn any_key<'n>(node: &'n Node, key: &str, out: &mut Vec<&'n Node>) {
            match node {
                Node::Map { entries, .. } => {
                    for (k, v) in entries {
                        if k.eq_ignore_ascii_case(key) {
                            out.push(v);
                        }
                        any_key(v, key, out);
                    }
                }
                Node::Seq { items, .. } => items.iter().for_each(|i| any_key(i, key, out)),
                Node::Scalar { .. } => {}
            }
        }
        for key in ["ManagedPolicyArns", "Connectors", "PermissionsBoundary"] {
            let mut found = Vec::new();
            any_key(root, key, &mut found);
            for v in found {
                self.violations.push(format!(
                    "line {}: `{key}` grants or bounds permissions this test cannot read; \
                     give the function inline policy statements only",
                    v.line()
                ));
            }
        }
        let Some(Node::Map { entries, .. }) = root.get("Resources") else {
            self.violations
                .push("template.yaml has no Resources mapping".into());
            return;
        };
        for (name, res) in entries {
            let ty = res.get("Type").and_then(Node::scalar).unwrap_or_default();
            if ty == "AWS::Serverless::Connector" {
                self.violations.push(format!(
                    "resource {name} (line {}): connectors grant permissions this test cannot read",
                    res.line()
                ));
            }
            if ty != "AWS::Serverless::Function" && ty != "AWS::Lambda::Function" {
                continue;
            }
            let Some(props) = res.get("Properties") else {
                continue;
            };
            if let Some(role) = props.get("Role") {
                self.violations.push(format!(
                    "function {name}: Role (line {}) points at a role defined elsewhere; its \
                     permissions must be the inline Policies this test reads",
                    role.line()
                ));
            }
            let Some(policies) = props.get("Policies") else {
                continue;
            };
            let mut items = Vec::new();
            policy_items(policies, &mut items);
            for item in items {
                if item.get("Statement").is_none() {
                    self.violations.push(format!(
                        "function {name}: the Policies item at line {} is not an inline policy \
                         document (Version/Statement); managed policies and SAM policy \
                         templates grant actions this test cannot see",
                        item.line()
                    ));
                }
            }
        }
    }

    /// Fails closed: every scalar that looks like an action must be one this analysis read
    /// from an Action list, and no scalar anywhere may name a forbidden action.
    fn cross_check(&mut self, root: &Node) {
        let read: BTreeSet<(usize, String)> = self
            .statements
            .iter()
            .flat_map(|s| s.actions.iter().chain(&s.not_actions))
            .map(|a| (a.line, a.name.clone()))
            .collect();
        let mut scalars = Vec::new();
        fn collect<'n>(node: &'n Node, out: &mut Vec<(usize, &'n str)>) {
            match node {
                Node::Scalar {
                    text,
                    line,
                    block: false,
                    ..
                } => out.push((*line, text)),
                Node::Scalar { block: true, .. } => {}
                Node::Seq { items, .. } => items.iter().for_each(|i| collect(i, out)),
                Node::Map { entries, .. } => entries.iter().for_each(|(_, v)| collect(v, out)),
            }
        }
        collect(root, &mut scalars);
        for (line, text) in scalars {
            let t = text.trim();
            if read.contains(&(line, t.to_string())) {
                continue;
            }
            if t != "*" && is_action_syntax(t) && !NOT_ACTIONS.contains(&t) {
                self.violations.push(format!(
                    "line {line}: `{t}` looks like an IAM action but is not in an Action list \
                     this test can read (if it is not an action, add it to NOT_ACTIONS)"
                ));
                continue;
            }
            let lower = t.to_ascii_lowercase();
            if lower.contains("\"action\"") || lower.contains("\"notaction\"") {
                self.violations.push(format!(
                    "line {line}: a policy written as a JSON string; write it as YAML so that \
                     this test can read its actions"
                ));
            }
            for f in FORBIDDEN {
                if lower.contains(&f.to_ascii_lowercase()) {
                    self.violations.push(format!(
                        "line {line}: the value `{t}` names the forbidden action {f} outside \
                         an Action list this test can read"
                    ));
                }
            }
        }
    }
}

fn scalars_of(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    fn go(node: &Node, out: &mut Vec<String>) {
        match node {
            Node::Scalar { text, .. } => out.push(text.clone()),
            Node::Seq { items, .. } => items.iter().for_each(|i| go(i, out)),
            Node::Map { entries, .. } => entries.iter().for_each(|(_, v)| go(v, out)),
        }
    }
    go(node, &mut out);
    out
}

/// All least-privilege violations in a template's text; empty means it passes.
fn violations(src: &str) -> Vec<String> {
    let root = match parse(src) {
        Ok(root) => root,
        Err(e) => return vec![format!("template.yaml could not be read by this test: {e}")],
    };
    let mut a = Analysis::new(&root);
    let mut v = std::mem::take(&mut a.violations);
    let mut granted_s3 = BTreeSet::new();

    for st in &a.statements {
        if st.effect.as_deref() == Some("Deny") {
            continue; // A Deny only takes permissions away (e.g. the bucket's TLS-only rule).
        }
        let who = describe(st);
        for na in &st.not_actions {
            v.push(format!(
                "{who}: NotAction `{}` in an Allow statement grants every other action",
                na.name
            ));
        }
        if st.actions.is_empty() && st.not_actions.is_empty() {
            v.push(format!(
                "{who}: Allow statement with no action this test can read"
            ));
        }
        for act in &st.actions {
            let name = &act.name;
            if let Some(f) = FORBIDDEN.iter().find(|f| f.eq_ignore_ascii_case(name)) {
                v.push(format!(
                    "forbidden action `{name}` ({f}) granted at template.yaml line {} in {who}: \
                     the function must never delete versions, change or bypass Object Lock \
                     retention, or place legal holds",
                    act.line
                ));
            }
            if is_wildcard(name) {
                v.push(format!(
                    "wildcard action `{name}` granted at template.yaml line {} in {who}: list \
                     each action explicitly",
                    act.line
                ));
                continue;
            }
            let service = name
                .split(':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            match service.as_str() {
                "s3" => {
                    granted_s3.insert(name.clone());
                }
                "kms" => {
                    if !EXPECTED_KMS.contains(&name.as_str()) {
                        v.push(format!(
                            "unexpected KMS action `{name}` at template.yaml line {} in {who}",
                            act.line
                        ));
                    }
                    let under_kms = act
                        .conditions
                        .iter()
                        .any(|(c, then)| c == KMS_CONDITION && *then);
                    if !under_kms {
                        v.push(format!(
                            "KMS action `{name}` at template.yaml line {} in {who} is not inside \
                             `!If [{KMS_CONDITION}, <here>, ...]`: without a KmsKeyArn the \
                             function needs no KMS permission",
                            act.line
                        ));
                    }
                }
                _ => v.push(format!(
                    "unexpected action `{name}` at template.yaml line {} in {who}: the \
                     function only needs S3 (and KMS with a KmsKeyArn)",
                    act.line
                )),
            }
        }
        check_resources(st, &mut v);
    }

    let expected: BTreeSet<String> = EXPECTED_S3.iter().map(|s| s.to_string()).collect();
    if granted_s3 != expected {
        let missing: Vec<_> = expected.difference(&granted_s3).collect();
        let extra: Vec<_> = granted_s3.difference(&expected).collect();
        v.push(format!(
            "the S3 actions granted are not exactly {EXPECTED_S3:?}: missing {missing:?}, \
             unexpected {extra:?} (found {granted_s3:?})"
        ));
    }
    v
}

/// Allowed object actions apply to `<bucket>/<prefix>*` only; ListBucket only with an
/// `s3:prefix` condition on the archive prefix; KMS only on the configured key.
fn check_resources(st: &Statement, v: &mut Vec<String>) {
    let who = describe(st);
    let Some(resource) = &st.resource else {
        v.push(format!("{who}: Allow statement without Resource"));
        return;
    };
    let strings = scalars_of(resource);
    if strings.iter().any(|s| s.trim() == "*") {
        v.push(format!("{who}: Resource \"*\" grants access to everything"));
    }
    let arns: Vec<&String> = strings.iter().filter(|s| s.starts_with("arn:")).collect();
    let names: Vec<&str> = st.actions.iter().map(|a| a.name.as_str()).collect();
    let object_actions = names.iter().any(|n| {
        n.to_ascii_lowercase().starts_with("s3:") && !n.eq_ignore_ascii_case("s3:ListBucket")
    });
    let lists = names
        .iter()
        .any(|n| n.eq_ignore_ascii_case("s3:ListBucket"));
    if object_actions && lists {
        v.push(format!(
            "{who}: mixes s3:ListBucket (bucket) with object actions; keep them apart so each \
             has its own Resource"
        ));
    }
    if object_actions
        && (arns.is_empty() || arns.iter().any(|a| !a.ends_with("/${ArchivePrefix}*")))
    {
        v.push(format!(
            "{who}: object actions must be scoped to arn:...:s3:::<bucket>/${{ArchivePrefix}}*, \
             found {arns:?}"
        ));
    }
    if lists {
        if arns.is_empty() || arns.iter().any(|a| !a.ends_with(":::${Bucket}")) {
            v.push(format!(
                "{who}: s3:ListBucket must be on the archive bucket only, found {arns:?}"
            ));
        }
        let scoped = st
            .condition
            .as_ref()
            .and_then(|c| c.get("StringLike"))
            .and_then(|c| c.get("s3:prefix"))
            .map(|p| scalars_of(p).iter().all(|s| s == "${ArchivePrefix}*"))
            .unwrap_or(false);
        if !scoped {
            v.push(format!(
                "{who}: s3:ListBucket needs Condition StringLike s3:prefix \"${{ArchivePrefix}}*\""
            ));
        }
    }
    if names
        .iter()
        .any(|n| n.to_ascii_lowercase().starts_with("kms:"))
    {
        let on_key = matches!(resource, Node::Scalar { tag: Some(t), text, .. }
            if t == "!Ref" && text == "KmsKeyArn");
        if !on_key {
            v.push(format!(
                "{who}: KMS actions must have Resource: !Ref KmsKeyArn"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn function_policy_is_least_privilege() {
    let src = template();
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "template.yaml grants more (or other) than the function needs:\n  - {}",
        found.join("\n  - ")
    );

    // Positive evidence that the reader saw the policy, independent of the checks above.
    let root = parse(&src).expect("template.yaml parses");
    let a = Analysis::new(&root);
    let allowed: BTreeSet<&str> = a
        .statements
        .iter()
        .filter(|s| s.effect.as_deref() == Some("Allow"))
        .flat_map(|s| s.actions.iter().map(|x| x.name.as_str()))
        .collect();
    let mut expected: BTreeSet<&str> = EXPECTED_S3.iter().copied().collect();
    expected.extend(EXPECTED_KMS.iter().copied());
    assert_eq!(
        allowed, expected,
        "the actions granted (Allow) in template.yaml are not the expected S3 + KMS set"
    );
    let sids: BTreeSet<&str> = a.statements.iter().map(|s| s.sid.as_str()).collect();
    for sid in [
        "ArchiveObjects",
        "ListArchivePrefix",
        "ArchiveKey",
        "DenyInsecureTransport",
    ] {
        assert!(
            sids.contains(sid),
            "statement {sid} was not found; found {sids:?}"
        );
    }
    for st in &a.statements {
        for act in &st.actions {
            if act.name.starts_with("kms:") {
                assert_eq!(
                    act.conditions,
                    vec![(KMS_CONDITION.to_string(), true)],
                    "{} at line {} must sit in the then-branch of !If [{KMS_CONDITION}, ...]",
                    act.name,
                    act.line
                );
            } else {
                assert!(
                    act.conditions.is_empty() || st.effect.as_deref() == Some("Deny"),
                    "{} at line {} is conditional: {:?}",
                    act.name,
                    act.line,
                    act.conditions
                );
            }
        }
    }
}

/// The indentation of the unique line whose trimmed text is `needle`, and its byte range.
fn find_line(src: &str, needle: &str) -> (usize, std::ops::Range<usize>) {
    let mut hits = Vec::new();
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        if line.trim() == needle {
            let indent = line.len() - line.trim_start_matches(' ').len();
            hits.push((indent, offset..offset + line.len()));
        }
        offset += line.len();
    }
    assert_eq!(
        hits.len(),
        1,
        "the mutation anchor {needle:?} must be exactly one line of template.yaml; update this test"
    );
    hits.remove(0)
}

/// Replaces the line `needle` by `lines`, each indented like it (plus its own leading spaces).
fn replace_line(src: &str, needle: &str, lines: &[&str]) -> String {
    let (indent, range) = find_line(src, needle);
    let pad = " ".repeat(indent);
    let new: String = lines.iter().map(|l| format!("{pad}{l}\n")).collect();
    format!("{}{}{}", &src[..range.start], new, &src[range.end..])
}

fn insert_after(src: &str, needle: &str, lines: &[&str]) -> String {
    let mut all = vec![needle];
    all.extend_from_slice(lines);
    replace_line(src, needle, &all)
}

fn insert_before(src: &str, needle: &str, lines: &[&str]) -> String {
    let mut all = lines.to_vec();
    all.push(needle);
    replace_line(src, needle, &all)
}

#[test]
fn checker_rejects_widened_policies() {
    let src = template();
    assert!(
        violations(&src).is_empty(),
        "the unmodified template must pass first"
    );

    let obj = "- Sid: ArchiveObjects";
    let list = "Action: s3:ListBucket";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "DeleteObject added to the object actions",
            insert_after(&src, "- s3:PutObject", &["- s3:DeleteObject"]),
            "forbidden action `s3:DeleteObject`",
        ),
        (
            "Action: \"s3:*\"",
            replace_line(&src, list, &["Action: \"s3:*\""]),
            "wildcard action `s3:*`",
        ),
        (
            "flow list with a quoted forbidden action",
            replace_line(
                &src,
                list,
                &["Action: [s3:ListBucket, 's3:PutObjectRetention']"],
            ),
            "forbidden action `s3:PutObjectRetention`",
        ),
        (
            "multi-line flow list",
            replace_line(
                &src,
                list,
                &["Action: [s3:ListBucket,", "  s3:DeleteObjectVersion]"],
            ),
            "forbidden action `s3:DeleteObjectVersion`",
        ),
        (
            "double-quoted list item",
            insert_after(&src, "- s3:GetObject", &["- \"s3:PutObjectLegalHold\""]),
            "forbidden action `s3:PutObjectLegalHold`",
        ),
        (
            "lower-case spelling (IAM actions are case-insensitive)",
            insert_after(&src, "- s3:GetObject", &["- s3:deleteobjectversion"]),
            "forbidden action `s3:deleteobjectversion`",
        ),
        (
            "s3:Delete*",
            insert_after(&src, "- s3:GetObject", &["- s3:Delete*"]),
            "wildcard action `s3:Delete*`",
        ),
        (
            "a new block statement with Action \"*\"",
            insert_before(
                &src,
                obj,
                &[
                    "- Sid: Everything",
                    "  Effect: Allow",
                    "  Action: \"*\"",
                    "  Resource: \"*\"",
                ],
            ),
            "wildcard action `*`",
        ),
        (
            "a flow-mapping statement",
            insert_before(
                &src,
                obj,
                &["- {Effect: Allow, Action: s3:BypassGovernanceRetention, Resource: \"*\"}"],
            ),
            "forbidden action `s3:BypassGovernanceRetention`",
        ),
        (
            "the bucket policy's Deny s3:* turned into an Allow",
            replace_line(&src, "Effect: Deny", &["Effect: Allow"]),
            "wildcard action `s3:*`",
        ),
        (
            "a forbidden action inside !If",
            replace_line(
                &src,
                list,
                &["Action: !If [UseKms, s3:DeleteObject, s3:ListBucket]"],
            ),
            "forbidden action `s3:DeleteObject`",
        ),
        (
            "a block scalar as the action",
            replace_line(&src, list, &["Action: >-", "  s3:DeleteObject"]),
            "forbidden action `s3:DeleteObject`",
        ),
        (
            "NotAction in an Allow statement",
            replace_line(&src, list, &["NotAction: s3:ListBucket"]),
            "NotAction",
        ),
        (
            "an action hidden in a computed value",
            replace_line(
                &src,
                list,
                &["Action: !Split [\",\", \"s3:ListBucket,s3:DeleteObject\"]"],
            ),
            "not a literal IAM action",
        ),
        (
            "a policy document as a JSON string",
            insert_after(
                &src,
                "Policies:",
                &[
                    r#"  - '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'"#,
                ],
            ),
            "a policy written as a JSON string",
        ),
        (
            "GetObjectVersion removed (the set must be exact)",
            replace_line(&src, "- s3:GetObjectVersion", &[]),
            "missing [\"s3:GetObjectVersion\"]",
        ),
        (
            "an extra S3 action",
            insert_after(&src, "- s3:GetObject", &["- s3:PutBucketPolicy"]),
            "unexpected [\"s3:PutBucketPolicy\"]",
        ),
        (
            "a KMS action outside the UseKms condition",
            insert_after(&src, "- s3:PutObject", &["- kms:Decrypt"]),
            "is not inside `!If [UseKms",
        ),
        (
            "a SAM policy template",
            insert_after(
                &src,
                "Policies:",
                &["  - S3CrudPolicy:", "      BucketName: !Ref ArchiveBucket"],
            ),
            "is not an inline policy document",
        ),
        (
            "a managed policy",
            insert_after(&src, "Policies:", &["  - AmazonS3FullAccess"]),
            "is not an inline policy document",
        ),
        (
            "object actions on the whole bucket",
            replace_line(
                &src,
                "- \"arn:${AWS::Partition}:s3:::${Bucket}/${ArchivePrefix}*\"",
                &["- \"arn:${AWS::Partition}:s3:::${Bucket}/*\""],
            ),
            "must be scoped to",
        ),
        (
            "ListBucket without its prefix condition",
            replace_line(
                &src,
                "s3:prefix: !Sub \"${ArchivePrefix}*\"",
                &["s3:prefix: \"*\""],
            ),
            "needs Condition StringLike s3:prefix",
        ),
    ];

    for (what, mutated, expect) in &cases {
        assert_ne!(
            &src, mutated,
            "mutation `{what}` did not change the template"
        );
        let found = violations(mutated);
        assert!(
            found.iter().any(|m| m.contains(expect)),
            "mutation `{what}` was not rejected with a message containing {expect:?}; the \
             checker said:\n  - {}",
            found.join("\n  - ")
        );
    }
}

#[test]
fn object_lock_is_only_set_on_the_created_bucket() {
    let root = parse(&template()).expect("template.yaml parses");
    let params = root.get("Parameters").expect("Parameters");
    let mode = params
        .get("ObjectLockMode")
        .expect("parameter ObjectLockMode");
    assert_eq!(mode.get("Default").and_then(Node::scalar), Some("NONE"));
    let days = params
        .get("ObjectLockRetentionDays")
        .expect("parameter ObjectLockRetentionDays");
    assert_eq!(days.get("Type").and_then(Node::scalar), Some("Number"));

    // UseObjectLock = CreateBucket AND mode != NONE.
    let cond = root
        .get("Conditions")
        .and_then(|c| c.get("UseObjectLock"))
        .expect("condition UseObjectLock");
    let text = format!("{cond:?}");
    assert!(
        cond.tag() == Some("!And")
            && text.contains("CreateBucket")
            && text.contains("ObjectLockMode"),
        "UseObjectLock must be !And [!Condition CreateBucket, mode != NONE]: {cond:?}"
    );

    let bucket = root
        .get("Resources")
        .and_then(|r| r.get("ArchiveBucket"))
        .expect("resource ArchiveBucket");
    assert_eq!(
        bucket.get("Condition").and_then(Node::scalar),
        Some("CreateBucket")
    );
    let props = bucket.get("Properties").expect("bucket Properties");
    for key in ["ObjectLockEnabled", "ObjectLockConfiguration"] {
        let v = props
            .get(key)
            .unwrap_or_else(|| panic!("bucket property {key}"));
        let (c, then, other) = v.as_if().unwrap_or_else(|| panic!("{key} must be an !If"));
        assert_eq!(
            c.scalar(),
            Some("UseObjectLock"),
            "{key} must depend on UseObjectLock"
        );
        assert!(
            !then.is_no_value() && other.is_no_value(),
            "{key}: set only when locking"
        );
    }
    let (_, config, _) = props
        .get("ObjectLockConfiguration")
        .unwrap()
        .as_if()
        .unwrap();
    let retention = config
        .get("Rule")
        .and_then(|r| r.get("DefaultRetention"))
        .expect("Rule.DefaultRetention");
    let refers = |key: &str, param: &str| {
        matches!(retention.get(key), Some(Node::Scalar { tag: Some(t), text, .. })
            if t == "!Ref" && text == param)
    };
    assert!(
        refers("Mode", "ObjectLockMode"),
        "DefaultRetention.Mode: !Ref ObjectLockMode"
    );
    assert!(
        refers("Days", "ObjectLockRetentionDays"),
        "DefaultRetention.Days: !Ref ObjectLockRetentionDays"
    );
    assert!(
        props
            .get("VersioningConfiguration")
            .and_then(|v| v.get("Status"))
            .and_then(Node::scalar)
            == Some("Enabled"),
        "Object Lock requires versioning"
    );
}
