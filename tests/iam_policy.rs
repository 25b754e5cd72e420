//! The function's IAM permissions, read from `template.yaml`: least privilege, enforced.
//!
//! The function only creates objects (conditionally), reads them and lists its prefix. It must
//! never be able to delete a version, change or bypass an Object Lock retention, or place a
//! legal hold (README, "What the function is allowed to do"). This test reads every IAM
//! statement in the template and fails if a forbidden or wildcard action is granted, if the S3
//! actions granted are not exactly the expected set, if the SSE-KMS actions escape the `UseKms`
//! condition, or if `kms:Sign` escapes the `SignManifests` condition or reaches another key
//! than the manifest signing key. The created signing key's own policy is read too: it names
//! only this account, and lets only the function's role (by its path) sign. A second test
//! mutates the template in memory to show that each check can fail.
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

/// KMS actions for SSE-KMS: allowed only inside `!If [UseKms, <here>, ...]`, on `!Ref KmsKeyArn`.
const EXPECTED_KMS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];
const KMS_CONDITION: &str = "UseKms";

/// Manifest signing: `kms:Sign`, allowed only inside `!If [SignManifests, <here>, ...]`, in a
/// statement of its own, on the signing key only, and only as the function signs.
const SIGN_ACTION: &str = "kms:Sign";
const SIGN_CONDITION: &str = "SignManifests";
/// The signing key: `!If [CreateSigningKey, !GetAtt SigningKey.Arn, !Ref ManifestSigningKey]`.
const SIGNING_KEY_CONDITION: &str = "CreateSigningKey";
const SIGNING_KEY_ARN: &str = "SigningKey.Arn";
const SIGNING_KEY_PARAMETER: &str = "ManifestSigningKey";
/// `StringEquals` conditions every grant of `kms:Sign` carries: the function's algorithm and
/// message type, nothing else.
const SIGN_CONDITIONS: &[(&str, &str)] = &[
    ("kms:SigningAlgorithm", "ECDSA_SHA_256"),
    ("kms:MessageType", "RAW"),
];
/// The only principal a key policy in the template may name: this account, so that IAM
/// policies decide (and the key-policy conditions narrow them).
const ACCOUNT_ROOT: &str = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root";

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
    /// `Principal` (or `NotPrincipal`): set in resource policies, absent in the role's.
    principal: Option<Node>,
    /// The logical id of the `AWS::KMS::Key` whose `KeyPolicy` holds this statement; `None`
    /// for every other statement (the function's policies, checked strictly).
    key_policy: Option<String>,
}

/// Where the walk is in the template: only a KMS key's `KeyPolicy` is told apart.
#[derive(Debug, Clone, Copy)]
enum Place<'n> {
    Template,
    Resources,
    Resource { name: &'n str, kms_key: bool },
    KeyProperties(&'n str),
    KeyPolicy(&'n str),
    Elsewhere,
}

impl<'n> Place<'n> {
    /// The place of the value under `key` of a mapping at this place.
    fn enter(self, key: &'n str, value: &'n Node) -> Place<'n> {
        match self {
            Place::Template if key == "Resources" => Place::Resources,
            Place::Resources => Place::Resource {
                name: key,
                kms_key: value.get("Type").and_then(Node::scalar) == Some("AWS::KMS::Key"),
            },
            Place::Resource {
                name,
                kms_key: true,
            } if key == "Properties" => Place::KeyProperties(name),
            Place::KeyProperties(name) if key == "KeyPolicy" => Place::KeyPolicy(name),
            Place::KeyPolicy(name) => Place::KeyPolicy(name),
            _ => Place::Elsewhere,
        }
    }
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
        a.walk(root, &mut Vec::new(), &conds, Place::Template);
        a.check_policy_forms(root);
        a.cross_check(root);
        a
    }

    fn walk<'n>(
        &mut self,
        node: &'n Node,
        path: &mut Vec<(String, bool)>,
        conds: &BTreeSet<String>,
        place: Place<'n>,
    ) {
        if let Some((c, then, other)) = node.as_if() {
            let name = c.scalar().unwrap_or_default().to_string();
            path.push((name.clone(), true));
            self.walk(then, path, conds, place);
            path.pop();
            path.push((name, false));
            self.walk(other, path, conds, place);
            path.pop();
            return;
        }
        match node {
            Node::Map { entries, line, .. } => {
                if node.get("Action").is_some() || node.get("NotAction").is_some() {
                    self.statement(node, *line, path, conds, place);
                }
                for (k, v) in entries {
                    self.walk(v, path, conds, place.enter(k, v));
                }
            }
            Node::Seq { items, .. } => {
                for item in items {
                    self.walk(item, path, conds, place);
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
        place: Place<'_>,
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
            principal: node
                .get("Principal")
                .or_else(|| node.get("NotPrincipal"))
                .cloned(),
            key_policy: match place {
                Place::KeyPolicy(name) => Some(name.to_string()),
                _ => None,
            },
        };
        if node.get("NotPrincipal").is_some() {
            self.violations.push(format!(
                "{}: NotPrincipal grants to every principal but the ones named",
                describe(&st)
            ));
        }
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
    let signer = role_path_pattern(&root);

    for st in &a.statements {
        if st.effect.as_deref() == Some("Deny") {
            continue; // A Deny only takes permissions away (e.g. the bucket's TLS-only rule).
        }
        if let Some(key) = &st.key_policy {
            check_key_policy(st, key, &signer, &mut v);
            continue;
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
            let under = |condition: &str| {
                act.conditions
                    .iter()
                    .any(|(c, then)| c == condition && *then)
            };
            match service.as_str() {
                "s3" => {
                    granted_s3.insert(name.clone());
                }
                "kms" if name.eq_ignore_ascii_case(SIGN_ACTION) => {
                    if !under(SIGN_CONDITION) {
                        v.push(format!(
                            "KMS action `{name}` at template.yaml line {} in {who} is not inside \
                             `!If [{SIGN_CONDITION}, <here>, ...]`: without a \
                             {SIGNING_KEY_PARAMETER} the function signs nothing",
                            act.line
                        ));
                    }
                }
                "kms" => {
                    if !EXPECTED_KMS.contains(&name.as_str()) {
                        v.push(format!(
                            "unexpected KMS action `{name}` at template.yaml line {} in {who}",
                            act.line
                        ));
                    }
                    if !under(KMS_CONDITION) {
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
                     function only needs S3 (and KMS with a KmsKeyArn or a signing key)",
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
/// `s3:prefix` condition on the archive prefix; SSE-KMS actions only on the configured key;
/// `kms:Sign` alone in its statement, only on the signing key, only as the function signs.
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
    let kms: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.to_ascii_lowercase().starts_with("kms:"))
        .collect();
    let signs = kms.iter().any(|n| n.eq_ignore_ascii_case(SIGN_ACTION));
    let other_kms = kms.iter().any(|n| !n.eq_ignore_ascii_case(SIGN_ACTION));
    if other_kms {
        let on_key = matches!(resource, Node::Scalar { tag: Some(t), text, .. }
            if t == "!Ref" && text == "KmsKeyArn");
        if !on_key {
            v.push(format!(
                "{who}: KMS actions must have Resource: !Ref KmsKeyArn"
            ));
        }
    }
    if signs {
        if names.len() != 1 {
            v.push(format!(
                "{who}: kms:Sign must be alone in a statement of its own (found {names:?}), so \
                 that it has the signing key as its only Resource"
            ));
        }
        if !is_signing_key(resource) {
            v.push(format!(
                "{who}: kms:Sign must be on the signing key only: Resource: !If \
                 [{SIGNING_KEY_CONDITION}, !GetAtt {SIGNING_KEY_ARN}, !Ref \
                 {SIGNING_KEY_PARAMETER}], found {resource:?}"
            ));
        }
        if !signs_as_the_function(st.condition.as_ref()) {
            v.push(format!(
                "{who}: kms:Sign needs Condition StringEquals {SIGN_CONDITIONS:?} (the function \
                 signs RAW messages with ECDSA_SHA_256 only)"
            ));
        }
    }
}

/// `!If [CreateSigningKey, !GetAtt SigningKey.Arn, !Ref ManifestSigningKey]`, exactly.
fn is_signing_key(resource: &Node) -> bool {
    let Some((c, created, given)) = resource.as_if() else {
        return false;
    };
    let tagged = |node: &Node, tag: &str, text: &str| matches!(node, Node::Scalar { tag: Some(t), text: x, .. } if t == tag && x == text);
    c.scalar() == Some(SIGNING_KEY_CONDITION)
        && tagged(created, "!GetAtt", SIGNING_KEY_ARN)
        && tagged(given, "!Ref", SIGNING_KEY_PARAMETER)
}

/// The condition block carries `StringEquals` with every entry of [`SIGN_CONDITIONS`].
fn signs_as_the_function(condition: Option<&Node>) -> bool {
    let Some(equals) = condition.and_then(|c| c.get("StringEquals")) else {
        return false;
    };
    SIGN_CONDITIONS.iter().all(|(key, value)| {
        matches!(equals.get(key), Some(Node::Scalar { tag: None, text, .. }) if text == value)
    })
}

/// IAM's action patterns: `*` any run of characters, `?` one; case-insensitive.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| go(rest, &a[i..])),
            Some((b'?', rest)) => !a.is_empty() && go(rest, &a[1..]),
            Some((c, rest)) => a.first().is_some_and(|x| x == c) && go(rest, &a[1..]),
        }
    }
    go(
        pattern.to_ascii_lowercase().as_bytes(),
        action.to_ascii_lowercase().as_bytes(),
    )
}

/// The `aws:PrincipalArn` pattern of the function's role, from the function's `RolePath`
/// (alone, or in the then-branch of `!If [SignManifests | CreateSigningKey, ...]`): a `!Sub`
/// path with `${AWS::StackName}` in it, so that no other stack's roles match.
fn role_path_pattern(root: &Node) -> Result<String, String> {
    let functions: Vec<&Node> = match root.get("Resources") {
        Some(Node::Map { entries, .. }) => entries
            .iter()
            .map(|(_, r)| r)
            .filter(|r| r.get("Type").and_then(Node::scalar) == Some("AWS::Serverless::Function"))
            .collect(),
        _ => Vec::new(),
    };
    let [function] = functions.as_slice() else {
        return Err(format!(
            "expected one AWS::Serverless::Function, found {}",
            functions.len()
        ));
    };
    let Some(path) = function.get("Properties").and_then(|p| p.get("RolePath")) else {
        return Err("the function has no RolePath".into());
    };
    let path = match path.as_if() {
        Some((c, then, _))
            if matches!(c.scalar(), Some(SIGN_CONDITION | SIGNING_KEY_CONDITION)) =>
        {
            then
        }
        Some(_) => {
            return Err(format!(
                "RolePath at line {} depends on another condition than {SIGN_CONDITION}",
                path.line()
            ));
        }
        None => path,
    };
    match path {
        Node::Scalar {
            tag: Some(t), text, ..
        } if t == "!Sub"
            && text.starts_with('/')
            && text.ends_with('/')
            && text.contains("${AWS::StackName}") =>
        {
            Ok(format!(
                "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{text}*"
            ))
        }
        other => Err(format!(
            "RolePath at line {} must be !Sub \"/<...>/${{AWS::StackName}}/\", found {other:?}",
            other.line()
        )),
    }
}

/// A statement of a KMS key's policy in the template: this account only (IAM policies decide),
/// KMS actions only, and `kms:Sign` only in one statement of its own, limited to roles under
/// the function role's path and to the function's algorithm and message type.
fn check_key_policy(
    st: &Statement,
    key: &str,
    signer: &Result<String, String>,
    v: &mut Vec<String>,
) {
    let who = format!("the key policy of {key}, {}", describe(st));
    let account_only = st.principal.as_ref().is_some_and(|p| match p {
        Node::Map { entries, .. } => {
            entries.len() == 1
                && entries[0].0 == "AWS"
                && matches!(&entries[0].1, Node::Scalar { tag: Some(t), text, .. }
                    if t == "!Sub" && text == ACCOUNT_ROOT)
        }
        _ => false,
    });
    if !account_only {
        v.push(format!(
            "{who}: Principal must be {{AWS: !Sub \"{ACCOUNT_ROOT}\"}} (this account, so that \
             IAM policies decide), found {:?}",
            st.principal
        ));
    }
    for na in &st.not_actions {
        v.push(format!(
            "{who}: NotAction `{}` grants every KMS action it does not name",
            na.name
        ));
    }
    if st.actions.is_empty() && st.not_actions.is_empty() {
        v.push(format!(
            "{who}: Allow statement with no action this test can read"
        ));
    }
    for act in &st.actions {
        if !act.name.to_ascii_lowercase().starts_with("kms:") {
            v.push(format!(
                "{who}: `{}` at line {} is not a KMS action",
                act.name, act.line
            ));
        }
    }
    let signing: Vec<&str> = st
        .actions
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| action_matches(n, SIGN_ACTION))
        .collect();
    if signing.is_empty() {
        return;
    }
    if st.actions.len() != 1 || !st.actions[0].name.eq_ignore_ascii_case(SIGN_ACTION) {
        v.push(format!(
            "{who}: grants kms:Sign (through {signing:?}) beside other actions; only one \
             statement may, with Action: kms:Sign alone and the function's conditions"
        ));
    }
    match signer {
        Err(e) => v.push(format!(
            "{who}: grants kms:Sign, but the function role's path cannot be read: {e}"
        )),
        Ok(pattern) => {
            let limited = st
                .condition
                .as_ref()
                .and_then(|c| c.get("ArnLike"))
                .and_then(|c| c.get("aws:PrincipalArn"))
                .is_some_and(|p| {
                    matches!(p, Node::Scalar { tag: Some(t), text, .. }
                        if t == "!Sub" && text == pattern)
                });
            if !limited {
                v.push(format!(
                    "{who}: kms:Sign needs Condition ArnLike aws:PrincipalArn !Sub \
                     \"{pattern}\" (the function role's path), found {:?}",
                    st.condition
                ));
            }
        }
    }
    if !signs_as_the_function(st.condition.as_ref()) {
        v.push(format!(
            "{who}: kms:Sign needs Condition StringEquals {SIGN_CONDITIONS:?}"
        ));
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
        .filter(|s| s.effect.as_deref() == Some("Allow") && s.key_policy.is_none())
        .flat_map(|s| s.actions.iter().map(|x| x.name.as_str()))
        .collect();
    let mut expected: BTreeSet<&str> = EXPECTED_S3.iter().copied().collect();
    expected.extend(EXPECTED_KMS.iter().copied());
    expected.insert(SIGN_ACTION);
    assert_eq!(
        allowed, expected,
        "the actions granted (Allow) to the function in template.yaml are not the expected S3 \
         + KMS set"
    );
    let sids: BTreeSet<&str> = a.statements.iter().map(|s| s.sid.as_str()).collect();
    for sid in [
        "ArchiveObjects",
        "ListArchivePrefix",
        "ArchiveKey",
        "ManifestSigning",
        "DenyInsecureTransport",
        "KeyAdministration",
        "OnlyTheFunctionSigns",
    ] {
        assert!(
            sids.contains(sid),
            "statement {sid} was not found; found {sids:?}"
        );
    }
    // The signing key's policy: read, and exactly one statement lets anyone sign.
    let key_statements: Vec<&Statement> = a
        .statements
        .iter()
        .filter(|s| s.key_policy.as_deref() == Some("SigningKey"))
        .collect();
    let signers: Vec<&str> = key_statements
        .iter()
        .filter(|s| {
            s.actions
                .iter()
                .any(|x| action_matches(&x.name, SIGN_ACTION))
        })
        .map(|s| s.sid.as_str())
        .collect();
    assert_eq!(
        signers,
        ["OnlyTheFunctionSigns"],
        "in the key policy of SigningKey, exactly one statement may grant kms:Sign"
    );
    assert!(
        key_statements
            .iter()
            .any(|s| s.actions.iter().any(|x| x.name == "kms:Put*")),
        "the account administers the signing key (kms:Put* covers PutKeyPolicy, which \
         CloudFormation's lockout check asks for)"
    );
    assert_eq!(
        role_path_pattern(&root).as_deref(),
        Ok("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/veriff-archiver/${AWS::StackName}/*")
    );
    for st in a.statements.iter().filter(|s| s.key_policy.is_none()) {
        for act in &st.actions {
            if act.name == SIGN_ACTION {
                assert_eq!(
                    act.conditions,
                    vec![(SIGN_CONDITION.to_string(), true)],
                    "{} at line {} must sit in the then-branch of !If [{SIGN_CONDITION}, ...]",
                    act.name,
                    act.line
                );
            } else if act.name.starts_with("kms:") {
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

/// Replaces the first line `needle` after the unique line `anchor` by `lines` (for lines that
/// occur more than once in the template).
fn replace_after(src: &str, anchor: &str, needle: &str, lines: &[&str]) -> String {
    let (_, anchor_range) = find_line(src, anchor);
    let mut offset = anchor_range.end;
    for line in src[anchor_range.end..].split_inclusive('\n') {
        if line.trim() == needle {
            let indent = line.len() - line.trim_start_matches(' ').len();
            let pad = " ".repeat(indent);
            let new: String = lines.iter().map(|l| format!("{pad}{l}\n")).collect();
            return format!("{}{}{}", &src[..offset], new, &src[offset + line.len()..]);
        }
        offset += line.len();
    }
    panic!(
        "the mutation anchor {needle:?} does not follow {anchor:?} in template.yaml; update this test"
    );
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
    let signing = "- Sid: ManifestSigning";
    let signing_key =
        "Resource: !If [CreateSigningKey, !GetAtt SigningKey.Arn, !Ref ManifestSigningKey]";
    let administration = "- Sid: KeyAdministration";
    let key_signing = "- Sid: OnlyTheFunctionSigns";
    let account = r#"AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root""#;
    let principal_arn = r#"aws:PrincipalArn: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/veriff-archiver/${AWS::StackName}/*""#;
    let role_path = r#"- !Sub "/veriff-archiver/${AWS::StackName}/""#;
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
        // Manifest signing: the function's statement.
        (
            "kms:Sign on every key",
            replace_line(&src, signing_key, &["Resource: \"*\""]),
            "kms:Sign must be on the signing key only",
        ),
        (
            "kms:Sign on the SSE-KMS key instead of the signing key",
            replace_line(&src, signing_key, &["Resource: !Ref KmsKeyArn"]),
            "kms:Sign must be on the signing key only",
        ),
        (
            "kms:* beside kms:Sign",
            replace_after(
                &src,
                signing,
                "Action: kms:Sign",
                &["Action: [kms:Sign, \"kms:*\"]"],
            ),
            "wildcard action `kms:*`",
        ),
        (
            "kms:Sign added to the SSE-KMS statement",
            insert_after(&src, "- kms:Decrypt", &["- kms:Sign"]),
            "is not inside `!If [SignManifests",
        ),
        (
            "kms:Sign added to the object actions",
            insert_after(&src, "- s3:PutObject", &["- kms:Sign"]),
            "is not inside `!If [SignManifests",
        ),
        (
            "kms:Decrypt added to the signing statement",
            replace_after(
                &src,
                signing,
                "Action: kms:Sign",
                &["Action: [kms:Sign, kms:Decrypt]"],
            ),
            "is not inside `!If [UseKms",
        ),
        (
            "kms:Sign without the message type condition",
            replace_after(&src, signing, "kms:MessageType: RAW", &[]),
            "kms:Sign needs Condition StringEquals",
        ),
        (
            "kms:Sign with another algorithm",
            replace_after(
                &src,
                signing,
                "kms:SigningAlgorithm: ECDSA_SHA_256",
                &["kms:SigningAlgorithm: ECDSA_SHA_384"],
            ),
            "kms:Sign needs Condition StringEquals",
        ),
        // Manifest signing: the created key's policy.
        (
            "the key policy lets anyone sign",
            replace_after(&src, key_signing, account, &["AWS: \"*\""]),
            "Principal must be",
        ),
        (
            "the key policy lets every role of the account sign",
            replace_after(
                &src,
                key_signing,
                principal_arn,
                &[
                    r#"aws:PrincipalArn: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*""#,
                ],
            ),
            "kms:Sign needs Condition ArnLike aws:PrincipalArn",
        ),
        (
            "the key policy's signing statement without its algorithm condition",
            replace_after(
                &src,
                key_signing,
                "kms:SigningAlgorithm: ECDSA_SHA_256",
                &[],
            ),
            "kms:Sign needs Condition StringEquals",
        ),
        (
            "key administrators may sign",
            insert_after(&src, "- kms:Get*", &["- kms:Sign"]),
            "grants kms:Sign",
        ),
        (
            "kms:* for the account (the default key policy)",
            replace_line(&src, "- kms:Create*", &["- \"kms:*\""]),
            "grants kms:Sign",
        ),
        (
            "NotAction in the key policy",
            replace_after(&src, administration, "Action:", &["NotAction:"]),
            "NotAction",
        ),
        (
            "a role path shared by every stack",
            replace_line(&src, role_path, &[r#"- !Sub "/veriff-archiver/""#]),
            "the function role's path cannot be read",
        ),
        (
            "a role path the key policy does not name",
            replace_line(&src, role_path, &[r#"- !Sub "/other/${AWS::StackName}/""#]),
            "kms:Sign needs Condition ArnLike aws:PrincipalArn",
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

#[test]
fn signing_is_optional_and_the_created_key_is_retained() {
    let root = parse(&template()).expect("template.yaml parses");
    let param = root
        .get("Parameters")
        .and_then(|p| p.get(SIGNING_KEY_PARAMETER))
        .expect("parameter ManifestSigningKey");
    assert_eq!(
        param.get("Default").and_then(Node::scalar),
        Some(""),
        "signing is off by default"
    );
    let pattern = param
        .get("AllowedPattern")
        .and_then(Node::scalar)
        .expect("ManifestSigningKey has an AllowedPattern");
    assert!(
        pattern.starts_with("^$|^create$|^arn:"),
        "ManifestSigningKey: empty, create or a key ARN, found {pattern:?}"
    );

    let conditions = root.get("Conditions").expect("Conditions");
    let text = |name: &str| {
        format!(
            "{:?}",
            conditions
                .get(name)
                .unwrap_or_else(|| panic!("condition {name}"))
        )
    };
    let sign = text(SIGN_CONDITION);
    assert!(
        sign.contains("!Not") && sign.contains(SIGNING_KEY_PARAMETER),
        "SignManifests must be ManifestSigningKey != \"\": {sign}"
    );
    let create = text(SIGNING_KEY_CONDITION);
    assert!(
        create.contains("!Equals") && create.contains("\"create\""),
        "CreateSigningKey must be ManifestSigningKey == create: {create}"
    );

    let key = root
        .get("Resources")
        .and_then(|r| r.get("SigningKey"))
        .expect("resource SigningKey");
    let field = |node: &Node, name: &str| node.get(name).and_then(Node::scalar).map(str::to_string);
    assert_eq!(field(key, "Type").as_deref(), Some("AWS::KMS::Key"));
    assert_eq!(
        field(key, "Condition").as_deref(),
        Some(SIGNING_KEY_CONDITION),
        "the key exists only with ManifestSigningKey=create"
    );
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        assert_eq!(
            field(key, policy).as_deref(),
            Some("Retain"),
            "{policy}: signatures must stay checkable after the stack is gone"
        );
    }
    let props = key.get("Properties").expect("SigningKey Properties");
    assert_eq!(field(props, "KeySpec").as_deref(), Some("ECC_NIST_P256"));
    assert_eq!(field(props, "KeyUsage").as_deref(), Some("SIGN_VERIFY"));

    // The function signs with that key: MANIFEST_SIGNING_KEY_ID only when signing.
    let function = root
        .get("Resources")
        .and_then(|r| r.get("ArchiverFunction"))
        .expect("resource ArchiverFunction");
    let id = function
        .get("Properties")
        .and_then(|p| p.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("MANIFEST_SIGNING_KEY_ID"))
        .expect("MANIFEST_SIGNING_KEY_ID in the function's environment");
    let (c, then, other) = id.as_if().expect("MANIFEST_SIGNING_KEY_ID must be an !If");
    assert_eq!(c.scalar(), Some(SIGN_CONDITION));
    assert!(
        is_signing_key(then) && other.is_no_value(),
        "MANIFEST_SIGNING_KEY_ID: the signing key when signing, unset otherwise: {id:?}"
    );

    let output = root
        .get("Outputs")
        .and_then(|o| o.get("SigningKeyArn"))
        .expect("output SigningKeyArn");
    assert_eq!(field(output, "Condition").as_deref(), Some(SIGN_CONDITION));
    assert!(is_signing_key(
        output.get("Value").expect("SigningKeyArn Value")
    ));
}
