//! The functions' IAM permissions, read from `template.yaml`: least privilege, enforced.
//!
//! The function that archives only creates objects (conditionally), reads them and lists its
//! prefix. It must never be able to delete a version, change or bypass an Object Lock
//! retention, or place a legal hold (docs/deploy.md, "What the function is allowed to do"). That
//! function is `ArchiverFunction` (the webhook, behind the Function URL) in direct mode, and
//! `ArchiveConsumerFunction` (the SQS consumer) in queue mode (`IngestMode=queue`), where the
//! webhook may only send messages to the archive queue.
//!
//! This test reads every IAM statement in the template and fails if a forbidden or wildcard
//! action is granted, if a function's S3 or SQS actions are not exactly the expected set, if
//! the webhook's archive grants (S3, SSE-KMS, `kms:Sign`) are not limited to direct mode or
//! its `sqs:SendMessage` to queue mode, if an SQS action reaches another resource than the
//! archive queue, if the SSE-KMS actions escape the `UseKms` condition, or if `kms:Sign`
//! escapes the `SignManifests` condition or reaches another key than the manifest signing key.
//! Both functions may read the Veriff credentials' secret (`VeriffSecret`), in both modes:
//! `secretsmanager:GetSecretValue` alone, only inside `UseSecret`, only on that secret (no
//! other Secrets Manager action), and `kms:Decrypt` on `!Ref VeriffSecretKmsKeyArn` alone,
//! only inside `UseSecretKms` and only through Secrets Manager (`kms:ViaService`); any other
//! KMS statement is held to the SSE-KMS rule.
//! A condition counts when it implies the one required (`DirectModeUseKms` implies `UseKms`
//! and `DirectMode`), as far as `!And`, `!Or` and `!Not` of named conditions tell. The created
//! signing key's own policy is read too: it names only this account, and lets only the
//! archiving function's role (by its path) sign. SAM features that would grant on `"*"` behind
//! the test's back (managed policies, SQS event sources) are refused, and the queue's settings
//! that the consumer relies on (visibility timeout, retention, redrive, partial batch
//! responses, bounded concurrency) are checked. So is the wiring around the secret (the
//! credentials never in the environment beside `VERIFF_SECRET_ARN`, in each way of giving
//! them; the created secret's JSON shape; the Rules on the parameters) and the monitoring
//! (exactly the expected alarms, each notifying the optional topic; the dashboard body rendered
//! in both modes, parsed as JSON and read for its metrics, expressions and alarms). SNS,
//! CloudWatch and Secrets Manager resources grant nothing: only the functions' policies (and
//! the signing key's) may hold an Allow. A second test mutates the template in memory to show
//! that each check can fail.
//!
//! The template is read with saphyr (a maintained YAML 1.2 loader; serde_yaml is unmaintained
//! and fails `cargo audit --deny warnings`), into [`Node`]s that keep the short-form intrinsic
//! function tags (`!Ref`, `!If`, ...), each node's line and scalars as written. It fails closed:
//! a template saphyr cannot load is an error, and an action-like value that the checks cannot
//! attribute to a policy statement is a violation, not a pass.

use std::collections::{BTreeMap, BTreeSet};

use saphyr::{MarkedYaml, ScalarStyle, Tag, YamlData, YamlLoader};

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

/// The webhook function, behind the Function URL: it archives in direct mode, and only
/// enqueues in queue mode.
const WEBHOOK_FUNCTION: &str = "ArchiverFunction";
/// The queue consumer: it archives in queue mode, and does not exist in direct mode.
const CONSUMER_FUNCTION: &str = "ArchiveConsumerFunction";
/// `IngestMode == queue`, and its negation.
const QUEUE_CONDITION: &str = "QueueMode";
const DIRECT_CONDITION: &str = "DirectMode";

/// The archive queue (`!GetAtt ArchiveQueue.Arn` is the only resource of an SQS grant), its
/// dead-letter queue, and the event source mapping's role (generated by SAM).
const QUEUE: &str = "ArchiveQueue";
const QUEUE_ARN: &str = "ArchiveQueue.Arn";
const DEAD_LETTER_QUEUE: &str = "ArchiveDeadLetterQueue";
const DEAD_LETTER_QUEUE_ARN: &str = "ArchiveDeadLetterQueue.Arn";
const CONSUMER_ROLE: &str = "ArchiveConsumerFunctionRole";
/// The webhook's only action in queue mode, inside `!If [QueueMode, <here>, ...]`.
const SEND_ACTION: &str = "sqs:SendMessage";
/// Exactly the SQS actions of the consumer's role, which the event source mapping uses to
/// poll the queue and delete the records that succeeded.
const CONSUME_SQS: &[&str] = &[
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
];
/// Both queues keep a message 14 days, the SQS maximum.
const QUEUE_RETENTION_SECONDS: u64 = 1_209_600;
/// AWS recommends a visibility timeout of at least 6 x the function timeout for an SQS event
/// source; it is checked against the largest `Timeout` the parameter allows.
const VISIBILITY_PER_TIMEOUT: u64 = 6;
/// The Veriff credentials in Secrets Manager (`VeriffSecret`): both functions may read the one
/// secret, with `secretsmanager:GetSecretValue` alone in a statement of its own, inside
/// `!If [UseSecret, <here>, ...]`, on `!If [CreateSecret, !Ref VeriffCredentialsSecret, !Ref
/// VeriffSecret]` only. No other Secrets Manager action.
const SECRET_ACTION: &str = "secretsmanager:GetSecretValue";
const SECRET_CONDITION: &str = "UseSecret";
const CREATE_SECRET_CONDITION: &str = "CreateSecret";
const SECRET_RESOURCE: &str = "VeriffCredentialsSecret";
const SECRET_PARAMETER: &str = "VeriffSecret";
/// The secret's customer managed key (`VeriffSecretKmsKeyArn`): `kms:Decrypt` alone, inside
/// `!If [UseSecretKms, <here>, ...]`, on `!Ref VeriffSecretKmsKeyArn` only, and only through
/// Secrets Manager (`kms:ViaService`). A KMS statement on any other resource is held to the
/// SSE-KMS rule (`UseKms`, `!Ref KmsKeyArn`).
const SECRET_KMS_ACTION: &str = "kms:Decrypt";
const SECRET_KMS_CONDITION: &str = "UseSecretKms";
const SECRET_KEY_PARAMETER: &str = "VeriffSecretKmsKeyArn";
const SECRET_VIA_SERVICE: &str = "secretsmanager.${AWS::Region}.amazonaws.com";
/// The environment variables that carry the credentials themselves: never set with
/// `UseSecret` (src/config.rs refuses them beside `VERIFF_SECRET_ARN`).
const CREDENTIAL_VARIABLES: &[(&str, &str)] = &[
    ("VERIFF_API_KEY", "VeriffApiKey"),
    ("VERIFF_SHARED_SECRET", "VeriffSharedSecret"),
];

/// The metrics the functions publish (embedded metric format, namespace `MetricsNamespace`),
/// all without dimensions; `WebhooksRejected` and `ArchiveFailures` also by `ErrorCode`.
const METRICS: &[&str] = &[
    "DecisionsArchived",
    "DecisionsAlreadyArchived",
    "DecisionsQueued",
    "WebhooksIgnored",
    "WebhooksRejected",
    "ArchiveFailures",
    "FilesStored",
    "FilesReused",
    "BytesStored",
    "ArchiveDuration",
    "VeriffRetries",
    "DecisionsMediaUnavailable",
];
const METRICS_BY_ERROR_CODE: &[&str] = &["ArchiveFailures", "WebhooksRejected"];
const NAMESPACE_PARAMETER: &str = "MetricsNamespace";
/// Every alarm notifies this topic, when there is one: `AlarmActions` and `OKActions` are
/// exactly `!If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]`.
const ALARM_TOPIC: &str = "AlarmTopic";
const ALARM_EMAIL_CONDITION: &str = "HasAlarmEmail";
const DASHBOARD: &str = "OperationsDashboard";

/// One alarm of the template, as it must be written. Values are [`render`]ed.
struct ExpectedAlarm {
    name: &'static str,
    /// The resource's `Condition`, if any.
    condition: Option<&'static str>,
    namespace: &'static str,
    metric: &'static str,
    /// `None`: no `Dimensions` at all.
    dimensions: Option<&'static str>,
    statistic: &'static str,
    period: u64,
    threshold: &'static str,
}

const ALARMS: &[ExpectedAlarm] = &[
    ExpectedAlarm {
        name: "ArchiveFailuresAlarm",
        condition: None,
        namespace: "!Ref \"MetricsNamespace\"",
        metric: "ArchiveFailures",
        dimensions: None,
        statistic: "Sum",
        period: 3600,
        threshold: "\"0\"",
    },
    ExpectedAlarm {
        name: "RejectedWebhooksAlarm",
        condition: None,
        namespace: "!Ref \"MetricsNamespace\"",
        metric: "WebhooksRejected",
        dimensions: Some("[{Name: \"ErrorCode\", Value: \"unauthorized\"}]"),
        statistic: "Sum",
        period: 3600,
        threshold: "!Ref \"RejectedWebhooksThreshold\"",
    },
    ExpectedAlarm {
        name: "WebhookErrorsAlarm",
        condition: None,
        namespace: "\"AWS/Lambda\"",
        metric: "Errors",
        dimensions: Some("[{Name: \"FunctionName\", Value: !Ref \"ArchiverFunction\"}]"),
        statistic: "Sum",
        period: 300,
        threshold: "\"0\"",
    },
    ExpectedAlarm {
        name: "WebhookThrottlesAlarm",
        condition: None,
        namespace: "\"AWS/Lambda\"",
        metric: "Throttles",
        dimensions: Some("[{Name: \"FunctionName\", Value: !Ref \"ArchiverFunction\"}]"),
        statistic: "Sum",
        period: 300,
        threshold: "\"0\"",
    },
    ExpectedAlarm {
        name: "ConsumerErrorsAlarm",
        condition: Some(QUEUE_CONDITION),
        namespace: "\"AWS/Lambda\"",
        metric: "Errors",
        dimensions: Some("[{Name: \"FunctionName\", Value: !Ref \"ArchiveConsumerFunction\"}]"),
        statistic: "Sum",
        period: 300,
        threshold: "\"0\"",
    },
    ExpectedAlarm {
        name: "ConsumerThrottlesAlarm",
        condition: Some(QUEUE_CONDITION),
        namespace: "\"AWS/Lambda\"",
        metric: "Throttles",
        dimensions: Some("[{Name: \"FunctionName\", Value: !Ref \"ArchiveConsumerFunction\"}]"),
        statistic: "Sum",
        period: 300,
        threshold: "\"0\"",
    },
    ExpectedAlarm {
        name: "DeadLetterQueueAlarm",
        condition: Some(QUEUE_CONDITION),
        namespace: "\"AWS/SQS\"",
        metric: "ApproximateNumberOfMessagesVisible",
        dimensions: Some(
            "[{Name: \"QueueName\", Value: !GetAtt \"ArchiveDeadLetterQueue.QueueName\"}]",
        ),
        statistic: "Maximum",
        period: 60,
        threshold: "\"0\"",
    },
];

/// SAM event types for which SAM attaches an AWS managed execution policy whose Resource is
/// `"*"` (e.g. AWSLambdaSQSQueueExecutionRole) to the function's role.
const POLLER_EVENT_TYPES: &[&str] = &[
    "SQS",
    "Kinesis",
    "DynamoDB",
    "MSK",
    "MQ",
    "SelfManagedKafka",
    "DocumentDB",
];

fn template() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// template.yaml, read with saphyr.
// ---------------------------------------------------------------------------------------------

/// A YAML node of the template, with its tag (`!Ref`, `!If`, ...) and the line it starts on.
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

/// A template as the checks read it. saphyr's parser loads it with every scalar left as
/// written (`5400`, `true` and an empty value stay text, as CloudFormation receives them, not
/// typed as YAML 1.2 would); a syntax error, a repeated key or more than one document is an
/// error.
fn parse(src: &str) -> Result<Node, String> {
    let mut loader = YamlLoader::<MarkedYaml>::default();
    loader.early_parse(false);
    saphyr_parser::Parser::new_from_str(src)
        .load(&mut loader, true)
        .map_err(|e| e.to_string())?;
    if let Some(e) = loader.error() {
        return Err(e.to_string());
    }
    match loader.into_documents().as_slice() {
        [document] => node(document),
        documents => Err(format!("{} YAML documents, not one", documents.len())),
    }
}

/// saphyr's node as the [`Node`] the checks walk: its tag as written (`!Ref`, `!If`, ...), on a
/// scalar or a collection; the line it starts on; whether a scalar is a block scalar. Keys
/// must be untagged scalars, each once in its mapping.
fn node(yaml: &MarkedYaml) -> Result<Node, String> {
    let line = yaml.span.start.line();
    let tag = |t: &Tag| Some(format!("{}{}", t.handle, t.suffix));
    Ok(match &yaml.data {
        YamlData::Representation(text, style, t) => Node::Scalar {
            tag: t.as_deref().and_then(tag),
            text: text.to_string(),
            line,
            block: matches!(style, ScalarStyle::Literal | ScalarStyle::Folded),
        },
        YamlData::Sequence(items) => Node::Seq {
            tag: None,
            items: items.iter().map(node).collect::<Result<_, _>>()?,
            line,
        },
        YamlData::Mapping(map) => {
            let mut entries: Vec<(String, Node)> = Vec::new();
            for (key, value) in map {
                let at = key.span.start.line();
                let YamlData::Representation(key, _, None) = &key.data else {
                    return Err(format!(
                        "line {at}: a mapping key that is not a plain string"
                    ));
                };
                if entries.iter().any(|(k, _)| k == key) {
                    return Err(format!("line {at}: duplicate key {key}"));
                }
                entries.push((key.to_string(), node(value)?));
            }
            Node::Map {
                tag: None,
                entries,
                line,
            }
        }
        // saphyr keeps a scalar's tag in its representation, and wraps a tagged collection.
        YamlData::Tagged(t, inner) => {
            let mut tagged = node(inner)?;
            let (Node::Scalar { tag: slot, .. }
            | Node::Seq { tag: slot, .. }
            | Node::Map { tag: slot, .. }) = &mut tagged;
            *slot = tag(t);
            tagged
        }
        // Values are only loaded with early parsing; aliases are expanded, or an error.
        YamlData::Value(_) | YamlData::Alias(_) | YamlData::BadValue => {
            return Err(format!("line {line}: a node this test cannot read"));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Policy analysis.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Action {
    name: String,
    line: usize,
    /// The conditions it is granted under, outermost first: (condition, true for the "then"
    /// branch). The resource's own `Condition` comes first (as a "then" branch), then the
    /// enclosing `!If` branches.
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
    /// for every other statement (the functions' policies, checked strictly).
    key_policy: Option<String>,
    /// The logical id of the resource whose definition holds this statement (`None` outside
    /// `Resources`).
    owner: Option<String>,
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
    /// Resources of type AWS::Lambda::Permission: resource-based grants to invoke a
    /// function, not identity policies; checked by `seal_schedule_problems`.
    invoke_permissions: BTreeSet<String>,
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
        let mut a = Analysis {
            invoke_permissions: invoke_permissions(root),
            ..Analysis::default()
        };
        let conds = declared_conditions(root);
        a.walk(root, &mut Vec::new(), &conds, Place::Template, None);
        a.check_policy_forms(root);
        a.cross_check(root);
        a
    }

    /// `owner`: the logical id of the resource being walked. A resource's `Condition` is
    /// pushed on `path` like the then-branch of an `!If` around the whole resource.
    fn walk<'n>(
        &mut self,
        node: &'n Node,
        path: &mut Vec<(String, bool)>,
        conds: &BTreeSet<String>,
        place: Place<'n>,
        owner: Option<&'n str>,
    ) {
        if let Some((c, then, other)) = node.as_if() {
            let name = c.scalar().unwrap_or_default().to_string();
            path.push((name.clone(), true));
            self.walk(then, path, conds, place, owner);
            path.pop();
            path.push((name, false));
            self.walk(other, path, conds, place, owner);
            path.pop();
            return;
        }
        match node {
            Node::Map { entries, line, .. } => {
                let grant = node.get("Action").is_some() || node.get("NotAction").is_some();
                let invoke_permission = owner.is_some_and(|o| self.invoke_permissions.contains(o));
                if grant && !invoke_permission {
                    self.statement(node, *line, path, conds, place, owner);
                }
                for (k, v) in entries {
                    let (owner, gate) = match place {
                        Place::Resources => {
                            (Some(k.as_str()), v.get("Condition").and_then(Node::scalar))
                        }
                        _ => (owner, None),
                    };
                    if let Some(c) = gate {
                        path.push((c.to_string(), true));
                    }
                    self.walk(v, path, conds, place.enter(k, v), owner);
                    if gate.is_some() {
                        path.pop();
                    }
                }
            }
            Node::Seq { items, .. } => {
                for item in items {
                    self.walk(item, path, conds, place, owner);
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
        owner: Option<&str>,
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
            owner: owner.map(str::to_string),
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
    /// policies, roles defined elsewhere, connectors, SAM event sources that attach a managed
    /// policy. The functions' policies must be inline documents so that this test sees every
    /// action.
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
        // SAM merges Globals into every function; none of these may come from there.
        if let Some(globals) = root.get("Globals").and_then(|g| g.get("Function")) {
            for key in ["Role", "Policies", "Events"] {
                if let Some(v) = globals.get(key) {
                    self.violations.push(format!(
                        "line {}: Globals.Function.{key} gives every function permissions or \
                         event sources; set them on each function",
                        v.line()
                    ));
                }
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
            match props.get("Events") {
                None => {}
                Some(Node::Map { entries, .. }) => {
                    for (event, e) in entries {
                        let ty = e.get("Type");
                        let polls = match ty {
                            Some(Node::Scalar {
                                tag: None, text, ..
                            }) => POLLER_EVENT_TYPES
                                .iter()
                                .any(|t| t.eq_ignore_ascii_case(text)),
                            _ => true, // Unreadable: fail closed.
                        };
                        if polls {
                            self.violations.push(format!(
                                "function {name}: the SAM event {event} (line {}) of Type {:?} \
                                 makes SAM attach an AWS managed policy whose Resource is \"*\" \
                                 (e.g. AWSLambdaSQSQueueExecutionRole); declare an \
                                 AWS::Lambda::EventSourceMapping and grant on the queue only",
                                e.line(),
                                ty.and_then(Node::scalar).unwrap_or("?")
                            ));
                        }
                    }
                }
                Some(other) => self.violations.push(format!(
                    "function {name}: Events (line {}) is not a mapping this test can read",
                    other.line()
                )),
            }
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
        let mut read: BTreeSet<(usize, String)> = self
            .statements
            .iter()
            .flat_map(|s| s.actions.iter().chain(&s.not_actions))
            .map(|a| (a.line, a.name.clone()))
            .collect();
        // The Action of an invoke permission is checked by `seal_schedule_problems`.
        for id in &self.invoke_permissions {
            let action = root
                .get("Resources")
                .and_then(|r| r.get(id))
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("Action"));
            if let Some(node @ Node::Scalar { text, .. }) = action {
                read.insert((node.line(), text.trim().to_string()));
            }
        }
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

/// A function's property as SAM sees it: its own, or else the one in `Globals.Function`.
fn property<'n>(root: &'n Node, function: &str, key: &str) -> Option<&'n Node> {
    root.get("Resources")
        .and_then(|r| r.get(function))
        .and_then(|f| f.get("Properties"))
        .and_then(|p| p.get(key))
        .or_else(|| {
            root.get("Globals")
                .and_then(|g| g.get("Function"))
                .and_then(|g| g.get(key))
        })
}

/// An environment variable of a function as SAM merges it: the function's own value, or else
/// the one in `Globals.Function.Environment`.
fn environment<'n>(root: &'n Node, function: &str, var: &str) -> Option<&'n Node> {
    let variables = |env: Option<&'n Node>| env.and_then(|e| e.get("Variables"));
    let own = root
        .get("Resources")
        .and_then(|r| r.get(function))
        .and_then(|f| f.get("Properties"))
        .and_then(|p| p.get("Environment"));
    let global = root
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|g| g.get("Environment"));
    variables(own)
        .and_then(|v| v.get(var))
        .or_else(|| variables(global).and_then(|v| v.get(var)))
}

/// A node's content without its line numbers, to compare two definitions.
fn render(node: &Node) -> String {
    let tag = node.tag().map(|t| format!("{t} ")).unwrap_or_default();
    match node {
        Node::Scalar { text, .. } => format!("{tag}{text:?}"),
        Node::Seq { items, .. } => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("{tag}[{}]", items.join(", "))
        }
        Node::Map { entries, .. } => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", render(v)))
                .collect();
            format!("{tag}{{{}}}", entries.join(", "))
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

/// The template's `Conditions`, read to tell whether a condition implies another.
struct Logic<'n> {
    conditions: Option<&'n Node>,
}

impl<'n> Logic<'n> {
    fn of(root: &'n Node) -> Logic<'n> {
        Logic {
            conditions: root.get("Conditions"),
        }
    }

    /// `!Condition X` (or `{Condition: X}`) -> (X, true); `!Not [!Condition X]` -> (X, false).
    fn literal(node: &Node) -> Option<(&str, bool)> {
        match node {
            Node::Scalar {
                tag: Some(t), text, ..
            } if t == "!Condition" => Some((text.as_str(), true)),
            Node::Map { entries, .. } if entries.len() == 1 && entries[0].0 == "Condition" => {
                entries[0].1.scalar().map(|x| (x, true))
            }
            Node::Seq {
                tag: Some(t),
                items,
                ..
            } if t == "!Not" && items.len() == 1 => Logic::literal(&items[0]).map(|(x, p)| (x, !p)),
            _ => None,
        }
    }

    /// The `!Not`, `!And` or `!Or` defining a condition, with its operands as literals; `None`
    /// for any other definition (an `!Equals`), which implies nothing but itself.
    fn definition(&self, name: &str) -> Option<(&'n str, Vec<(&'n str, bool)>)> {
        let Some(Node::Seq {
            tag: Some(t),
            items,
            ..
        }) = self.conditions.and_then(|c| c.get(name))
        else {
            return None;
        };
        let literals: Option<Vec<_>> = items.iter().map(Logic::literal).collect();
        match t.as_str() {
            "!Not" if items.len() == 1 => Some(("!Not", literals?)),
            "!And" | "!Or" => Some((t.as_str(), literals?)),
            _ => None,
        }
    }

    /// Whether condition `fact.0` having the value `fact.1` gives condition `goal.0` the value
    /// `goal.1`. Sound, not complete: what it cannot tell counts as "no" (fail closed).
    fn implies(&self, fact: (&str, bool), goal: (&str, bool)) -> bool {
        self.implies_within(fact, goal, 8)
    }

    fn implies_within(&self, fact: (&str, bool), goal: (&str, bool), depth: usize) -> bool {
        if fact == goal {
            return true;
        }
        if depth == 0 {
            return false;
        }
        // What the fact tells about the conditions it is made of.
        let consequences: Vec<(&str, bool)> = match self.definition(fact.0) {
            // not(x == p) == v  <=>  x == (p != v)
            Some(("!Not", l)) => l.iter().map(|&(x, p)| (x, p != fact.1)).collect(),
            Some(("!And", l)) if fact.1 => l,
            Some(("!Or", l)) if !fact.1 => l.iter().map(|&(x, p)| (x, !p)).collect(),
            _ => Vec::new(),
        };
        if consequences
            .iter()
            .any(|&c| self.implies_within(c, goal, depth - 1))
        {
            return true;
        }
        // A goal defined as a negation: not(x == p) == v  <=>  x == (p != v).
        match self.definition(goal.0) {
            Some(("!Not", l)) => {
                let (x, p) = l[0];
                self.implies_within(fact, (x, p != goal.1), depth - 1)
            }
            _ => false,
        }
    }

    /// Whether an action granted under `conditions` (see [`Action::conditions`]) is granted
    /// only when `goal` holds.
    fn under(&self, conditions: &[(String, bool)], goal: &str) -> bool {
        conditions
            .iter()
            .any(|(c, then)| self.implies((c, *then), (goal, true)))
    }
}

/// The logical ids of the template's AWS::Lambda::Permission resources.
fn invoke_permissions(root: &Node) -> BTreeSet<String> {
    let Some(Node::Map { entries, .. }) = root.get("Resources") else {
        return BTreeSet::new();
    };
    entries
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Node::scalar) == Some("AWS::Lambda::Permission"))
        .map(|(id, _)| id.clone())
        .collect()
}

/// What is wrong with who may invoke the functions besides their URL: the only
/// AWS::Lambda::Permission lets EventBridge's seal rule, and nothing else, invoke the
/// function that writes the archive (the webhook function in direct mode, the consumer in
/// queue mode), and the rule runs on the SealSchedule parameter.
fn seal_schedule_problems(src: &str) -> Vec<String> {
    let root = match parse(src) {
        Ok(root) => root,
        Err(e) => return vec![format!("template.yaml could not be read: {e}")],
    };
    let mut v = Vec::new();
    let ids: Vec<String> = invoke_permissions(&root).into_iter().collect();
    if ids != ["SealSchedulePermission"] {
        v.push(format!(
            "the only AWS::Lambda::Permission must be SealSchedulePermission, found {ids:?}"
        ));
    }
    let resource = |name: &str| root.get("Resources").and_then(|r| r.get(name));
    let prop = |name: &str, key: &str| {
        resource(name)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get(key))
            .map(render)
            .unwrap_or_default()
    };
    let writer_ref =
        format!("!If [\"QueueMode\", !Ref \"{CONSUMER_FUNCTION}\", !Ref \"{WEBHOOK_FUNCTION}\"]");
    let writer_arn = format!(
        "!If [\"QueueMode\", !GetAtt \"{CONSUMER_FUNCTION}.Arn\", !GetAtt \"{WEBHOOK_FUNCTION}.Arn\"]"
    );
    for (key, expected) in [
        ("Action", "\"lambda:InvokeFunction\"".to_string()),
        ("Principal", "\"events.amazonaws.com\"".to_string()),
        ("SourceArn", "!GetAtt \"SealScheduleRule.Arn\"".to_string()),
        ("FunctionName", writer_ref),
    ] {
        let found = prop("SealSchedulePermission", key);
        if found != expected {
            v.push(format!(
                "SealSchedulePermission {key} is {found}, must be {expected}"
            ));
        }
    }
    for key in ["SourceAccount", "EventSourceToken", "FunctionUrlAuthType"] {
        if !prop("SealSchedulePermission", key).is_empty() {
            v.push(format!("SealSchedulePermission has an unexpected {key}"));
        }
    }
    let rule_type = resource("SealScheduleRule")
        .and_then(|r| r.get("Type"))
        .and_then(Node::scalar);
    if rule_type != Some("AWS::Events::Rule") {
        v.push("SealScheduleRule must be an AWS::Events::Rule".into());
    }
    if prop("SealScheduleRule", "ScheduleExpression") != "!Ref \"SealSchedule\"" {
        v.push("SealScheduleRule must run on the SealSchedule parameter".into());
    }
    if !prop("SealScheduleRule", "EventPattern").is_empty() {
        v.push("SealScheduleRule must be a schedule, not an event pattern".into());
    }
    let targets = prop("SealScheduleRule", "Targets");
    let expected_targets = format!("[{{Id: \"seal\", Arn: {writer_arn}}}]");
    if targets != expected_targets {
        v.push(format!(
            "SealScheduleRule targets {targets}, must be {expected_targets}"
        ));
    }
    v
}

/// All least-privilege violations in a template's text; empty means it passes.
fn violations(src: &str) -> Vec<String> {
    let root = match parse(src) {
        Ok(root) => root,
        Err(e) => return vec![format!("template.yaml could not be read by this test: {e}")],
    };
    let mut a = Analysis::new(&root);
    let mut v = std::mem::take(&mut a.violations);
    let logic = Logic::of(&root);
    // Per function: the S3, SQS and Secrets Manager actions granted to it, in any mode, and
    // the KMS actions on the secret's key.
    let mut granted_s3: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut granted_sqs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut granted_secret: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut granted_secret_kms: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let signer = role_path_pattern(&root, &logic);

    for st in &a.statements {
        if st.effect.as_deref() == Some("Deny") {
            continue; // A Deny only takes permissions away (e.g. the bucket's TLS-only rule).
        }
        if let Some(key) = &st.key_policy {
            check_key_policy(st, key, &signer, &mut v);
            continue;
        }
        if let Some(people) = PeoplePolicy::of(st.owner.as_deref()) {
            people_statement(people, st, &logic, &mut v);
            continue;
        }
        let who = describe(st);
        let function = match st.owner.as_deref() {
            Some(f @ (WEBHOOK_FUNCTION | CONSUMER_FUNCTION)) => f,
            other => {
                v.push(format!(
                    "{who}: an Allow statement in {other:?}; only the policies of \
                     {WEBHOOK_FUNCTION} and {CONSUMER_FUNCTION} (and the signing key's policy) \
                     may grant anything"
                ));
                ""
            }
        };
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
            let under = |condition: &str| logic.under(&act.conditions, condition);
            // A KMS action on the Veriff secret's key: read through Secrets Manager, by both
            // functions in both modes. Every other KMS action is the archive's.
            let secret_key = service == "kms" && on_secret_key(st);
            // The webhook touches the archive only in direct mode; the consumer exists only in
            // queue mode.
            if function == WEBHOOK_FUNCTION
                && matches!(service.as_str(), "s3" | "kms")
                && !secret_key
                && !under(DIRECT_CONDITION)
            {
                v.push(format!(
                    "`{name}` at template.yaml line {} in {who} of {function} is not under a \
                     condition that implies {DIRECT_CONDITION} (found {:?}): in queue mode the \
                     webhook function must not touch the archive",
                    act.line, act.conditions
                ));
            }
            if function == CONSUMER_FUNCTION && !under(QUEUE_CONDITION) {
                v.push(format!(
                    "`{name}` at template.yaml line {} in {who} of {function} is not under a \
                     condition that implies {QUEUE_CONDITION} (found {:?}): the consumer exists \
                     only in queue mode",
                    act.line, act.conditions
                ));
            }
            match service.as_str() {
                "s3" => {
                    granted_s3.entry(function).or_default().insert(name.clone());
                }
                "kms" if secret_key => {
                    granted_secret_kms
                        .entry(function)
                        .or_default()
                        .insert(name.clone());
                    if !name.eq_ignore_ascii_case(SECRET_KMS_ACTION) {
                        v.push(format!(
                            "unexpected KMS action `{name}` on !Ref {SECRET_KEY_PARAMETER} at \
                             template.yaml line {} in {who}: reading the secret needs \
                             {SECRET_KMS_ACTION} only",
                            act.line
                        ));
                    }
                    if !under(SECRET_KMS_CONDITION) {
                        v.push(format!(
                            "KMS action `{name}` on the Veriff secret's key at template.yaml line \
                             {} in {who} is not inside `!If [{SECRET_KMS_CONDITION}, <here>, \
                             ...]` (or a condition that implies it): without a secret encrypted \
                             by a {SECRET_KEY_PARAMETER} the function needs no KMS permission \
                             (found {:?})",
                            act.line, act.conditions
                        ));
                    }
                }
                "secretsmanager" => {
                    granted_secret
                        .entry(function)
                        .or_default()
                        .insert(name.clone());
                    if !name.eq_ignore_ascii_case(SECRET_ACTION) {
                        v.push(format!(
                            "unexpected Secrets Manager action `{name}` at template.yaml line {} \
                             in {who}: the functions only read the Veriff credentials \
                             ({SECRET_ACTION})",
                            act.line
                        ));
                    }
                    if !under(SECRET_CONDITION) {
                        v.push(format!(
                            "`{name}` at template.yaml line {} in {who} is not inside `!If \
                             [{SECRET_CONDITION}, <here>, ...]` (or a condition that implies \
                             it): without a VeriffSecret the functions read no secret (found \
                             {:?})",
                            act.line, act.conditions
                        ));
                    }
                }
                "kms" if name.eq_ignore_ascii_case(SIGN_ACTION) => {
                    if !under(SIGN_CONDITION) {
                        v.push(format!(
                            "KMS action `{name}` at template.yaml line {} in {who} is not inside \
                             `!If [{SIGN_CONDITION}, <here>, ...]` (or a condition that implies \
                             it): without a {SIGNING_KEY_PARAMETER} the function signs nothing",
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
                             `!If [{KMS_CONDITION}, <here>, ...]` (or a condition that implies \
                             it): without a KmsKeyArn the function needs no KMS permission",
                            act.line
                        ));
                    }
                }
                "sqs" => {
                    granted_sqs
                        .entry(function)
                        .or_default()
                        .insert(name.clone());
                    let allowed: &[&str] = match function {
                        WEBHOOK_FUNCTION => &[SEND_ACTION],
                        CONSUMER_FUNCTION => CONSUME_SQS,
                        _ => &[],
                    };
                    if !allowed.iter().any(|x| x.eq_ignore_ascii_case(name)) {
                        v.push(format!(
                            "unexpected SQS action `{name}` at template.yaml line {} in {who} of \
                             {function:?}: the webhook may only send ({SEND_ACTION}), the \
                             consumer only {CONSUME_SQS:?}",
                            act.line
                        ));
                    }
                    if function == WEBHOOK_FUNCTION && !under(QUEUE_CONDITION) {
                        v.push(format!(
                            "`{name}` at template.yaml line {} in {who} is not inside `!If \
                             [{QUEUE_CONDITION}, <here>, ...]`: the webhook enqueues only in \
                             queue mode (found {:?})",
                            act.line, act.conditions
                        ));
                    }
                }
                _ => v.push(format!(
                    "unexpected action `{name}` at template.yaml line {} in {who}: the \
                     functions only need S3 (and KMS with a KmsKeyArn or a signing key), SQS \
                     in queue mode, and Secrets Manager with a VeriffSecret",
                    act.line
                )),
            }
        }
        check_resources(st, &mut v);
    }

    let exact = |found: Option<&BTreeSet<String>>, expected: &[&str], what: &str| {
        let found = found.cloned().unwrap_or_default();
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        (found != expected).then(|| {
            let missing: Vec<_> = expected.difference(&found).collect();
            let extra: Vec<_> = found.difference(&expected).collect();
            format!(
                "{what} are not exactly {expected:?}: missing {missing:?}, unexpected {extra:?} \
                 (found {found:?})"
            )
        })
    };
    for function in [WEBHOOK_FUNCTION, CONSUMER_FUNCTION] {
        v.extend(exact(
            granted_s3.get(function),
            EXPECTED_S3,
            &format!("the S3 actions granted to {function}"),
        ));
    }
    v.extend(exact(
        granted_sqs.get(WEBHOOK_FUNCTION),
        &[SEND_ACTION],
        &format!("the SQS actions granted to {WEBHOOK_FUNCTION}"),
    ));
    v.extend(exact(
        granted_sqs.get(CONSUMER_FUNCTION),
        CONSUME_SQS,
        &format!("the SQS actions granted to {CONSUMER_FUNCTION}"),
    ));
    for function in [WEBHOOK_FUNCTION, CONSUMER_FUNCTION] {
        // The webhook authenticates with the shared secret, the consumer signs API requests:
        // both read the secret.
        v.extend(exact(
            granted_secret.get(function),
            &[SECRET_ACTION],
            &format!("the Secrets Manager actions granted to {function}"),
        ));
        v.extend(exact(
            granted_secret_kms.get(function),
            &[SECRET_KMS_ACTION],
            &format!("the KMS actions on the Veriff secret's key granted to {function}"),
        ));
    }
    v.extend(queue_violations(&root, &logic));
    v.extend(secret_violations(&root));
    v.extend(monitoring_violations(&root));
    v
}

/// The statement's Resource is `!Ref VeriffSecretKmsKeyArn`, exactly: the Veriff secret's
/// customer managed key.
/// The two policies for people (not functions) the template outputs: the operator's
/// (`retain`, `hold`, `release`, `erase`, `reindex`, and what `find` and `export` read) and
/// the auditor's (read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeoplePolicy {
    Operator,
    Auditor,
}

const OPERATOR_POLICY: &str = "CustomerOperatorPolicy";
const AUDITOR_POLICY: &str = "CustomerAuditorPolicy";
const INDEX_KEY_CONDITION: &str = "UseIndex";

/// Read-only S3 actions both policies hold: listing the archive's prefix (and its versions),
/// reading objects, their versions, retention and holds, and the bucket's lock set-up.
const PEOPLE_READ: &[&str] = &[
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectRetention",
    "s3:GetObjectLegalHold",
];

/// What only the operator holds: extending retention, legal holds, deleting a version once
/// it is free, and writing records (`ledger/`) and index entries (`index/`).
const OPERATOR_WRITE: &[&str] = &[
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:DeleteObjectVersion",
    "s3:RestoreObject",
    "s3:PutObject",
];

/// Never granted to people by this template: shortening or bypassing retention, changing
/// the bucket, deleting without a version (a delete marker hides evidence).
const PEOPLE_FORBIDDEN: &[&str] = &[
    "s3:BypassGovernanceRetention",
    "s3:DeleteObject",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
];

impl PeoplePolicy {
    fn of(owner: Option<&str>) -> Option<PeoplePolicy> {
        match owner {
            Some(OPERATOR_POLICY) => Some(PeoplePolicy::Operator),
            Some(AUDITOR_POLICY) => Some(PeoplePolicy::Auditor),
            _ => None,
        }
    }

    fn allows(self, action: &str) -> bool {
        let read = PEOPLE_READ.iter().any(|a| a.eq_ignore_ascii_case(action));
        let write = OPERATOR_WRITE
            .iter()
            .any(|a| a.eq_ignore_ascii_case(action));
        read || (self == PeoplePolicy::Operator && write)
    }
}

/// Checks one statement of a people policy: known actions only, each on its resource.
fn people_statement(policy: PeoplePolicy, st: &Statement, logic: &Logic<'_>, v: &mut Vec<String>) {
    let who = describe(st);
    let resource = st.resource.as_ref().map(render).unwrap_or_default();
    if !st.not_actions.is_empty() || st.effect.as_deref() != Some("Allow") {
        v.push(format!(
            "{who}: people policies hold plain Allow statements"
        ));
    }
    for act in &st.actions {
        let name = act.name.as_str();
        if PEOPLE_FORBIDDEN
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
            || is_wildcard(name)
        {
            v.push(format!(
                "{who}: `{name}` must never be granted to people by this template"
            ));
            continue;
        }
        let ok = match name.split(':').next().unwrap_or_default() {
            "s3" => {
                if !policy.allows(name) {
                    false
                } else if name.eq_ignore_ascii_case("s3:PutObject") {
                    // Records and index entries only, never the evidence itself.
                    resource.contains("${ArchivePrefix}ledger/*")
                        && resource.contains("${ArchivePrefix}index/*")
                        && !resource.contains("${ArchivePrefix}*")
                } else if name.starts_with("s3:ListBucket") {
                    resource.contains(":::${Bucket}\"")
                        && st.condition.as_ref().map(render).is_some_and(|c| {
                            c.contains("s3:prefix") && c.contains("${ArchivePrefix}*")
                        })
                } else if name.eq_ignore_ascii_case("s3:GetBucketObjectLockConfiguration") {
                    resource.contains(":::${Bucket}\"")
                } else {
                    resource.contains(":::${Bucket}/${ArchivePrefix}*\"")
                }
            }
            "secretsmanager" => {
                name == SECRET_ACTION
                    && logic.under(&act.conditions, INDEX_KEY_CONDITION)
                    && resource.contains("IndexKeySecret")
                    && resource.contains("IndexKey")
            }
            "kms" => {
                let allowed = match policy {
                    PeoplePolicy::Operator => EXPECTED_KMS,
                    PeoplePolicy::Auditor => &["kms:Decrypt"][..],
                };
                allowed.contains(&name)
                    && logic.under(&act.conditions, KMS_CONDITION)
                    && resource == "!Ref \"KmsKeyArn\""
            }
            _ => false,
        };
        if !ok {
            v.push(format!(
                "{who}: `{name}` on {resource} (line {}) is not what the {policy:?} policy needs",
                act.line
            ));
        }
    }
}

/// The people policies as a whole: each holds every action its commands need, and neither is
/// attached to anything by the template (the operator attaches it to a person's role).
fn people_policy_violations(src: &str) -> Vec<String> {
    let root = match parse(src) {
        Ok(root) => root,
        Err(e) => return vec![format!("template.yaml could not be read by this test: {e}")],
    };
    let a = Analysis::new(&root);
    let mut v = Vec::new();
    for (name, policy) in [
        (OPERATOR_POLICY, PeoplePolicy::Operator),
        (AUDITOR_POLICY, PeoplePolicy::Auditor),
    ] {
        let Some(resource) = root.get("Resources").and_then(|r| r.get(name)) else {
            v.push(format!("no {name} resource"));
            continue;
        };
        if resource.get("Type").and_then(Node::scalar) != Some("AWS::IAM::ManagedPolicy") {
            v.push(format!("{name} is not an AWS::IAM::ManagedPolicy"));
        }
        let props = resource.get("Properties");
        for key in ["Roles", "Users", "Groups"] {
            if props.and_then(|p| p.get(key)).is_some() {
                v.push(format!(
                    "{name}.{key}: the template attaches it; people attach it themselves"
                ));
            }
        }
        let granted: BTreeSet<String> = a
            .statements
            .iter()
            .filter(|st| st.owner.as_deref() == Some(name))
            .flat_map(|st| st.actions.iter().map(|a| a.name.clone()))
            .collect();
        let mut needed: Vec<&str> = PEOPLE_READ.to_vec();
        if policy == PeoplePolicy::Operator {
            needed.extend(OPERATOR_WRITE);
        }
        needed.extend([SECRET_ACTION, "kms:Decrypt"]);
        for action in needed {
            if !granted.contains(action) {
                v.push(format!("{name} lacks `{action}`, which its commands need"));
            }
        }
        let outputs = root.get("Outputs").map(render).unwrap_or_default();
        if !outputs.contains(&format!("!Ref \"{name}\"")) {
            v.push(format!("{name} is not among the template's outputs"));
        }
    }
    v
}

#[test]
fn people_policies_let_operators_retain_hold_and_erase_and_auditors_only_read() {
    let src = template();
    let found = people_policy_violations(&src);
    assert!(found.is_empty(), "{found:#?}");
    assert!(violations(&src).is_empty(), "{:#?}", violations(&src));

    // Each widening or loss is caught.
    let cases: &[(&str, String)] = &[
        (
            "the auditor may put legal holds",
            in_resource(&src, AUDITOR_POLICY, &|r| {
                replace_line(
                    r,
                    "- s3:GetObjectLegalHold",
                    &["- s3:GetObjectLegalHold", "- s3:PutObjectLegalHold"],
                )
            }),
        ),
        (
            "the operator may bypass governance retention",
            in_resource(&src, OPERATOR_POLICY, &|r| {
                replace_line(
                    r,
                    "- s3:DeleteObjectVersion",
                    &["- s3:DeleteObjectVersion", "- s3:BypassGovernanceRetention"],
                )
            }),
        ),
        (
            "the operator may overwrite evidence",
            in_resource(&src, OPERATOR_POLICY, &|r| {
                replace_line(
                    r,
                    "- \"arn:${AWS::Partition}:s3:::${Bucket}/${ArchivePrefix}index/*\"",
                    &["- \"arn:${AWS::Partition}:s3:::${Bucket}/${ArchivePrefix}*\""],
                )
            }),
        ),
        (
            "the operator cannot delete a version",
            in_resource(&src, OPERATOR_POLICY, &|r| {
                replace_line(r, "- s3:DeleteObjectVersion", &[])
            }),
        ),
        (
            "the listing is not limited to the prefix",
            in_resource(&src, AUDITOR_POLICY, &|r| {
                replace_line(
                    r,
                    "s3:prefix: !Sub \"${ArchivePrefix}*\"",
                    &["s3:delimiter: \"/\""],
                )
            }),
        ),
    ];
    for (what, mutated) in cases {
        let caught = people_policy_violations(mutated).len() + violations(mutated).len();
        assert!(caught > 0, "not caught: {what}");
    }
}

fn on_secret_key(st: &Statement) -> bool {
    is_tagged(st.resource.as_ref(), "!Ref", SECRET_KEY_PARAMETER)
}

/// `!If [CreateSecret, !Ref VeriffCredentialsSecret, !Ref VeriffSecret]`, exactly.
fn is_veriff_secret(node: &Node) -> bool {
    let Some((c, created, given)) = node.as_if() else {
        return false;
    };
    c.scalar() == Some(CREATE_SECRET_CONDITION)
        && is_tagged(Some(created), "!Ref", SECRET_RESOURCE)
        && is_tagged(Some(given), "!Ref", SECRET_PARAMETER)
}

/// A scalar `!Tag text`, exactly.
fn is_tagged(node: Option<&Node>, tag: &str, text: &str) -> bool {
    matches!(node, Some(Node::Scalar { tag: Some(t), text: x, .. }) if t == tag && x == text)
}

/// A plain (untagged) integer scalar.
fn number(node: Option<&Node>) -> Option<u64> {
    match node {
        Some(Node::Scalar {
            tag: None, text, ..
        }) => text.parse().ok(),
        _ => None,
    }
}

/// Queue mode's settings that the consumer, and the least privilege above, rely on: both
/// queues exist only in queue mode and keep messages 14 days; a failed record is retried only
/// after a visibility timeout of at least 6 x the largest function timeout, then moves to the
/// dead-letter queue after `QueueMaxReceiveCount` receives; the one event source mapping feeds
/// the consumer with partial batch responses and a bounded concurrency; and the webhook's role
/// joins the signing path only in direct mode.
fn queue_violations(root: &Node, logic: &Logic<'_>) -> Vec<String> {
    let mut v = Vec::new();
    let resources = root.get("Resources");
    let resource = |name: &str| resources.and_then(|r| r.get(name));
    let queue_only = |name: &str, res: &Node, v: &mut Vec<String>| {
        if res.get("Condition").and_then(Node::scalar) != Some(QUEUE_CONDITION) {
            v.push(format!(
                "{name} must have Condition: {QUEUE_CONDITION} (it exists only in queue mode)"
            ));
        }
    };

    for name in [QUEUE, DEAD_LETTER_QUEUE] {
        let Some(queue) = resource(name) else {
            v.push(format!("resource {name} is missing"));
            continue;
        };
        if queue.get("Type").and_then(Node::scalar) != Some("AWS::SQS::Queue") {
            v.push(format!("{name} must be an AWS::SQS::Queue"));
        }
        queue_only(name, queue, &mut v);
        let retention = number(
            queue
                .get("Properties")
                .and_then(|p| p.get("MessageRetentionPeriod")),
        );
        if retention != Some(QUEUE_RETENTION_SECONDS) {
            v.push(format!(
                "{name}: MessageRetentionPeriod must be {QUEUE_RETENTION_SECONDS} (14 days), \
                 found {retention:?}"
            ));
        }
    }
    let props = resource(QUEUE).and_then(|q| q.get("Properties"));
    let max_timeout = number(
        root.get("Parameters")
            .and_then(|p| p.get("Timeout"))
            .and_then(|t| t.get("MaxValue")),
    );
    let visibility = number(props.and_then(|p| p.get("VisibilityTimeout")));
    match (max_timeout, visibility) {
        (Some(t), Some(vt)) if vt >= VISIBILITY_PER_TIMEOUT * t => {}
        _ => v.push(format!(
            "{QUEUE}: VisibilityTimeout must be a literal >= {VISIBILITY_PER_TIMEOUT} x the \
             Timeout parameter's MaxValue (found {visibility:?} and {max_timeout:?}), so that \
             it is at least {VISIBILITY_PER_TIMEOUT} x the function timeout whatever its value"
        )),
    }
    let redrive = props.and_then(|p| p.get("RedrivePolicy"));
    if !is_tagged(
        redrive.and_then(|r| r.get("deadLetterTargetArn")),
        "!GetAtt",
        DEAD_LETTER_QUEUE_ARN,
    ) || !is_tagged(
        redrive.and_then(|r| r.get("maxReceiveCount")),
        "!Ref",
        "QueueMaxReceiveCount",
    ) {
        v.push(format!(
            "{QUEUE}: RedrivePolicy must be {{deadLetterTargetArn: !GetAtt \
             {DEAD_LETTER_QUEUE_ARN}, maxReceiveCount: !Ref QueueMaxReceiveCount}}, found \
             {redrive:?}"
        ));
    }

    let mappings: Vec<(&str, &Node)> = match resources {
        Some(Node::Map { entries, .. }) => entries
            .iter()
            .filter(|(_, r)| {
                r.get("Type").and_then(Node::scalar) == Some("AWS::Lambda::EventSourceMapping")
            })
            .map(|(k, r)| (k.as_str(), r))
            .collect(),
        _ => Vec::new(),
    };
    if mappings.len() != 1 {
        v.push(format!(
            "expected one AWS::Lambda::EventSourceMapping (the archive queue to the consumer), \
             found {}",
            mappings.len()
        ));
    }
    for (name, mapping) in mappings {
        queue_only(name, mapping, &mut v);
        let p = mapping.get("Properties");
        let get = |key: &str| p.and_then(|p| p.get(key));
        if !is_tagged(get("EventSourceArn"), "!GetAtt", QUEUE_ARN)
            || !is_tagged(get("FunctionName"), "!Ref", CONSUMER_FUNCTION)
        {
            v.push(format!(
                "{name}: EventSourceArn must be !GetAtt {QUEUE_ARN} and FunctionName !Ref \
                 {CONSUMER_FUNCTION}"
            ));
        }
        let responses: Vec<String> = get("FunctionResponseTypes")
            .map(scalars_of)
            .unwrap_or_default();
        if responses != ["ReportBatchItemFailures"] {
            v.push(format!(
                "{name}: FunctionResponseTypes must be [ReportBatchItemFailures] (the consumer \
                 names the records that failed; without it a failed record fails and re-runs \
                 its whole batch), found {responses:?}"
            ));
        }
        let concurrency = get("ScalingConfig").and_then(|s| s.get("MaximumConcurrency"));
        if concurrency.is_none_or(|c| c.scalar() == Some("")) {
            v.push(format!(
                "{name}: ScalingConfig.MaximumConcurrency must be set, so that a burst cannot \
                 flood Veriff with downloads"
            ));
        }
        let depends = mapping.get("DependsOn").map(scalars_of).unwrap_or_default();
        if !depends.iter().any(|d| d == CONSUMER_ROLE) {
            v.push(format!(
                "{name}: must have DependsOn {CONSUMER_ROLE}, so that the role may poll the \
                 queue before the mapping starts"
            ));
        }
    }
    match resource(CONSUMER_FUNCTION) {
        Some(consumer) => queue_only(CONSUMER_FUNCTION, consumer, &mut v),
        None => v.push(format!("resource {CONSUMER_FUNCTION} is missing")),
    }

    // The key policy lets sign every role under the signing path: in queue mode the webhook's
    // role must not be one of them.
    let path = resource(WEBHOOK_FUNCTION)
        .and_then(|f| f.get("Properties"))
        .and_then(|p| p.get("RolePath"));
    let direct_only = match path.map(|p| (p, p.as_if())) {
        None => true,
        Some((_, Some((c, _, other)))) => {
            let c = c.scalar().unwrap_or_default();
            logic.implies((c, true), (DIRECT_CONDITION, true)) && other.is_no_value()
        }
        Some((_, None)) => false,
    };
    if !direct_only {
        v.push(format!(
            "{WEBHOOK_FUNCTION}: RolePath must be !If [<a condition that implies \
             {DIRECT_CONDITION} and {SIGN_CONDITION}>, <path>, !Ref AWS::NoValue]: in queue \
             mode the webhook's role must not be one the signing key's policy lets sign, found \
             {path:?}"
        ));
    }
    v
}

/// The `AllowedPattern` of `VeriffSecret`: empty, `create`, or a secret ARN.
const SECRET_PATTERN: &str =
    "^$|^create$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$";

/// The three ways to give the credentials, as (what, UseSecret, CreateSecret).
const CREDENTIAL_SCENARIOS: &[(&str, bool, bool)] = &[
    ("VeriffSecret empty", false, false),
    ("VeriffSecret=create", true, true),
    ("VeriffSecret=<secret ARN>", true, false),
];

/// The Rules on the credentials' parameters, [`render`]ed: (RuleCondition, the assertions one
/// rule with that condition must make).
const SECRET_RULES: &[(&str, &[&str])] = &[
    // Plain variables, or the secret the stack creates from them: both required.
    (
        r#"!Or [!Equals [!Ref "VeriffSecret", ""], !Equals [!Ref "VeriffSecret", "create"]]"#,
        &[
            r#"!Not [!Equals [!Ref "VeriffApiKey", ""]]"#,
            r#"!Not [!Equals [!Ref "VeriffSharedSecret", ""]]"#,
        ],
    ),
    // An existing secret: both left empty, so that nobody believes they are in force.
    (
        r#"!And [!Not [!Equals [!Ref "VeriffSecret", ""]], !Not [!Equals [!Ref "VeriffSecret", "create"]]]"#,
        &[
            r#"!Equals [!Ref "VeriffApiKey", ""]"#,
            r#"!Equals [!Ref "VeriffSharedSecret", ""]"#,
        ],
    ),
    // No secret: no key for it either.
    (
        r#"!Equals [!Ref "VeriffSecret", ""]"#,
        &[r#"!Equals [!Ref "VeriffSecretKmsKeyArn", ""]"#],
    ),
];

/// `node` once the `!If`s in it are decided by `assignment`: `Ok(None)` for `!Ref
/// AWS::NoValue`; an error for an `!If` on a condition the assignment does not decide.
fn resolve<'n>(node: &'n Node, assignment: &[(&str, bool)]) -> Result<Option<&'n Node>, String> {
    if let Some((c, then, other)) = node.as_if() {
        let name = c.scalar().unwrap_or_default();
        let Some(&(_, value)) = assignment.iter().find(|(c, _)| *c == name) else {
            return Err(format!(
                "line {}: depends on condition {name}, which is not one of {:?}",
                node.line(),
                assignment.iter().map(|(c, _)| c).collect::<Vec<_>>()
            ));
        };
        return resolve(if value { then } else { other }, assignment);
    }
    Ok((!node.is_no_value()).then_some(node))
}

/// The Veriff credentials' wiring: the parameters and conditions; both functions' environment
/// in each of [`CREDENTIAL_SCENARIOS`] (the credentials themselves never beside
/// `VERIFF_SECRET_ARN`); the created secret, in the shape the functions read; its output;
/// and the Rules that make the credentials' parameters required or empty.
fn secret_violations(root: &Node) -> Vec<String> {
    let mut v = Vec::new();
    let field = |node: Option<&Node>, key: &str| {
        node.and_then(|n| n.get(key))
            .map(render)
            .unwrap_or_default()
    };
    let param = |name: &str| root.get("Parameters").and_then(|p| p.get(name));
    let condition = |name: &str| {
        root.get("Conditions")
            .and_then(|c| c.get(name))
            .map(render)
            .unwrap_or_default()
    };

    let secret = param(SECRET_PARAMETER);
    if field(secret, "Default") != "\"\""
        || secret
            .and_then(|p| p.get("AllowedPattern"))
            .and_then(Node::scalar)
            != Some(SECRET_PATTERN)
    {
        v.push(format!(
            "parameter {SECRET_PARAMETER}: Default \"\" and AllowedPattern {SECRET_PATTERN:?} \
             (empty, create or a secret ARN)"
        ));
    }
    if field(param(SECRET_KEY_PARAMETER), "Default") != "\"\"" {
        v.push(format!(
            "parameter {SECRET_KEY_PARAMETER}: Default \"\" (the AWS managed key)"
        ));
    }
    let refresh = param("SecretRefreshSeconds");
    let refresh_fields: Vec<String> = ["Type", "Default", "MinValue", "MaxValue"]
        .iter()
        .map(|k| field(refresh, k))
        .collect();
    if refresh_fields != ["\"Number\"", "\"300\"", "\"1\"", "\"3600\""] {
        v.push(format!(
            "parameter SecretRefreshSeconds: Number, Default 300, 1 to 3600 (src/config.rs \
             accepts 1-3600), found {refresh_fields:?}"
        ));
    }
    for (_, name) in CREDENTIAL_VARIABLES {
        let p = param(name);
        let pattern = p
            .and_then(|p| p.get("AllowedPattern"))
            .and_then(Node::scalar)
            .unwrap_or_default();
        if field(p, "NoEcho") != "\"true\""
            || field(p, "Default") != "\"\""
            || p.and_then(|p| p.get("MinLength")).is_some()
            || !pattern.starts_with("^$|")
        {
            v.push(format!(
                "parameter {name}: NoEcho true, Default \"\", no MinLength and an AllowedPattern \
                 that accepts \"\" (^$|...): it is optional with a secret ARN (the Rules decide)"
            ));
        }
    }

    for (name, expected) in [
        (
            SECRET_CONDITION,
            r#"!Not [!Equals [!Ref "VeriffSecret", ""]]"#,
        ),
        (
            CREATE_SECRET_CONDITION,
            r#"!Equals [!Ref "VeriffSecret", "create"]"#,
        ),
    ] {
        let found = condition(name);
        if found != expected {
            v.push(format!(
                "condition {name} must be {expected}, found {found}"
            ));
        }
    }
    // UseSecretKms = UseSecret and a key is set.
    let kms = root
        .get("Conditions")
        .and_then(|c| c.get(SECRET_KMS_CONDITION));
    let key_set = match kms {
        Some(Node::Seq {
            tag: Some(t),
            items,
            ..
        }) if t == "!And" && items.len() == 2 => {
            let names: Vec<Option<(&str, bool)>> = items.iter().map(Logic::literal).collect();
            match names.as_slice() {
                [Some((SECRET_CONDITION, true)), Some((other, true))]
                | [Some((other, true)), Some((SECRET_CONDITION, true))] => {
                    condition(other) == r#"!Not [!Equals [!Ref "VeriffSecretKmsKeyArn", ""]]"#
                }
                _ => false,
            }
        }
        _ => false,
    };
    if !key_set {
        v.push(format!(
            "condition {SECRET_KMS_CONDITION} must be !And [!Condition {SECRET_CONDITION}, \
             !Condition <{SECRET_KEY_PARAMETER} != \"\">], found {:?}",
            kms.map(render)
        ));
    }

    // Each function's environment, in each way of giving the credentials.
    for function in [WEBHOOK_FUNCTION, CONSUMER_FUNCTION] {
        for &(what, use_secret, create) in CREDENTIAL_SCENARIOS {
            let assignment = [
                (SECRET_CONDITION, use_secret),
                (CREATE_SECRET_CONDITION, create),
            ];
            let mut expect = |var: &str, expected: Option<(&str, &str)>, why: &str| {
                let found = match environment(root, function, var) {
                    None => Ok(None),
                    Some(node) => resolve(node, &assignment),
                };
                let ok = match (&found, expected) {
                    (Ok(None), None) => true,
                    (Ok(Some(node)), Some((tag, text))) => is_tagged(Some(node), tag, text),
                    _ => false,
                };
                if !ok {
                    v.push(format!(
                        "{function}: with {what}, {var} must be {} ({why}), found {:?}",
                        expected.map_or("unset".to_string(), |(t, x)| format!("{t} {x}")),
                        found.map(|n| n.map(render))
                    ));
                }
            };
            for (var, name) in CREDENTIAL_VARIABLES {
                expect(
                    var,
                    (!use_secret).then_some(("!Ref", name)),
                    "the credentials come from the secret alone when there is one; \
                     src/config.rs refuses them beside VERIFF_SECRET_ARN",
                );
            }
            let arn = match (use_secret, create) {
                (false, _) => None,
                (true, true) => Some(("!Ref", SECRET_RESOURCE)),
                (true, false) => Some(("!Ref", SECRET_PARAMETER)),
            };
            expect(
                "VERIFF_SECRET_ARN",
                arn,
                "the secret the function is allowed to read",
            );
            expect(
                "SECRET_REFRESH_SECONDS",
                use_secret.then_some(("!Ref", "SecretRefreshSeconds")),
                "only with a secret",
            );
        }
    }

    // The created secret, in the shape src/config.rs reads.
    let resource = root.get("Resources").and_then(|r| r.get(SECRET_RESOURCE));
    let text = |key: &str| resource.and_then(|r| r.get(key)).and_then(Node::scalar);
    if text("Type") != Some("AWS::SecretsManager::Secret")
        || text("Condition") != Some(CREATE_SECRET_CONDITION)
    {
        v.push(format!(
            "{SECRET_RESOURCE} must be an AWS::SecretsManager::Secret with Condition: \
             {CREATE_SECRET_CONDITION}"
        ));
    }
    let props = resource.and_then(|r| r.get("Properties"));
    let key = field(props, "KmsKeyId");
    if key != r#"!If ["UseSecretKms", !Ref "VeriffSecretKmsKeyArn", !Ref "AWS::NoValue"]"# {
        v.push(format!(
            "{SECRET_RESOURCE}: KmsKeyId must be !If [{SECRET_KMS_CONDITION}, !Ref \
             {SECRET_KEY_PARAMETER}, !Ref AWS::NoValue] (the key the functions may decrypt \
             with), found {key}"
        ));
    }
    let value = match props.and_then(|p| p.get("SecretString")) {
        Some(Node::Scalar {
            tag: Some(t), text, ..
        }) if t == "!Sub" => {
            let vars: BTreeMap<String, String> = [
                ("VeriffApiKey", "sample-api-key"),
                ("VeriffSharedSecret", "current-secret,previous-secret"),
            ]
            .iter()
            .map(|(k, x)| (k.to_string(), x.to_string()))
            .collect();
            substitute(text, &|name| {
                vars.get(name)
                    .cloned()
                    .ok_or_else(|| format!("names {name}"))
            })
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).map_err(|e| e.to_string()))
        }
        other => Err(format!("found {:?}", other.map(render))),
    };
    let expected = serde_json::json!({
        "apiKey": "sample-api-key",
        "sharedSecret": "current-secret,previous-secret",
    });
    if value.as_ref() != Ok(&expected) {
        v.push(format!(
            "{SECRET_RESOURCE}: SecretString must be !Sub '{{\"apiKey\":\"${{VeriffApiKey}}\",\
             \"sharedSecret\":\"${{VeriffSharedSecret}}\"}}' (the JSON src/config.rs reads): \
             {value:?}"
        ));
    }
    let output = root.get("Outputs").and_then(|o| o.get("VeriffSecretArn"));
    if field(output, "Condition") != format!("{SECRET_CONDITION:?}")
        || !output
            .and_then(|o| o.get("Value"))
            .is_some_and(is_veriff_secret)
    {
        v.push(format!(
            "output VeriffSecretArn: Condition {SECRET_CONDITION}, Value !If \
             [{CREATE_SECRET_CONDITION}, !Ref {SECRET_RESOURCE}, !Ref {SECRET_PARAMETER}]"
        ));
    }

    // The Rules.
    let rules: Vec<&Node> = match root.get("Rules") {
        Some(Node::Map { entries, .. }) => entries.iter().map(|(_, r)| r).collect(),
        _ => Vec::new(),
    };
    for (rule_condition, assertions) in SECRET_RULES {
        let found = rules.iter().any(|rule| {
            field(Some(rule), "RuleCondition") == *rule_condition
                && assertions.iter().all(|a| {
                    rule.get("Assertions").is_some_and(|list| match list {
                        Node::Seq { items, .. } => items.iter().any(|item| {
                            field(Some(item), "Assert") == *a
                                && !field(Some(item), "AssertDescription").is_empty()
                        }),
                        _ => false,
                    })
                })
        });
        if !found {
            v.push(format!(
                "Rules: no rule with RuleCondition {rule_condition} asserts {assertions:?} \
                 (each with an AssertDescription)"
            ));
        }
    }
    v
}

/// `${Name}` in a `!Sub` string replaced by `value(Name)`; `${!Literal}` becomes `${Literal}`.
fn substitute(
    text: &str,
    value: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("an unterminated ${{ in {text:?}"))?;
        let name = &after[..end];
        match name.strip_prefix('!') {
            Some(literal) => {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            }
            None => out.push_str(&value(name)?),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Sample values the dashboard body is rendered with.
const SAMPLE_REGION: &str = "eu-west-1";
const SAMPLE_NAMESPACE: &str = "Sample/Namespace#1";

/// What `${name}` stands for in the dashboard body: a sample value, `sample:<Resource>` or
/// `sample:<Resource>.<Attribute>`. An error for a name that is neither a parameter nor a
/// resource, or a resource that does not exist in this mode.
fn dashboard_value(root: &Node, name: &str, queue: bool) -> Result<String, String> {
    let fixed = match name {
        "AWS::Region" => Some(SAMPLE_REGION),
        "AWS::StackName" => Some("sample-stack"),
        "AWS::AccountId" => Some("123456789012"),
        "AWS::Partition" => Some("aws"),
        "AWS::URLSuffix" => Some("amazonaws.com"),
        NAMESPACE_PARAMETER => Some(SAMPLE_NAMESPACE),
        "IngestMode" => Some(if queue { "queue" } else { "direct" }),
        _ => None,
    };
    if let Some(value) = fixed {
        return Ok(value.to_string());
    }
    if root.get("Parameters").and_then(|p| p.get(name)).is_some() {
        return Ok(format!("sample-{name}"));
    }
    let resource = name.split_once('.').map_or(name, |(r, _)| r);
    let Some(res) = root.get("Resources").and_then(|r| r.get(resource)) else {
        return Err(format!(
            "names ${{{name}}}, which is neither a parameter nor a resource"
        ));
    };
    match res.get("Condition").and_then(Node::scalar) {
        None => {}
        Some(QUEUE_CONDITION) if queue => {}
        Some(c) => {
            return Err(format!(
                "names ${{{name}}} in {} mode, but {resource} exists only under Condition {c}",
                if queue { "queue" } else { "direct" }
            ));
        }
    }
    Ok(format!("sample:{name}"))
}

/// The dashboard body as CloudFormation would pass it, in direct or queue mode: `!Sub` (with
/// or without a variable map), `!Join` and `!If` on QueueMode / DirectMode.
fn dashboard_body(root: &Node, queue: bool) -> Result<String, String> {
    fn evaluate(
        root: &Node,
        node: &Node,
        queue: bool,
        vars: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let value = |name: &str| match vars.get(name) {
            Some(v) => Ok(v.clone()),
            None => dashboard_value(root, name, queue),
        };
        if let Some((c, then, other)) = node.as_if() {
            let holds = match c.scalar().unwrap_or_default() {
                QUEUE_CONDITION => queue,
                DIRECT_CONDITION => !queue,
                c => {
                    return Err(format!(
                        "line {}: an !If on {c}; the dashboard depends on the ingest mode only",
                        node.line()
                    ));
                }
            };
            return evaluate(root, if holds { then } else { other }, queue, vars);
        }
        match node {
            Node::Scalar {
                tag: None, text, ..
            } => Ok(text.clone()),
            Node::Scalar {
                tag: Some(t), text, ..
            } if t == "!Sub" => substitute(text, &value),
            Node::Seq {
                tag: Some(t),
                items,
                ..
            } if t == "!Sub" && items.len() == 2 => {
                let (Some(text), Node::Map { entries, .. }) = (items[0].scalar(), &items[1]) else {
                    return Err(format!("line {}: !Sub [text, {{variables}}]", node.line()));
                };
                let mut local = vars.clone();
                for (k, v) in entries {
                    local.insert(k.clone(), evaluate(root, v, queue, vars)?);
                }
                substitute(text, &|name: &str| match local.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => dashboard_value(root, name, queue),
                })
            }
            Node::Seq {
                tag: Some(t),
                items,
                ..
            } if t == "!Join" && items.len() == 2 => {
                let (Some(separator), Node::Seq { items: parts, .. }) =
                    (items[0].scalar(), &items[1])
                else {
                    return Err(format!("line {}: !Join [separator, [parts]]", node.line()));
                };
                let parts: Result<Vec<String>, String> = parts
                    .iter()
                    .map(|p| evaluate(root, p, queue, vars))
                    .collect();
                Ok(parts?.join(separator))
            }
            other => Err(format!(
                "line {}: a form this test cannot evaluate: {}",
                other.line(),
                render(other)
            )),
        }
    }
    let body = root
        .get("Resources")
        .and_then(|r| r.get(DASHBOARD))
        .and_then(|d| d.get("Properties"))
        .and_then(|p| p.get("DashboardBody"))
        .ok_or_else(|| format!("{DASHBOARD} has no DashboardBody"))?;
    evaluate(root, body, queue, &BTreeMap::new())
}

/// A metric of a dashboard widget: (namespace, name, dimension names and values).
type Metric = (String, String, Vec<String>);

/// What a rendered dashboard shows: the statistics of each metric, the metric math
/// expressions, and the alarms of its alarm widgets.
#[derive(Default)]
struct Dashboard {
    metrics: BTreeMap<Metric, BTreeSet<String>>,
    expressions: Vec<String>,
    alarms: BTreeSet<String>,
}

/// Reads a rendered dashboard body; an error for what CloudWatch would refuse or misread.
fn read_dashboard(body: &str) -> Result<Dashboard, Vec<String>> {
    use serde_json::Value;
    let json: Value = serde_json::from_str(body).map_err(|e| {
        vec![format!(
            "the dashboard body is not valid JSON once substituted: {e}:\n{body}"
        )]
    })?;
    let Some(widgets) = json.get("widgets").and_then(Value::as_array) else {
        return Err(vec!["the dashboard body has no widgets array".to_string()]);
    };
    let mut d = Dashboard::default();
    let mut errors = Vec::new();
    for (i, w) in widgets.iter().enumerate() {
        let props = &w["properties"];
        let title = props["title"].as_str().unwrap_or_default();
        let who = format!("dashboard widget {i} ({title:?})");
        match w["type"].as_str() {
            Some("metric") => {
                if props["region"].as_str() != Some(SAMPLE_REGION) {
                    errors.push(format!("{who}: region must be ${{AWS::Region}}"));
                }
                let default_stat = props["stat"].as_str().unwrap_or("Average");
                let Some(rows) = props["metrics"].as_array() else {
                    errors.push(format!("{who}: no metrics array"));
                    continue;
                };
                for row in rows {
                    let Some(row) = row.as_array() else {
                        errors.push(format!("{who}: a metric that is not an array: {row}"));
                        continue;
                    };
                    let options = row.last().and_then(Value::as_object);
                    if let Some(expression) = options
                        .filter(|_| row.len() == 1)
                        .and_then(|o| o.get("expression"))
                    {
                        match (expression.as_str(), options.and_then(|o| o.get("id"))) {
                            (Some(e), Some(_)) => d.expressions.push(e.to_string()),
                            _ => errors.push(format!("{who}: an expression needs an id")),
                        }
                        continue;
                    }
                    let strings: Vec<&str> = row.iter().filter_map(Value::as_str).collect();
                    let shape = strings.len() + usize::from(options.is_some()) == row.len()
                        && strings.len() >= 2
                        && strings.len().is_multiple_of(2)
                        && strings.iter().all(|s| !s.is_empty() && *s != ".");
                    if !shape {
                        errors.push(format!(
                            "{who}: a metric must be [namespace, name, (dimension, value)*, \
                             {{options}}?], spelled out: {row:?}"
                        ));
                        continue;
                    }
                    let stat = options
                        .and_then(|o| o.get("stat"))
                        .and_then(Value::as_str)
                        .unwrap_or(default_stat);
                    let metric = (
                        strings[0].to_string(),
                        strings[1].to_string(),
                        strings[2..].iter().map(|s| s.to_string()).collect(),
                    );
                    d.metrics
                        .entry(metric)
                        .or_default()
                        .insert(stat.to_string());
                }
            }
            Some("alarm") => match props["alarms"].as_array() {
                Some(alarms) => d
                    .alarms
                    .extend(alarms.iter().filter_map(Value::as_str).map(str::to_string)),
                None => errors.push(format!("{who}: no alarms array")),
            },
            Some("text") => {}
            other => errors.push(format!("{who}: unexpected widget type {other:?}")),
        }
    }
    if errors.is_empty() {
        Ok(d)
    } else {
        Err(errors)
    }
}

/// The metrics namespace, the alarms (exactly [`ALARMS`], each notifying the topic when there
/// is one), the topic, and the dashboard in both modes.
fn monitoring_violations(root: &Node) -> Vec<String> {
    let mut v = Vec::new();
    let field = |node: Option<&Node>, key: &str| {
        node.and_then(|n| n.get(key))
            .map(render)
            .unwrap_or_default()
    };
    let param = |name: &str| root.get("Parameters").and_then(|p| p.get(name));
    let resource = |name: &str| root.get("Resources").and_then(|r| r.get(name));

    let namespace = param(NAMESPACE_PARAMETER);
    let pattern = namespace
        .and_then(|p| p.get("AllowedPattern"))
        .and_then(Node::scalar)
        .unwrap_or_default();
    if field(namespace, "Default") != "\"VeriffArchiver\"" || !pattern.starts_with("^(?!AWS/)") {
        v.push(format!(
            "parameter {NAMESPACE_PARAMETER}: Default VeriffArchiver, and an AllowedPattern \
             that refuses the AWS/ namespaces (^(?!AWS/)...), found {pattern:?}"
        ));
    }
    for function in [WEBHOOK_FUNCTION, CONSUMER_FUNCTION] {
        if !is_tagged(
            environment(root, function, "METRICS_NAMESPACE"),
            "!Ref",
            NAMESPACE_PARAMETER,
        ) {
            v.push(format!(
                "{function}: METRICS_NAMESPACE must be !Ref {NAMESPACE_PARAMETER} (the \
                 namespace the alarms and the dashboard read)"
            ));
        }
    }
    let threshold = param("RejectedWebhooksThreshold");
    let threshold_fields: Vec<String> = ["Type", "Default", "MinValue"]
        .iter()
        .map(|k| field(threshold, k))
        .collect();
    if threshold_fields != ["\"Number\"", "\"10\"", "\"0\""] {
        v.push(format!(
            "parameter RejectedWebhooksThreshold: Number, Default 10, MinValue 0, found \
             {threshold_fields:?}"
        ));
    }
    if field(param("AlarmEmail"), "Default") != "\"\"" {
        v.push("parameter AlarmEmail: Default \"\" (no email)".to_string());
    }
    let has_email = root
        .get("Conditions")
        .and_then(|c| c.get(ALARM_EMAIL_CONDITION))
        .map(render)
        .unwrap_or_default();
    if has_email != r#"!Not [!Equals [!Ref "AlarmEmail", ""]]"# {
        v.push(format!(
            "condition {ALARM_EMAIL_CONDITION} must be !Not [!Equals [!Ref AlarmEmail, \"\"]], \
             found {has_email}"
        ));
    }
    let topic = resource(ALARM_TOPIC);
    if field(topic, "Type") != "\"AWS::SNS::Topic\""
        || field(topic, "Condition") != format!("{ALARM_EMAIL_CONDITION:?}")
        || field(topic.and_then(|t| t.get("Properties")), "Subscription")
            != r#"[{Protocol: "email", Endpoint: !Ref "AlarmEmail"}]"#
    {
        v.push(format!(
            "{ALARM_TOPIC} must be an AWS::SNS::Topic with Condition {ALARM_EMAIL_CONDITION} and \
             Subscription [{{Protocol: email, Endpoint: !Ref AlarmEmail}}]"
        ));
    }

    // Exactly the expected alarms.
    let found: BTreeSet<&str> = match root.get("Resources") {
        Some(Node::Map { entries, .. }) => entries
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Node::scalar) == Some("AWS::CloudWatch::Alarm"))
            .map(|(k, _)| k.as_str())
            .collect(),
        _ => BTreeSet::new(),
    };
    let expected: BTreeSet<&str> = ALARMS.iter().map(|a| a.name).collect();
    if found != expected {
        v.push(format!(
            "the alarms are not exactly {expected:?}: missing {:?}, unexpected {:?} (add a new \
             alarm to ALARMS with what it must be)",
            expected.difference(&found).collect::<Vec<_>>(),
            found.difference(&expected).collect::<Vec<_>>()
        ));
    }
    let actions = r#"!If ["HasAlarmEmail", [!Ref "AlarmTopic"], !Ref "AWS::NoValue"]"#;
    for alarm in ALARMS {
        let Some(res) = resource(alarm.name) else {
            continue;
        };
        let name = alarm.name;
        let condition = res.get("Condition").and_then(Node::scalar);
        if condition != alarm.condition {
            v.push(format!(
                "{name}: Condition must be {:?}, found {condition:?}",
                alarm.condition
            ));
        }
        let props = res.get("Properties");
        let get = |key: &str| props.and_then(|p| p.get(key));
        let mut wrong = Vec::new();
        let mut expect = |key: &str, expected: String| {
            let found = field(props, key);
            if found != expected {
                wrong.push(format!("{key} must be {expected}, found {found:?}"));
            }
        };
        expect("Namespace", alarm.namespace.to_string());
        expect("MetricName", format!("{:?}", alarm.metric));
        expect(
            "Dimensions",
            alarm.dimensions.unwrap_or_default().to_string(),
        );
        expect("Statistic", format!("{:?}", alarm.statistic));
        expect("Period", format!("\"{}\"", alarm.period));
        expect("EvaluationPeriods", "\"1\"".to_string());
        expect("Threshold", alarm.threshold.to_string());
        expect("ComparisonOperator", "\"GreaterThanThreshold\"".to_string());
        expect("TreatMissingData", "\"notBreaching\"".to_string());
        expect("AlarmActions", actions.to_string());
        expect("OKActions", actions.to_string());
        for key in ["ActionsEnabled", "ExtendedStatistic", "Metrics"] {
            if get(key).is_some() {
                wrong.push(format!("{key} must not be set"));
            }
        }
        let described = get("AlarmDescription")
            .and_then(Node::scalar)
            .is_some_and(|d| d.contains("docs/operations.md, \"Alarms\""));
        if !described {
            wrong.push(
                "AlarmDescription must say what the alarm means and point to docs/operations.md, \
                 \"Alarms\""
                    .to_string(),
            );
        }
        for w in wrong {
            v.push(format!("{name}: {w}"));
        }
    }

    // The dashboard.
    let dashboard = resource(DASHBOARD);
    if field(dashboard, "Type") != "\"AWS::CloudWatch::Dashboard\""
        || dashboard.and_then(|d| d.get("Condition")).is_some()
        || field(dashboard.and_then(|d| d.get("Properties")), "DashboardName")
            != r#"!Sub "${AWS::StackName}-veriff-archiver""#
    {
        v.push(format!(
            "{DASHBOARD} must be an AWS::CloudWatch::Dashboard in both modes, with \
             DashboardName !Sub \"${{AWS::StackName}}-veriff-archiver\""
        ));
    }
    for queue in [false, true] {
        let mode = if queue { "queue" } else { "direct" };
        let d = match dashboard_body(root, queue).map(|b| read_dashboard(&b)) {
            Err(e) => {
                v.push(format!("{DASHBOARD} in {mode} mode: {e}"));
                continue;
            }
            Ok(Err(errors)) => {
                v.extend(
                    errors
                        .into_iter()
                        .map(|e| format!("{DASHBOARD} in {mode} mode: {e}")),
                );
                continue;
            }
            Ok(Ok(d)) => d,
        };
        let mut missing = Vec::new();
        let mut shows = |namespace: &str, name: &str, dimensions: &[&str], stats: &[&str]| {
            let key = (
                namespace.to_string(),
                name.to_string(),
                dimensions.iter().map(|s| s.to_string()).collect(),
            );
            let found = d.metrics.get(&key);
            if !stats.iter().all(|s| found.is_some_and(|f| f.contains(*s))) {
                missing.push(format!("{name} {dimensions:?} ({stats:?} of {namespace})"));
            }
        };
        for name in METRICS {
            let stats: &[&str] = match *name {
                "ArchiveDuration" => &["p50", "p90", "Maximum"],
                _ => &["Sum"],
            };
            shows(SAMPLE_NAMESPACE, name, &[], stats);
        }
        let mut functions = vec![WEBHOOK_FUNCTION];
        if queue {
            functions.push(CONSUMER_FUNCTION);
        }
        for function in functions {
            let dimension = ["FunctionName", &format!("sample:{function}")];
            for name in ["Invocations", "Errors", "Throttles"] {
                shows("AWS/Lambda", name, &dimension, &["Sum"]);
            }
            shows("AWS/Lambda", "Duration", &dimension, &[]);
            shows(
                "AWS/Lambda",
                "ConcurrentExecutions",
                &dimension,
                &["Maximum"],
            );
        }
        if queue {
            for q in [QUEUE, DEAD_LETTER_QUEUE] {
                let dimension = ["QueueName", &format!("sample:{q}.QueueName")];
                for name in [
                    "ApproximateNumberOfMessagesVisible",
                    "ApproximateAgeOfOldestMessage",
                ] {
                    shows("AWS/SQS", name, &dimension, &["Maximum"]);
                }
            }
        }
        for name in METRICS_BY_ERROR_CODE {
            let by_code = d.expressions.iter().any(|e| {
                e.starts_with("SEARCH(")
                    && e.contains(&format!("{{\"{SAMPLE_NAMESPACE}\",ErrorCode}}"))
                    && e.contains(&format!("MetricName=\"{name}\""))
            });
            if !by_code {
                missing.push(format!(
                    "{name} by ErrorCode (SEARCH('{{\"${{{NAMESPACE_PARAMETER}}}\",ErrorCode}} \
                     MetricName=\"{name}\"', ...))"
                ));
            }
        }
        for (namespace, name, _) in d.metrics.keys() {
            if !matches!(
                namespace.as_str(),
                "AWS/Lambda" | "AWS/SQS" | SAMPLE_NAMESPACE
            ) {
                v.push(format!(
                    "{DASHBOARD} in {mode} mode: {name} is read from namespace {namespace:?}; \
                     the functions' metrics are in ${{{NAMESPACE_PARAMETER}}}"
                ));
            }
        }
        if !missing.is_empty() {
            v.push(format!(
                "{DASHBOARD} in {mode} mode does not show {}",
                missing.join(", ")
            ));
        }
        let alarms: BTreeSet<String> = ALARMS
            .iter()
            .filter(|a| queue || a.condition.is_none())
            .map(|a| format!("sample:{}.Arn", a.name))
            .collect();
        if d.alarms != alarms {
            v.push(format!(
                "{DASHBOARD} in {mode} mode: the alarm widget must show exactly the alarms of \
                 that mode, {alarms:?}; found {:?}",
                d.alarms
            ));
        }
    }
    v
}

/// Allowed object actions apply to `<bucket>/<prefix>*` only; ListBucket only with an
/// `s3:prefix` condition on the archive prefix; SSE-KMS actions only on the configured key;
/// `kms:Sign` alone in its statement, only on the signing key, only as the function signs;
/// SQS actions only in statements of their own, on the archive queue only;
/// `secretsmanager:GetSecretValue` alone, on the Veriff secret only; `kms:Decrypt` on the
/// secret's key alone, only through Secrets Manager.
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
    let sqs = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().starts_with("sqs:"))
        .count();
    if sqs > 0 {
        if sqs != names.len() {
            v.push(format!(
                "{who}: mixes SQS actions with others ({names:?}); keep them apart so that the \
                 archive queue is their only Resource"
            ));
        }
        if !is_tagged(Some(resource), "!GetAtt", QUEUE_ARN) {
            v.push(format!(
                "{who}: SQS actions must be on the archive queue only: Resource: !GetAtt \
                 {QUEUE_ARN}, found {resource:?}"
            ));
        }
    }
    let secrets = names
        .iter()
        .any(|n| n.to_ascii_lowercase().starts_with("secretsmanager:"));
    if secrets {
        if names.len() != 1 {
            v.push(format!(
                "{who}: {SECRET_ACTION} must be alone in a statement of its own (found \
                 {names:?}), so that the Veriff secret is its only Resource"
            ));
        }
        if !is_veriff_secret(resource) {
            v.push(format!(
                "{who}: Secrets Manager actions must be on the Veriff credentials' secret only: \
                 Resource: !If [{CREATE_SECRET_CONDITION}, !Ref {SECRET_RESOURCE}, !Ref \
                 {SECRET_PARAMETER}], found {resource:?}"
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
    if !kms.is_empty() && on_secret_key(st) {
        // The Veriff secret's key: kms:Decrypt alone, and only as Secrets Manager decrypts.
        if names.len() != 1 || !names[0].eq_ignore_ascii_case(SECRET_KMS_ACTION) {
            v.push(format!(
                "{who}: on !Ref {SECRET_KEY_PARAMETER}, {SECRET_KMS_ACTION} must be alone in a \
                 statement of its own (found {names:?})"
            ));
        }
        if !decrypts_through_secrets_manager(st.condition.as_ref()) {
            v.push(format!(
                "{who}: {SECRET_KMS_ACTION} on the Veriff secret's key needs Condition \
                 StringEquals kms:ViaService !Sub \"{SECRET_VIA_SERVICE}\" (only Secrets Manager \
                 decrypts with it), found {:?}",
                st.condition
            ));
        }
    } else if other_kms {
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

/// The condition block carries `StringEquals` `kms:ViaService: !Sub
/// "secretsmanager.${AWS::Region}.amazonaws.com"`.
fn decrypts_through_secrets_manager(condition: Option<&Node>) -> bool {
    let via = condition
        .and_then(|c| c.get("StringEquals"))
        .and_then(|c| c.get("kms:ViaService"));
    is_tagged(via, "!Sub", SECRET_VIA_SERVICE)
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

/// The `aws:PrincipalArn` pattern of the functions' roles, from each function's `RolePath`
/// (alone, or in the then-branch of an `!If` whose condition implies `SignManifests`, or is
/// `CreateSigningKey`): a `!Sub` path with `${AWS::StackName}` in it, so that no other stack's
/// roles match, and the same for every function, since the key policy names one path.
fn role_path_pattern(root: &Node, logic: &Logic<'_>) -> Result<String, String> {
    let functions: Vec<(&str, &Node)> = match root.get("Resources") {
        Some(Node::Map { entries, .. }) => entries
            .iter()
            .filter(|(_, r)| {
                r.get("Type").and_then(Node::scalar) == Some("AWS::Serverless::Function")
            })
            .map(|(k, r)| (k.as_str(), r))
            .collect(),
        _ => Vec::new(),
    };
    if functions.is_empty() {
        return Err("there is no AWS::Serverless::Function".into());
    }
    let mut patterns = BTreeMap::new();
    for (name, function) in functions {
        let Some(path) = function.get("Properties").and_then(|p| p.get("RolePath")) else {
            return Err(format!("function {name} has no RolePath"));
        };
        let path = match path.as_if() {
            Some((c, then, _))
                if c.scalar().is_some_and(|c| {
                    c == SIGNING_KEY_CONDITION || logic.implies((c, true), (SIGN_CONDITION, true))
                }) =>
            {
                then
            }
            Some(_) => {
                return Err(format!(
                    "the RolePath of {name} at line {} depends on a condition that does not \
                     imply {SIGN_CONDITION}",
                    path.line()
                ));
            }
            None => path,
        };
        let pattern = match path {
            Node::Scalar {
                tag: Some(t), text, ..
            } if t == "!Sub"
                && text.starts_with('/')
                && text.ends_with('/')
                && text.contains("${AWS::StackName}") =>
            {
                format!("arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{text}*")
            }
            other => {
                return Err(format!(
                    "the RolePath of {name} at line {} must be !Sub \
                     \"/<...>/${{AWS::StackName}}/\", found {other:?}",
                    other.line()
                ));
            }
        };
        patterns.insert(pattern, name);
    }
    match patterns.len() {
        1 => Ok(patterns.into_keys().next().unwrap_or_default()),
        _ => Err(format!(
            "the functions' role paths differ ({patterns:?}); the key policy names one"
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

/// What the checks rely on from the YAML reader: the short-form tags on scalars and on flow
/// and block collections, each node's line, scalars as written (not typed), block scalars told
/// apart; a repeated key (however quoted) or a second document is refused.
#[test]
fn template_is_read_with_its_tags_lines_and_text() {
    let src = "\
A: !Ref Bucket
B: !If [UseKms, !GetAtt Key.Arn, !Ref AWS::NoValue]
C: !Sub
  - \"arn:${P}\"
  - {P: !Ref X}
D: [5400, true, '', ~]
E: >-
  s3:Get
  s3:Put
F:
";
    let root = parse(src).expect("the sample parses");
    assert_eq!(
        render(&root),
        r#"{A: !Ref "Bucket", B: !If ["UseKms", !GetAtt "Key.Arn", !Ref "AWS::NoValue"], C: !Sub ["arn:${P}", {P: !Ref "X"}], D: ["5400", "true", "", "~"], E: "s3:Get s3:Put", F: ""}"#
    );
    let line = |key: &str| root.get(key).map(Node::line);
    // A block scalar starts on its first line of content.
    assert_eq!(
        [line("A"), line("B"), line("C"), line("E"), line("F")],
        [1, 2, 3, 8, 10].map(Some)
    );
    assert!(matches!(
        root.get("E"),
        Some(Node::Scalar { block: true, .. })
    ));
    assert!(matches!(
        root.get("A"),
        Some(Node::Scalar { block: false, .. })
    ));
    for bad in [
        "A: 1\nA: 2\n",
        "A: 1\n'A': 2\n",
        "A: 1\n---\nB: 2\n",
        "A: [1\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} must not parse");
    }
}

#[test]
fn function_policy_is_least_privilege() {
    let src = template();
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "template.yaml grants more (or other) than the functions need:\n  - {}",
        found.join("\n  - ")
    );

    // Positive evidence that the reader saw the policies, independent of the checks above.
    let root = parse(&src).expect("template.yaml parses");
    let a = Analysis::new(&root);
    let allowed = |function: &str| -> BTreeSet<&str> {
        a.statements
            .iter()
            .filter(|s| s.effect.as_deref() == Some("Allow") && s.key_policy.is_none())
            .filter(|s| s.owner.as_deref() == Some(function))
            .flat_map(|s| s.actions.iter().map(|x| x.name.as_str()))
            .collect()
    };
    let mut archive: BTreeSet<&str> = EXPECTED_S3.iter().copied().collect();
    archive.extend(EXPECTED_KMS.iter().copied());
    archive.insert(SIGN_ACTION);
    // Both functions read the Veriff secret (kms:Decrypt is in the archive's set already).
    archive.insert(SECRET_ACTION);
    let mut webhook = archive.clone();
    webhook.insert(SEND_ACTION);
    let mut consumer = archive;
    consumer.extend(CONSUME_SQS.iter().copied());
    assert_eq!(
        allowed(WEBHOOK_FUNCTION),
        webhook,
        "the actions granted (Allow) to {WEBHOOK_FUNCTION} in template.yaml are not the \
         expected S3 + KMS + sqs:SendMessage + Secrets Manager set"
    );
    assert_eq!(
        allowed(CONSUMER_FUNCTION),
        consumer,
        "the actions granted (Allow) to {CONSUMER_FUNCTION} in template.yaml are not the \
         expected S3 + KMS + SQS + Secrets Manager set"
    );
    let sids: BTreeSet<&str> = a.statements.iter().map(|s| s.sid.as_str()).collect();
    for sid in [
        "ArchiveObjects",
        "ListArchivePrefix",
        "ArchiveKey",
        "ManifestSigning",
        "EnqueueDecisions",
        "ConsumeArchiveQueue",
        "ReadVeriffSecret",
        "DecryptVeriffSecret",
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
        role_path_pattern(&root, &Logic::of(&root)).as_deref(),
        Ok("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/veriff-archiver/${AWS::StackName}/*")
    );
    // Exactly the conditions each grant is written under: the webhook's archive in direct
    // mode, its enqueueing in queue mode; the consumer (Condition: QueueMode) as the direct-mode
    // webhook was before queue mode; the Veriff secret in both modes, for both.
    let then = |conditions: &[&str]| -> Vec<(String, bool)> {
        conditions.iter().map(|c| (c.to_string(), true)).collect()
    };
    for st in a.statements.iter().filter(|s| s.key_policy.is_none()) {
        // The people policies are checked by their own test.
        if st.effect.as_deref() == Some("Deny") || PeoplePolicy::of(st.owner.as_deref()).is_some() {
            continue;
        }
        let secret = st.sid == "ReadVeriffSecret" || st.sid == "DecryptVeriffSecret";
        assert_eq!(
            secret,
            st.actions.iter().any(|a| a.name == SECRET_ACTION) || on_secret_key(st),
            "{} is the only statement on the secret (or its key)",
            describe(st)
        );
        for act in &st.actions {
            let kms = act.name.starts_with("kms:") && act.name != SIGN_ACTION && !secret;
            let expected = match (st.owner.as_deref(), act.name.as_str()) {
                (Some(WEBHOOK_FUNCTION), SECRET_ACTION) => then(&[SECRET_CONDITION]),
                (Some(WEBHOOK_FUNCTION), _) if secret => then(&[SECRET_KMS_CONDITION]),
                (Some(CONSUMER_FUNCTION), SECRET_ACTION) => {
                    then(&[QUEUE_CONDITION, SECRET_CONDITION])
                }
                (Some(CONSUMER_FUNCTION), _) if secret => {
                    then(&[QUEUE_CONDITION, SECRET_KMS_CONDITION])
                }
                (Some(WEBHOOK_FUNCTION), SIGN_ACTION) => then(&["DirectModeSignManifests"]),
                (Some(WEBHOOK_FUNCTION), _) if kms => then(&["DirectModeUseKms"]),
                (Some(WEBHOOK_FUNCTION), SEND_ACTION) => then(&[QUEUE_CONDITION]),
                (Some(WEBHOOK_FUNCTION), _) => then(&[DIRECT_CONDITION]),
                (Some(CONSUMER_FUNCTION), SIGN_ACTION) => then(&[QUEUE_CONDITION, SIGN_CONDITION]),
                (Some(CONSUMER_FUNCTION), _) if kms => then(&[QUEUE_CONDITION, KMS_CONDITION]),
                (Some(CONSUMER_FUNCTION), _) => then(&[QUEUE_CONDITION]),
                (owner, _) => panic!("{} at line {} is granted in {owner:?}", act.name, act.line),
            };
            assert_eq!(
                act.conditions, expected,
                "{} at line {} of {:?} is granted under other conditions than expected",
                act.name, act.line, st.owner
            );
        }
    }
    // The implication reader, on the template's own conditions.
    let logic = Logic::of(&root);
    for (fact, goal, implied) in [
        ((QUEUE_CONDITION, false), (DIRECT_CONDITION, true), true),
        ((DIRECT_CONDITION, true), (QUEUE_CONDITION, false), true),
        (("DirectModeUseKms", true), (DIRECT_CONDITION, true), true),
        (("DirectModeUseKms", true), (KMS_CONDITION, true), true),
        (
            ("DirectModeSignManifests", true),
            (SIGN_CONDITION, true),
            true,
        ),
        (
            ("DirectModeSignManifests", true),
            (QUEUE_CONDITION, false),
            true,
        ),
        (("DirectModeUseKms", false), (DIRECT_CONDITION, true), false),
        ((DIRECT_CONDITION, true), (QUEUE_CONDITION, true), false),
        ((KMS_CONDITION, true), (DIRECT_CONDITION, true), false),
        ((SIGNING_KEY_CONDITION, true), (SIGN_CONDITION, true), false),
        ((SECRET_KMS_CONDITION, true), (SECRET_CONDITION, true), true),
        (
            (SECRET_CONDITION, true),
            (SECRET_KMS_CONDITION, true),
            false,
        ),
        // CreateSecret (VeriffSecret == create) does imply UseSecret, but an !Equals is
        // opaque to the reader: a grant under CreateSecret alone is refused (fail closed).
        (
            (CREATE_SECRET_CONDITION, true),
            (SECRET_CONDITION, true),
            false,
        ),
    ] {
        assert_eq!(
            logic.implies(fact, goal),
            implied,
            "{fact:?} implies {goal:?}"
        );
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

/// Applies `mutate` to the definition of the resource `name` only: from its `  name:` line to
/// the next resource or top-level section. Anchors that several resources share (the two
/// functions' policies) are then unique.
fn in_resource(src: &str, name: &str, mutate: &dyn Fn(&str) -> String) -> String {
    let (indent, range) = find_line(src, &format!("{name}:"));
    assert_eq!(indent, 2, "{name} must be a resource of template.yaml");
    let mut end = range.end;
    for line in src[range.end..].split_inclusive('\n') {
        let text = line.trim_start_matches(' ');
        let ind = line.len() - text.len();
        let text = text.trim();
        if !text.is_empty() && !text.starts_with('#') && ind <= indent {
            break;
        }
        end += line.len();
    }
    format!(
        "{}{}{}",
        &src[..range.start],
        mutate(&src[range.start..end]),
        &src[end..]
    )
}

#[test]
fn checker_rejects_widened_policies() {
    let src = template();
    assert!(
        violations(&src).is_empty(),
        "the unmodified template must pass first"
    );

    // Mutations of one function's definition only.
    let webhook = |f: &dyn Fn(&str) -> String| in_resource(&src, WEBHOOK_FUNCTION, f);
    let consumer = |f: &dyn Fn(&str) -> String| in_resource(&src, CONSUMER_FUNCTION, f);
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
    let queue_arn = "Resource: !GetAtt ArchiveQueue.Arn";
    let retention = "MessageRetentionPeriod: 1209600 # 14 days, the SQS maximum";
    let read_secret = "Action: secretsmanager:GetSecretValue";
    let secret = "Resource: !If [CreateSecret, !Ref VeriffCredentialsSecret, !Ref VeriffSecret]";
    let decrypt_secret = "- Sid: DecryptVeriffSecret";
    let secret_key = "Resource: !Ref VeriffSecretKmsKeyArn";
    let via_service = r#"kms:ViaService: !Sub "secretsmanager.${AWS::Region}.amazonaws.com""#;
    let alarm_actions = "AlarmActions: !If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]";
    let ok_actions = "OKActions: !If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "DeleteObject added to the object actions",
            webhook(&|s| insert_after(s, "- s3:PutObject", &["- s3:DeleteObject"])),
            "forbidden action `s3:DeleteObject`",
        ),
        (
            "Action: \"s3:*\"",
            webhook(&|s| replace_line(s, list, &["Action: \"s3:*\""])),
            "wildcard action `s3:*`",
        ),
        (
            "flow list with a quoted forbidden action",
            webhook(&|s| {
                replace_line(
                    s,
                    list,
                    &["Action: [s3:ListBucket, 's3:PutObjectRetention']"],
                )
            }),
            "forbidden action `s3:PutObjectRetention`",
        ),
        (
            "multi-line flow list",
            webhook(&|s| {
                replace_line(
                    s,
                    list,
                    &["Action: [s3:ListBucket,", "  s3:DeleteObjectVersion]"],
                )
            }),
            "forbidden action `s3:DeleteObjectVersion`",
        ),
        (
            "double-quoted list item",
            webhook(&|s| insert_after(s, "- s3:GetObject", &["- \"s3:PutObjectLegalHold\""])),
            "forbidden action `s3:PutObjectLegalHold`",
        ),
        (
            "lower-case spelling (IAM actions are case-insensitive)",
            webhook(&|s| insert_after(s, "- s3:GetObject", &["- s3:deleteobjectversion"])),
            "forbidden action `s3:deleteobjectversion`",
        ),
        (
            "s3:Delete*",
            webhook(&|s| insert_after(s, "- s3:GetObject", &["- s3:Delete*"])),
            "wildcard action `s3:Delete*`",
        ),
        (
            "a new block statement with Action \"*\"",
            webhook(&|s| {
                insert_before(
                    s,
                    obj,
                    &[
                        "- Sid: Everything",
                        "  Effect: Allow",
                        "  Action: \"*\"",
                        "  Resource: \"*\"",
                    ],
                )
            }),
            "wildcard action `*`",
        ),
        (
            "a flow-mapping statement",
            webhook(&|s| {
                insert_before(
                    s,
                    obj,
                    &["- {Effect: Allow, Action: s3:BypassGovernanceRetention, Resource: \"*\"}"],
                )
            }),
            "forbidden action `s3:BypassGovernanceRetention`",
        ),
        (
            "the bucket policy's Deny s3:* turned into an Allow",
            replace_line(&src, "Effect: Deny", &["Effect: Allow"]),
            "wildcard action `s3:*`",
        ),
        (
            "a forbidden action inside !If",
            webhook(&|s| {
                replace_line(
                    s,
                    list,
                    &["Action: !If [UseKms, s3:DeleteObject, s3:ListBucket]"],
                )
            }),
            "forbidden action `s3:DeleteObject`",
        ),
        (
            "a block scalar as the action",
            webhook(&|s| replace_line(s, list, &["Action: >-", "  s3:DeleteObject"])),
            "forbidden action `s3:DeleteObject`",
        ),
        (
            "NotAction in an Allow statement",
            webhook(&|s| replace_line(s, list, &["NotAction: s3:ListBucket"])),
            "NotAction",
        ),
        (
            "an action hidden in a computed value",
            webhook(&|s| {
                replace_line(
                    s,
                    list,
                    &["Action: !Split [\",\", \"s3:ListBucket,s3:DeleteObject\"]"],
                )
            }),
            "not a literal IAM action",
        ),
        (
            "a policy document as a JSON string",
            webhook(&|s| {
                insert_after(
                    s,
                    "Policies:",
                    &[
                        r#"  - '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'"#,
                    ],
                )
            }),
            "a policy written as a JSON string",
        ),
        (
            "GetObjectVersion removed (the set must be exact)",
            webhook(&|s| replace_line(s, "- s3:GetObjectVersion", &[])),
            "missing [\"s3:GetObjectVersion\"]",
        ),
        (
            "an extra S3 action",
            webhook(&|s| insert_after(s, "- s3:GetObject", &["- s3:PutBucketPolicy"])),
            "unexpected [\"s3:PutBucketPolicy\"]",
        ),
        (
            "a KMS action outside the UseKms condition",
            webhook(&|s| insert_after(s, "- s3:PutObject", &["- kms:Decrypt"])),
            "is not inside `!If [UseKms",
        ),
        (
            "a SAM policy template",
            webhook(&|s| {
                insert_after(
                    s,
                    "Policies:",
                    &["  - S3CrudPolicy:", "      BucketName: !Ref ArchiveBucket"],
                )
            }),
            "is not an inline policy document",
        ),
        (
            "a managed policy",
            webhook(&|s| insert_after(s, "Policies:", &["  - AmazonS3FullAccess"])),
            "is not an inline policy document",
        ),
        (
            "object actions on the whole bucket",
            webhook(&|s| {
                replace_line(
                    s,
                    "- \"arn:${AWS::Partition}:s3:::${Bucket}/${ArchivePrefix}*\"",
                    &["- \"arn:${AWS::Partition}:s3:::${Bucket}/*\""],
                )
            }),
            "must be scoped to",
        ),
        (
            "ListBucket without its prefix condition",
            webhook(&|s| {
                replace_line(
                    s,
                    "s3:prefix: !Sub \"${ArchivePrefix}*\"",
                    &["s3:prefix: \"*\""],
                )
            }),
            "needs Condition StringLike s3:prefix",
        ),
        // Manifest signing: the function's statement.
        (
            "kms:Sign on every key",
            webhook(&|s| replace_line(s, signing_key, &["Resource: \"*\""])),
            "kms:Sign must be on the signing key only",
        ),
        (
            "kms:Sign on the SSE-KMS key instead of the signing key",
            webhook(&|s| replace_line(s, signing_key, &["Resource: !Ref KmsKeyArn"])),
            "kms:Sign must be on the signing key only",
        ),
        (
            "kms:* beside kms:Sign",
            webhook(&|s| {
                replace_after(
                    s,
                    signing,
                    "Action: kms:Sign",
                    &["Action: [kms:Sign, \"kms:*\"]"],
                )
            }),
            "wildcard action `kms:*`",
        ),
        (
            "kms:Sign added to the SSE-KMS statement",
            webhook(&|s| insert_after(s, "- kms:Decrypt", &["- kms:Sign"])),
            "is not inside `!If [SignManifests",
        ),
        (
            "kms:Sign added to the object actions",
            webhook(&|s| insert_after(s, "- s3:PutObject", &["- kms:Sign"])),
            "is not inside `!If [SignManifests",
        ),
        (
            "kms:Decrypt added to the signing statement",
            webhook(&|s| {
                replace_after(
                    s,
                    signing,
                    "Action: kms:Sign",
                    &["Action: [kms:Sign, kms:Decrypt]"],
                )
            }),
            "is not inside `!If [UseKms",
        ),
        (
            "kms:Sign without the message type condition",
            webhook(&|s| replace_after(s, signing, "kms:MessageType: RAW", &[])),
            "kms:Sign needs Condition StringEquals",
        ),
        (
            "kms:Sign with another algorithm",
            webhook(&|s| {
                replace_after(
                    s,
                    signing,
                    "kms:SigningAlgorithm: ECDSA_SHA_256",
                    &["kms:SigningAlgorithm: ECDSA_SHA_384"],
                )
            }),
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
            webhook(&|s| replace_line(s, role_path, &[r#"- !Sub "/veriff-archiver/""#])),
            "the function role's path cannot be read",
        ),
        (
            "a role path the key policy does not name (both functions)",
            in_resource(
                &webhook(&|s| {
                    replace_line(s, role_path, &[r#"- !Sub "/other/${AWS::StackName}/""#])
                }),
                CONSUMER_FUNCTION,
                &|s| replace_line(s, role_path, &[r#"- !Sub "/other/${AWS::StackName}/""#]),
            ),
            "kms:Sign needs Condition ArnLike aws:PrincipalArn",
        ),
        (
            "the consumer's role under another path than the webhook's",
            consumer(&|s| replace_line(s, role_path, &[r#"- !Sub "/other/${AWS::StackName}/""#])),
            "the functions' role paths differ",
        ),
        (
            "the consumer's role path without a condition that implies SignManifests",
            consumer(&|s| {
                replace_after(s, "RolePath: !If", "- SignManifests", &["- CreateBucket"])
            }),
            "does not imply SignManifests",
        ),
        // Queue mode: the webhook function archives only in direct mode, enqueues only in queue
        // mode.
        (
            "the webhook's S3 statements in queue mode",
            webhook(&|s| replace_line(s, "- DirectMode", &["- QueueMode"])),
            "is not under a condition that implies DirectMode",
        ),
        (
            "S3 PutObject unconditioned in the webhook function",
            webhook(&|s| {
                insert_after(
                    s,
                    "Policies:",
                    &[
                        "  - Version: \"2012-10-17\"",
                        "    Statement:",
                        "      - Effect: Allow",
                        "        Action: s3:PutObject",
                        "        Resource: !Sub \"arn:${AWS::Partition}:s3:::${Bucket}/${ArchivePrefix}*\"",
                    ],
                )
            }),
            "is not under a condition that implies DirectMode",
        ),
        (
            "the webhook's SSE-KMS grant in both modes",
            webhook(&|s| replace_line(s, "- DirectModeUseKms", &["- UseKms"])),
            "is not under a condition that implies DirectMode",
        ),
        (
            "the webhook's kms:Sign in both modes",
            webhook(&|s| {
                replace_after(
                    s,
                    "Policies:",
                    "- DirectModeSignManifests",
                    &["- SignManifests"],
                )
            }),
            "is not under a condition that implies DirectMode",
        ),
        (
            "the webhook's role under the signing path in queue mode",
            webhook(&|s| {
                replace_after(
                    s,
                    "RolePath: !If",
                    "- DirectModeSignManifests",
                    &["- SignManifests"],
                )
            }),
            "in queue mode the webhook's role must not be one",
        ),
        (
            "sqs:SendMessage granted in direct mode",
            webhook(&|s| replace_line(s, "- QueueMode", &["- DirectMode"])),
            "is not inside `!If [QueueMode",
        ),
        (
            "sqs:SendMessage granted in both modes",
            webhook(&|s| replace_line(s, "- QueueMode", &["- CreateBucket"])),
            "is not inside `!If [QueueMode",
        ),
        (
            "sqs:SendMessage on every queue",
            webhook(&|s| {
                replace_line(
                    s,
                    queue_arn,
                    &[
                        r#"Resource: !Sub "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:*""#,
                    ],
                )
            }),
            "SQS actions must be on the archive queue only",
        ),
        (
            "another SQS action for the webhook",
            webhook(&|s| {
                replace_line(
                    s,
                    "Action: sqs:SendMessage",
                    &["Action: [sqs:SendMessage, sqs:PurgeQueue]"],
                )
            }),
            "unexpected SQS action `sqs:PurgeQueue`",
        ),
        (
            "the webhook receives from the queue",
            webhook(&|s| {
                replace_line(
                    s,
                    "Action: sqs:SendMessage",
                    &["Action: [sqs:SendMessage, sqs:ReceiveMessage]"],
                )
            }),
            "unexpected SQS action `sqs:ReceiveMessage`",
        ),
        (
            "sqs:SendMessage beside the object actions",
            webhook(&|s| insert_after(s, "- s3:PutObject", &["- sqs:SendMessage"])),
            "mixes SQS actions with others",
        ),
        // Queue mode: the consumer.
        (
            "SendMessage granted to the consumer",
            consumer(&|s| insert_after(s, "- sqs:DeleteMessage", &["- sqs:SendMessage"])),
            "unexpected SQS action `sqs:SendMessage`",
        ),
        (
            "sqs:* for the consumer",
            consumer(&|s| replace_line(s, "- sqs:ReceiveMessage", &["- \"sqs:*\""])),
            "wildcard action `sqs:*`",
        ),
        (
            "ReceiveMessage on \"*\"",
            consumer(&|s| replace_line(s, queue_arn, &["Resource: \"*\""])),
            "SQS actions must be on the archive queue only",
        ),
        (
            "the consumer reads the dead-letter queue",
            consumer(&|s| {
                replace_line(
                    s,
                    queue_arn,
                    &[
                        "Resource:",
                        "  - !GetAtt ArchiveQueue.Arn",
                        "  - !GetAtt ArchiveDeadLetterQueue.Arn",
                    ],
                )
            }),
            "SQS actions must be on the archive queue only",
        ),
        (
            "GetQueueAttributes removed (the set must be exact)",
            consumer(&|s| replace_line(s, "- sqs:GetQueueAttributes", &[])),
            "missing [\"sqs:GetQueueAttributes\"]",
        ),
        (
            "the consumer exists in direct mode too",
            consumer(&|s| replace_line(s, "Condition: QueueMode", &[])),
            "the consumer exists only in queue mode",
        ),
        (
            "DeleteObject granted to the consumer",
            consumer(&|s| insert_after(s, "- s3:PutObject", &["- s3:DeleteObject"])),
            "forbidden action `s3:DeleteObject`",
        ),
        (
            "GetObjectVersion removed from the consumer",
            consumer(&|s| replace_line(s, "- s3:GetObjectVersion", &[])),
            "the S3 actions granted to ArchiveConsumerFunction are not exactly",
        ),
        (
            "the consumer's object actions on the whole bucket",
            consumer(&|s| {
                replace_line(
                    s,
                    "- \"arn:${AWS::Partition}:s3:::${Bucket}/${ArchivePrefix}*\"",
                    &["- \"arn:${AWS::Partition}:s3:::${Bucket}/*\""],
                )
            }),
            "must be scoped to",
        ),
        (
            "the consumer's KMS action outside the UseKms condition",
            consumer(&|s| insert_after(s, "- s3:PutObject", &["- kms:Decrypt"])),
            "is not inside `!If [UseKms",
        ),
        (
            "the consumer's kms:Sign on every key",
            consumer(&|s| replace_line(s, signing_key, &["Resource: \"*\""])),
            "kms:Sign must be on the signing key only",
        ),
        (
            "the consumer's kms:Sign without SignManifests",
            consumer(&|s| replace_after(s, "Policies:", "- SignManifests", &["- CreateBucket"])),
            "is not inside `!If [SignManifests",
        ),
        (
            "a SAM SQS policy template on the consumer",
            consumer(&|s| {
                insert_after(
                    s,
                    "Policies:",
                    &[
                        "  - SQSPollerPolicy:",
                        "      QueueName: !GetAtt ArchiveQueue.QueueName",
                    ],
                )
            }),
            "is not an inline policy document",
        ),
        (
            "a SAM SQS event on the consumer",
            consumer(&|s| {
                insert_after(
                    s,
                    "CodeUri: .",
                    &[
                        "Events:",
                        "  Queue:",
                        "    Type: SQS",
                        "    Properties:",
                        "      Queue: !GetAtt ArchiveQueue.Arn",
                    ],
                )
            }),
            "makes SAM attach an AWS managed policy",
        ),
        (
            "ManagedPolicyArns on the consumer",
            consumer(&|s| {
                insert_after(
                    s,
                    "CodeUri: .",
                    &[
                        "ManagedPolicyArns:",
                        "  - !Sub \"arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole\"",
                    ],
                )
            }),
            "`ManagedPolicyArns` grants",
        ),
        (
            "a queue policy that lets anyone enqueue",
            insert_before(
                &src,
                "ArchiveQueueMapping:",
                &[
                    "ArchiveQueuePolicy:",
                    "  Type: AWS::SQS::QueuePolicy",
                    "  Condition: QueueMode",
                    "  Properties:",
                    "    Queues: [!Ref ArchiveQueue]",
                    "    PolicyDocument:",
                    "      Statement:",
                    "        - Effect: Allow",
                    "          Principal: \"*\"",
                    "          Action: sqs:SendMessage",
                    "          Resource: !GetAtt ArchiveQueue.Arn",
                ],
            ),
            "an Allow statement in Some(\"ArchiveQueuePolicy\")",
        ),
        // Queue mode: the queue and the event source mapping.
        (
            "visibility timeout 300",
            replace_line(&src, "VisibilityTimeout: 5400", &["VisibilityTimeout: 300"]),
            "VisibilityTimeout must be a literal >= 6 x",
        ),
        (
            "a Timeout parameter that allows more than the visibility timeout covers",
            replace_after(&src, "Timeout:", "MaxValue: 900", &["MaxValue: 901"]),
            "VisibilityTimeout must be a literal >= 6 x",
        ),
        (
            "the dead-letter queue keeps messages 4 days",
            in_resource(&src, DEAD_LETTER_QUEUE, &|s| {
                replace_line(s, retention, &["MessageRetentionPeriod: 345600"])
            }),
            "ArchiveDeadLetterQueue: MessageRetentionPeriod must be 1209600",
        ),
        (
            "the queue keeps messages the default 4 days",
            in_resource(&src, QUEUE, &|s| replace_line(s, retention, &[])),
            "ArchiveQueue: MessageRetentionPeriod must be 1209600",
        ),
        (
            "the redrive policy names another queue",
            replace_line(
                &src,
                "deadLetterTargetArn: !GetAtt ArchiveDeadLetterQueue.Arn",
                &["deadLetterTargetArn: !GetAtt ArchiveQueue.Arn"],
            ),
            "RedrivePolicy must be",
        ),
        (
            "a fixed maxReceiveCount",
            replace_line(
                &src,
                "maxReceiveCount: !Ref QueueMaxReceiveCount",
                &["maxReceiveCount: 1000"],
            ),
            "RedrivePolicy must be",
        ),
        (
            "ReportBatchItemFailures removed",
            replace_line(&src, "- ReportBatchItemFailures", &[]),
            "FunctionResponseTypes must be [ReportBatchItemFailures]",
        ),
        (
            "no maximum concurrency",
            replace_line(&src, "MaximumConcurrency: !Ref QueueMaxConcurrency", &[]),
            "ScalingConfig.MaximumConcurrency must be set",
        ),
        (
            "the mapping does not wait for the consumer's role",
            replace_line(&src, "DependsOn: ArchiveConsumerFunctionRole", &[]),
            "must have DependsOn ArchiveConsumerFunctionRole",
        ),
        (
            "the mapping feeds the webhook function",
            replace_line(
                &src,
                "FunctionName: !Ref ArchiveConsumerFunction",
                &["FunctionName: !Ref ArchiverFunction"],
            ),
            "EventSourceArn must be !GetAtt ArchiveQueue.Arn and FunctionName",
        ),
        // The Veriff secret: the functions' grants.
        (
            "GetSecretValue on \"*\"",
            webhook(&|s| replace_line(s, secret, &["Resource: \"*\""])),
            "Secrets Manager actions must be on the Veriff credentials' secret only",
        ),
        (
            "GetSecretValue on every secret of the account",
            consumer(&|s| {
                replace_line(
                    s,
                    secret,
                    &[
                        r#"Resource: !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*""#,
                    ],
                )
            }),
            "Secrets Manager actions must be on the Veriff credentials' secret only",
        ),
        (
            "GetSecretValue on the parameter only (VeriffSecret=create passes \"create\")",
            webhook(&|s| replace_line(s, secret, &["Resource: !Ref VeriffSecret"])),
            "Secrets Manager actions must be on the Veriff credentials' secret only",
        ),
        (
            "secretsmanager:*",
            consumer(&|s| replace_line(s, read_secret, &["Action: \"secretsmanager:*\""])),
            "wildcard action `secretsmanager:*`",
        ),
        (
            "another Secrets Manager action",
            webhook(&|s| {
                replace_line(
                    s,
                    read_secret,
                    &["Action: [secretsmanager:GetSecretValue, secretsmanager:PutSecretValue]"],
                )
            }),
            "unexpected Secrets Manager action `secretsmanager:PutSecretValue`",
        ),
        (
            "GetSecretValue beside another action",
            webhook(&|s| {
                replace_line(
                    s,
                    read_secret,
                    &["Action: [secretsmanager:GetSecretValue, kms:Decrypt]"],
                )
            }),
            "secretsmanager:GetSecretValue must be alone in a statement of its own",
        ),
        (
            "GetSecretValue under CreateSecret (an !Equals: its implication is not read)",
            webhook(&|s| replace_line(s, "- UseSecret", &["- CreateSecret"])),
            "is not inside `!If [UseSecret",
        ),
        (
            "GetSecretValue unconditioned",
            consumer(&|s| {
                insert_after(
                    s,
                    "Policies:",
                    &[
                        "  - Version: \"2012-10-17\"",
                        "    Statement:",
                        "      - Effect: Allow",
                        "        Action: secretsmanager:GetSecretValue",
                        "        Resource: !If [CreateSecret, !Ref VeriffCredentialsSecret, !Ref VeriffSecret]",
                    ],
                )
            }),
            "is not inside `!If [UseSecret",
        ),
        (
            "the consumer cannot read the secret",
            consumer(&|s| replace_line(s, read_secret, &["Action: !Ref AWS::NoValue"])),
            "the Secrets Manager actions granted to ArchiveConsumerFunction are not exactly",
        ),
        (
            "kms:Decrypt of the secret without kms:ViaService",
            webhook(&|s| replace_line(s, via_service, &[])),
            "needs Condition StringEquals kms:ViaService",
        ),
        (
            "kms:Decrypt of the secret through another service",
            consumer(&|s| {
                replace_line(
                    s,
                    via_service,
                    &[r#"kms:ViaService: !Sub "s3.${AWS::Region}.amazonaws.com""#],
                )
            }),
            "needs Condition StringEquals kms:ViaService",
        ),
        (
            "kms:ViaService as StringLike",
            webhook(&|s| replace_after(s, decrypt_secret, "StringEquals:", &["StringLike:"])),
            "needs Condition StringEquals kms:ViaService",
        ),
        (
            "kms:Decrypt of the secret without a key for it",
            consumer(&|s| replace_line(s, "- UseSecretKms", &["- UseSecret"])),
            "is not inside `!If [UseSecretKms",
        ),
        (
            "kms:GenerateDataKey beside the secret's kms:Decrypt",
            webhook(&|s| {
                replace_line(
                    s,
                    "Action: kms:Decrypt",
                    &["Action: [kms:Decrypt, kms:GenerateDataKey]"],
                )
            }),
            "unexpected KMS action `kms:GenerateDataKey` on !Ref VeriffSecretKmsKeyArn",
        ),
        (
            "the secret's kms:Decrypt on every key",
            webhook(&|s| replace_line(s, secret_key, &["Resource: \"*\""])),
            "Resource \"*\" grants access to everything",
        ),
        (
            "the secret's kms:Decrypt on the archive's key, in both modes",
            webhook(&|s| replace_line(s, secret_key, &["Resource: !Ref KmsKeyArn"])),
            "is not under a condition that implies DirectMode",
        ),
        (
            "the archive's SSE-KMS grant moved onto the secret's key",
            webhook(&|s| replace_line(s, "Resource: !Ref KmsKeyArn", &[secret_key])),
            "unexpected KMS action `kms:GenerateDataKey` on !Ref VeriffSecretKmsKeyArn",
        ),
        (
            "a resource policy that lets anyone read the secret",
            insert_before(
                &src,
                "ArchiverFunction:",
                &[
                    "VeriffSecretPolicy:",
                    "  Type: AWS::SecretsManager::ResourcePolicy",
                    "  Condition: CreateSecret",
                    "  Properties:",
                    "    SecretId: !Ref VeriffCredentialsSecret",
                    "    ResourcePolicy:",
                    "      Statement:",
                    "        - Effect: Allow",
                    "          Principal: \"*\"",
                    "          Action: secretsmanager:GetSecretValue",
                    "          Resource: \"*\"",
                ],
            ),
            "an Allow statement in Some(\"VeriffSecretPolicy\")",
        ),
        // The Veriff secret: the environment, the secret, the parameters and the Rules.
        (
            "VERIFF_API_KEY left in the environment with UseSecret",
            replace_line(
                &src,
                "VERIFF_API_KEY: !If [UseSecret, !Ref AWS::NoValue, !Ref VeriffApiKey]",
                &["VERIFF_API_KEY: !Ref VeriffApiKey"],
            ),
            "with VeriffSecret=create, VERIFF_API_KEY must be unset",
        ),
        (
            "VERIFF_SHARED_SECRET set by the webhook function itself",
            webhook(&|s| {
                insert_after(
                    s,
                    "INGEST_MODE: !Ref IngestMode",
                    &["VERIFF_SHARED_SECRET: !Ref VeriffSharedSecret"],
                )
            }),
            "ArchiverFunction: with VeriffSecret=<secret ARN>, VERIFF_SHARED_SECRET must be unset",
        ),
        (
            "VERIFF_SECRET_ARN is the parameter (\"create\" with VeriffSecret=create)",
            replace_line(
                &src,
                "- !If [CreateSecret, !Ref VeriffCredentialsSecret, !Ref VeriffSecret]",
                &["- !Ref VeriffSecret"],
            ),
            "with VeriffSecret=create, VERIFF_SECRET_ARN must be !Ref VeriffCredentialsSecret",
        ),
        (
            "SECRET_REFRESH_SECONDS without a secret",
            replace_line(
                &src,
                "SECRET_REFRESH_SECONDS: !If [UseSecret, !Ref SecretRefreshSeconds, !Ref AWS::NoValue]",
                &["SECRET_REFRESH_SECONDS: !Ref SecretRefreshSeconds"],
            ),
            "with VeriffSecret empty, SECRET_REFRESH_SECONDS must be unset",
        ),
        (
            "UseSecret true for VeriffSecret=create only",
            replace_line(
                &src,
                r#"UseSecret: !Not [!Equals [!Ref VeriffSecret, ""]]"#,
                &["UseSecret: !Equals [!Ref VeriffSecret, create]"],
            ),
            "condition UseSecret must be",
        ),
        (
            "the created secret in another shape",
            replace_line(
                &src,
                r#"SecretString: !Sub '{"apiKey":"${VeriffApiKey}","sharedSecret":"${VeriffSharedSecret}"}'"#,
                &[
                    r#"SecretString: !Sub '{"api_key":"${VeriffApiKey}","shared_secret":"${VeriffSharedSecret}"}'"#,
                ],
            ),
            "SecretString must be",
        ),
        (
            "the secret created whatever VeriffSecret says",
            in_resource(&src, SECRET_RESOURCE, &|s| {
                replace_line(s, "Condition: CreateSecret", &[])
            }),
            "must be an AWS::SecretsManager::Secret with Condition: CreateSecret",
        ),
        (
            "VeriffApiKey required even with a secret ARN",
            insert_after(&src, "VeriffApiKey:", &["  MinLength: 1"]),
            "parameter VeriffApiKey: NoEcho true",
        ),
        (
            "the rule requires VeriffApiUrl instead of VeriffApiKey",
            replace_line(
                &src,
                r#"- Assert: !Not [!Equals [!Ref VeriffApiKey, ""]]"#,
                &[r#"- Assert: !Not [!Equals [!Ref VeriffApiUrl, ""]]"#],
            ),
            "Rules: no rule with RuleCondition",
        ),
        (
            "the credentials not required with VeriffSecret=create",
            replace_line(&src, "- !Equals [!Ref VeriffSecret, create]", &[]),
            "Rules: no rule with RuleCondition",
        ),
        // Alarms, their topic and the dashboard.
        (
            "an alarm without AlarmActions",
            in_resource(&src, "ArchiveFailuresAlarm", &|s| {
                replace_line(s, alarm_actions, &[])
            }),
            "ArchiveFailuresAlarm: AlarmActions must be",
        ),
        (
            "the dead-letter queue alarm without OKActions",
            in_resource(&src, "DeadLetterQueueAlarm", &|s| {
                replace_line(s, ok_actions, &[])
            }),
            "DeadLetterQueueAlarm: OKActions must be",
        ),
        (
            "an alarm that notifies a topic that may not exist",
            in_resource(&src, "WebhookErrorsAlarm", &|s| {
                replace_line(s, alarm_actions, &["AlarmActions: [!Ref AlarmTopic]"])
            }),
            "WebhookErrorsAlarm: AlarmActions must be",
        ),
        (
            "an alarm with its actions disabled",
            in_resource(&src, "ConsumerThrottlesAlarm", &|s| {
                insert_after(s, alarm_actions, &["ActionsEnabled: false"])
            }),
            "ConsumerThrottlesAlarm: ActionsEnabled must not be set",
        ),
        (
            "the rejected-webhooks alarm on a fixed threshold",
            replace_line(
                &src,
                "Threshold: !Ref RejectedWebhooksThreshold",
                &["Threshold: 100"],
            ),
            "RejectedWebhooksAlarm: Threshold must be !Ref \"RejectedWebhooksThreshold\"",
        ),
        (
            "the rejected-webhooks alarm counts every rejection",
            replace_line(&src, "Value: unauthorized", &["Value: bad_payload"]),
            "RejectedWebhooksAlarm: Dimensions must be",
        ),
        (
            "the failures alarm reads a fixed namespace",
            in_resource(&src, "ArchiveFailuresAlarm", &|s| {
                replace_line(
                    s,
                    "Namespace: !Ref MetricsNamespace",
                    &["Namespace: VeriffArchiver"],
                )
            }),
            "ArchiveFailuresAlarm: Namespace must be !Ref \"MetricsNamespace\"",
        ),
        (
            "missing data breaches",
            in_resource(&src, "WebhookErrorsAlarm", &|s| {
                replace_line(
                    s,
                    "TreatMissingData: notBreaching",
                    &["TreatMissingData: breaching"],
                )
            }),
            "WebhookErrorsAlarm: TreatMissingData must be",
        ),
        (
            "a consumer alarm in direct mode",
            in_resource(&src, "ConsumerErrorsAlarm", &|s| {
                replace_line(s, "Condition: QueueMode", &[])
            }),
            "ConsumerErrorsAlarm: Condition must be Some(\"QueueMode\")",
        ),
        (
            "an alarm missing",
            replace_line(&src, "WebhookThrottlesAlarm:", &["WebhookThrottleAlarm:"]),
            "the alarms are not exactly",
        ),
        (
            "the topic in every stack",
            in_resource(&src, ALARM_TOPIC, &|s| {
                replace_line(s, "Condition: HasAlarmEmail", &[])
            }),
            "AlarmTopic must be an AWS::SNS::Topic with Condition HasAlarmEmail",
        ),
        (
            "a topic policy that lets anyone publish",
            insert_before(
                &src,
                "ArchiveFailuresAlarm:",
                &[
                    "AlarmTopicPolicy:",
                    "  Type: AWS::SNS::TopicPolicy",
                    "  Condition: HasAlarmEmail",
                    "  Properties:",
                    "    Topics: [!Ref AlarmTopic]",
                    "    PolicyDocument:",
                    "      Statement:",
                    "        - Effect: Allow",
                    "          Principal: \"*\"",
                    "          Action: sns:Publish",
                    "          Resource: !Ref AlarmTopic",
                ],
            ),
            "an Allow statement in Some(\"AlarmTopicPolicy\")",
        ),
        (
            "METRICS_NAMESPACE not set",
            replace_line(&src, "METRICS_NAMESPACE: !Ref MetricsNamespace", &[]),
            "METRICS_NAMESPACE must be !Ref MetricsNamespace",
        ),
        (
            "a consumer widget in direct mode",
            in_resource(&src, DASHBOARD, &|s| {
                replace_line(
                    s,
                    r#"["AWS/Lambda", "Invocations", "FunctionName", "${ArchiverFunction}", {"label": "invocations"}],"#,
                    &[
                        r#"["AWS/Lambda", "Invocations", "FunctionName", "${ArchiveConsumerFunction}", {"label": "invocations"}],"#,
                    ],
                )
            }),
            "names ${ArchiveConsumerFunction} in direct mode",
        ),
        (
            "the queue widgets in direct mode",
            in_resource(&src, DASHBOARD, &|s| {
                replace_after(s, "QueueWidgets: !If", "- QueueMode", &["- CreateBucket"])
            }),
            "an !If on CreateBucket",
        ),
        (
            "a dashboard body that is not JSON",
            in_resource(&src, DASHBOARD, &|s| {
                replace_line(
                    s,
                    r#""yAxis": {"left": {"min": 0}}}}${QueueWidgets}"#,
                    &[r#""yAxis": {"left": {"min": 0}}}},${QueueWidgets}"#],
                )
            }),
            "in direct mode: the dashboard body is not valid JSON",
        ),
        (
            "a dashboard metric in a fixed namespace",
            in_resource(&src, DASHBOARD, &|s| {
                replace_line(
                    s,
                    r#"["${MetricsNamespace}", "VeriffRetries", {"label": "retries"}]"#,
                    &[r#"["VeriffArchiver", "VeriffRetries", {"label": "retries"}]"#],
                )
            }),
            "does not show VeriffRetries",
        ),
        (
            "failures by ErrorCode not on the dashboard",
            in_resource(&src, DASHBOARD, &|s| {
                replace_line(
                    s,
                    r#"[{"id": "failures", "expression": "SEARCH('{\"${MetricsNamespace}\",ErrorCode} MetricName=\"ArchiveFailures\"', 'Sum', 300)", "label": "${!PROP('Dim.ErrorCode')}"}]"#,
                    &[
                        r#"[{"id": "failures", "expression": "SEARCH('{\"${MetricsNamespace}\"} MetricName=\"ArchiveFailures\"', 'Sum', 300)", "label": "${!PROP('Dim.ErrorCode')}"}]"#,
                    ],
                )
            }),
            "does not show ArchiveFailures by ErrorCode",
        ),
        (
            "the dead-letter queue alarm not on the dashboard",
            in_resource(&src, DASHBOARD, &|s| {
                replace_line(
                    s,
                    r#"- !Sub ', "${ConsumerErrorsAlarm.Arn}", "${ConsumerThrottlesAlarm.Arn}", "${DeadLetterQueueAlarm.Arn}"'"#,
                    &[
                        r#"- !Sub ', "${ConsumerErrorsAlarm.Arn}", "${ConsumerThrottlesAlarm.Arn}"'"#,
                    ],
                )
            }),
            "in queue mode: the alarm widget must show exactly the alarms of that mode",
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

    // Both functions sign with that key: MANIFEST_SIGNING_KEY_ID only when signing.
    for function in [WEBHOOK_FUNCTION, CONSUMER_FUNCTION] {
        let id = environment(&root, function, "MANIFEST_SIGNING_KEY_ID")
            .unwrap_or_else(|| panic!("MANIFEST_SIGNING_KEY_ID in {function}'s environment"));
        let (c, then, other) = id.as_if().expect("MANIFEST_SIGNING_KEY_ID must be an !If");
        assert_eq!(c.scalar(), Some(SIGN_CONDITION));
        assert!(
            is_signing_key(then) && other.is_no_value(),
            "MANIFEST_SIGNING_KEY_ID: the signing key when signing, unset otherwise: {id:?}"
        );
    }

    let output = root
        .get("Outputs")
        .and_then(|o| o.get("SigningKeyArn"))
        .expect("output SigningKeyArn");
    assert_eq!(field(output, "Condition").as_deref(), Some(SIGN_CONDITION));
    assert!(is_signing_key(
        output.get("Value").expect("SigningKeyArn Value")
    ));
}

#[test]
fn queue_mode_is_optional_and_wired() {
    let root = parse(&template()).expect("template.yaml parses");
    let field = |node: Option<&Node>, name: &str| {
        node.and_then(|n| n.get(name))
            .map(render)
            .unwrap_or_default()
    };
    let params = root.get("Parameters");
    let mode = params.and_then(|p| p.get("IngestMode"));
    assert_eq!(
        field(mode, "Default"),
        "\"direct\"",
        "direct mode by default"
    );
    assert_eq!(field(mode, "AllowedValues"), "[\"direct\", \"queue\"]");
    for (name, min, max) in [
        ("QueueBatchSize", "1", "10"),
        ("QueueMaxConcurrency", "2", "1000"),
        ("QueueMaxReceiveCount", "1", "1000"),
    ] {
        let p = params.and_then(|p| p.get(name));
        assert_eq!(field(p, "Type"), "\"Number\"", "{name}");
        assert_eq!(field(p, "MinValue"), format!("{min:?}"), "{name}");
        assert_eq!(field(p, "MaxValue"), format!("{max:?}"), "{name}");
    }
    let conditions = root.get("Conditions");
    assert_eq!(
        field(conditions, QUEUE_CONDITION),
        "!Equals [!Ref \"IngestMode\", \"queue\"]"
    );
    assert!(
        Logic::of(&root).implies((QUEUE_CONDITION, false), (DIRECT_CONDITION, true))
            && Logic::of(&root).implies((DIRECT_CONDITION, true), (QUEUE_CONDITION, false)),
        "DirectMode must be !Not [!Condition QueueMode]"
    );

    // The webhook learns the mode and, in queue mode, the queue's URL (Ref of a queue).
    let env = |function: &str, var: &str| {
        environment(&root, function, var)
            .map(render)
            .unwrap_or_default()
    };
    assert_eq!(env(WEBHOOK_FUNCTION, "INGEST_MODE"), "!Ref \"IngestMode\"");
    assert_eq!(
        env(WEBHOOK_FUNCTION, "ARCHIVE_QUEUE_URL"),
        "!If [\"QueueMode\", !Ref \"ArchiveQueue\", !Ref \"AWS::NoValue\"]"
    );
    // The consumer archives as the direct-mode webhook does: the same archive settings, the
    // same binary and runtime settings, its own log group, no Function URL.
    for var in [
        "VERIFF_API_URL",
        "VERIFF_API_KEY",
        "VERIFF_SHARED_SECRET",
        "ARCHIVE_BUCKET",
        "ARCHIVE_PREFIX",
        "MEDIA_SOURCE",
        "ARCHIVE_DECISION_PAYLOAD",
        "VERIFF_REQUIRE_RESPONSE_SIGNATURE",
        "ARCHIVE_STATUSES",
        "ARCHIVE_VIDEOS",
        "COPY_CONCURRENCY",
        "MAX_FILE_MIB",
        "PART_SIZE_MIB",
        "MANIFEST_SIGNING_KEY_ID",
    ] {
        let webhook = env(WEBHOOK_FUNCTION, var);
        assert!(
            !webhook.is_empty(),
            "{var} is not set for {WEBHOOK_FUNCTION}"
        );
        assert_eq!(env(CONSUMER_FUNCTION, var), webhook, "{var} differs");
    }
    for var in ["INGEST_MODE", "ARCHIVE_QUEUE_URL"] {
        assert_eq!(
            env(CONSUMER_FUNCTION, var),
            "",
            "the consumer needs no {var}"
        );
    }
    let resource = |name: &str| root.get("Resources").and_then(|r| r.get(name));
    for key in [
        "CodeUri",
        "Handler",
        "Runtime",
        "Architectures",
        "MemorySize",
        "Timeout",
    ] {
        let webhook = property(&root, WEBHOOK_FUNCTION, key).map(render);
        assert!(webhook.is_some(), "{WEBHOOK_FUNCTION} has no {key}");
        assert_eq!(
            property(&root, CONSUMER_FUNCTION, key).map(render),
            webhook,
            "{key} differs"
        );
    }
    assert_eq!(
        field(resource(CONSUMER_FUNCTION), "Metadata"),
        field(resource(WEBHOOK_FUNCTION), "Metadata"),
        "the consumer is built as the webhook is (the same bootstrap)"
    );
    assert!(property(&root, CONSUMER_FUNCTION, "FunctionUrlConfig").is_none());
    let logging = property(&root, CONSUMER_FUNCTION, "LoggingConfig");
    assert_eq!(field(logging, "LogGroup"), "!Ref \"ConsumerLogGroup\"");
    assert_eq!(
        field(resource("ConsumerLogGroup"), "Condition"),
        "\"QueueMode\""
    );

    // The dead-letter queue raises an alarm as soon as it holds a message.
    let alarm = resource("DeadLetterQueueAlarm");
    assert_eq!(field(alarm, "Condition"), "\"QueueMode\"");
    let alarm = alarm.and_then(|a| a.get("Properties"));
    for (key, value) in [
        ("Namespace", "\"AWS/SQS\""),
        ("MetricName", "\"ApproximateNumberOfMessagesVisible\""),
        (
            "Dimensions",
            "[{Name: \"QueueName\", Value: !GetAtt \"ArchiveDeadLetterQueue.QueueName\"}]",
        ),
        ("Threshold", "\"0\""),
        ("ComparisonOperator", "\"GreaterThanThreshold\""),
        ("TreatMissingData", "\"notBreaching\""),
    ] {
        assert_eq!(field(alarm, key), value, "DeadLetterQueueAlarm {key}");
    }

    let outputs = root.get("Outputs");
    for name in [
        "ArchiveQueueUrl",
        "DeadLetterQueueUrl",
        "DeadLetterQueueArn",
        "ConsumerFunctionName",
        "ConsumerLogGroupName",
        "ConsumerRoleArn",
    ] {
        let output = outputs.and_then(|o| o.get(name));
        assert!(output.is_some(), "output {name}");
        assert_eq!(field(output, "Condition"), "\"QueueMode\"", "output {name}");
    }
}

#[test]
fn alarms_dashboard_and_secret_are_wired() {
    let root = parse(&template()).expect("template.yaml parses");
    let found: Vec<String> = secret_violations(&root)
        .into_iter()
        .chain(monitoring_violations(&root))
        .collect();
    assert!(
        found.is_empty(),
        "template.yaml's secret, alarms or dashboard are not wired as expected:\n  - {}",
        found.join("\n  - ")
    );
    let resources = root.get("Resources").expect("Resources");

    // Positive evidence, beside ALARMS: the alarm set and what each one watches.
    let alarms: BTreeMap<&str, (String, String)> = match resources {
        Node::Map { entries, .. } => entries
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Node::scalar) == Some("AWS::CloudWatch::Alarm"))
            .map(|(k, r)| {
                let p = r.get("Properties");
                let get = |key: &str| p.and_then(|p| p.get(key)).map(render).unwrap_or_default();
                (k.as_str(), (get("Namespace"), get("MetricName")))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let namespace = "!Ref \"MetricsNamespace\"";
    let expected: BTreeMap<&str, (String, String)> = [
        ("ArchiveFailuresAlarm", namespace, "ArchiveFailures"),
        ("ConsumerErrorsAlarm", "\"AWS/Lambda\"", "Errors"),
        ("ConsumerThrottlesAlarm", "\"AWS/Lambda\"", "Throttles"),
        (
            "DeadLetterQueueAlarm",
            "\"AWS/SQS\"",
            "ApproximateNumberOfMessagesVisible",
        ),
        ("RejectedWebhooksAlarm", namespace, "WebhooksRejected"),
        ("WebhookErrorsAlarm", "\"AWS/Lambda\"", "Errors"),
        ("WebhookThrottlesAlarm", "\"AWS/Lambda\"", "Throttles"),
    ]
    .into_iter()
    .map(|(name, ns, metric)| (name, (ns.to_string(), format!("{metric:?}"))))
    .collect();
    assert_eq!(alarms, expected);
    // With an email every alarm notifies the topic, on ALARM and back to OK; without one,
    // nothing (and the topic does not exist).
    for name in alarms.keys() {
        let props = resources
            .get(name)
            .and_then(|r| r.get("Properties"))
            .expect("alarm Properties");
        for key in ["AlarmActions", "OKActions"] {
            let actions = props
                .get(key)
                .unwrap_or_else(|| panic!("{name} has no {key}"));
            let with = resolve(actions, &[(ALARM_EMAIL_CONDITION, true)]).expect(key);
            assert_eq!(
                with.map(render).as_deref(),
                Some("[!Ref \"AlarmTopic\"]"),
                "{name} {key} with an AlarmEmail"
            );
            let without = resolve(actions, &[(ALARM_EMAIL_CONDITION, false)]).expect(key);
            assert!(without.is_none(), "{name} {key} without an AlarmEmail");
        }
    }
    let outputs = root.get("Outputs").expect("Outputs");
    let condition = |output: &str| {
        outputs
            .get(output)
            .unwrap_or_else(|| panic!("output {output}"))
            .get("Condition")
            .and_then(Node::scalar)
    };
    assert_eq!(condition("AlarmTopicArn"), Some(ALARM_EMAIL_CONDITION));
    assert_eq!(condition("DashboardName"), None);
    assert_eq!(condition("VeriffSecretArn"), Some(SECRET_CONDITION));

    // The dashboard: valid JSON in both modes, the queue-mode widgets and alarms in queue mode
    // only.
    let direct = dashboard_body(&root, false).expect("the direct-mode dashboard renders");
    let queue = dashboard_body(&root, true).expect("the queue-mode dashboard renders");
    let (d, q) = match (read_dashboard(&direct), read_dashboard(&queue)) {
        (Ok(d), Ok(q)) => (d, q),
        (d, q) => panic!("the dashboard does not read: {:?} {:?}", d.err(), q.err()),
    };
    for queue_only in [CONSUMER_FUNCTION, QUEUE, DEAD_LETTER_QUEUE] {
        assert!(
            !direct.contains(queue_only),
            "{queue_only} on the direct-mode dashboard"
        );
        assert!(
            queue.contains(&format!("sample:{queue_only}")),
            "{queue_only} not on the queue-mode dashboard"
        );
    }
    assert_eq!((d.alarms.len(), q.alarms.len()), (4, 7));
    assert!(d.metrics.keys().all(|m| q.metrics.contains_key(m)));
    assert_eq!(d.expressions, q.expressions);

    // The secret: what each function is handed in each way of giving the credentials.
    for function in [WEBHOOK_FUNCTION, CONSUMER_FUNCTION] {
        for &(what, use_secret, create) in CREDENTIAL_SCENARIOS {
            let assignment = [
                (SECRET_CONDITION, use_secret),
                (CREATE_SECRET_CONDITION, create),
            ];
            let set: BTreeSet<&str> = [
                "VERIFF_API_KEY",
                "VERIFF_SHARED_SECRET",
                "VERIFF_SECRET_ARN",
                "SECRET_REFRESH_SECONDS",
            ]
            .into_iter()
            .filter(|var| {
                environment(&root, function, var)
                    .is_some_and(|n| resolve(n, &assignment).expect(var).is_some())
            })
            .collect();
            let expected: BTreeSet<&str> = if use_secret {
                ["VERIFF_SECRET_ARN", "SECRET_REFRESH_SECONDS"].into()
            } else {
                ["VERIFF_API_KEY", "VERIFF_SHARED_SECRET"].into()
            };
            assert_eq!(set, expected, "{function} with {what}");
        }
    }
    let rules: BTreeSet<&str> = match root.get("Rules") {
        Some(Node::Map { entries, .. }) => entries.iter().map(|(k, _)| k.as_str()).collect(),
        _ => BTreeSet::new(),
    };
    assert_eq!(
        rules,
        [
            "CredentialsFromExistingSecret",
            "CredentialsFromParameters",
            "QueueModeKeepsNoBody",
            "SecretKeyNeedsASecret",
        ]
        .into()
    );
}

/// Issue 14's bounds on the public URL: `ReservedConcurrency` reserves the webhook
/// function's concurrency when set and nothing when empty; `AllowedSourceCidrs` reaches the
/// webhook function (the one with a URL) as `ALLOWED_SOURCE_CIDRS`, and no other function.
fn public_url_violations(root: &Node) -> Vec<String> {
    let mut v = Vec::new();
    let parameter = |name: &str, key: &str| {
        root.get("Parameters")
            .and_then(|p| p.get(name))
            .and_then(|p| p.get(key))
            .and_then(Node::scalar)
            .map(str::to_string)
    };
    for name in ["ReservedConcurrency", "AllowedSourceCidrs"] {
        if parameter(name, "Default").as_deref() != Some("") {
            v.push(format!("parameter {name} must default to empty (no bound)"));
        }
    }
    if parameter("ReservedConcurrency", "AllowedPattern").as_deref() != Some("^$|^[1-9][0-9]{0,4}$")
    {
        v.push("ReservedConcurrency must allow only empty or a number of at least 1 (0 would stop the function)".into());
    }
    let condition = root
        .get("Conditions")
        .and_then(|c| c.get("HasReservedConcurrency"))
        .map(render);
    if condition.as_deref() != Some("!Not [!Equals [!Ref \"ReservedConcurrency\", \"\"]]") {
        v.push(format!(
            "condition HasReservedConcurrency must be `ReservedConcurrency` not empty: {condition:?}"
        ));
    }
    let reserved = root
        .get("Resources")
        .and_then(|r| r.get(WEBHOOK_FUNCTION))
        .and_then(|f| f.get("Properties"))
        .and_then(|p| p.get("ReservedConcurrentExecutions"));
    match reserved {
        None => v.push(format!(
            "{WEBHOOK_FUNCTION} has no ReservedConcurrentExecutions"
        )),
        Some(node) => {
            let set = resolve(node, &[("HasReservedConcurrency", true)]).map(|n| n.map(render));
            let unset = resolve(node, &[("HasReservedConcurrency", false)]).map(|n| n.map(render));
            if set != Ok(Some("!Ref \"ReservedConcurrency\"".into())) || unset != Ok(None) {
                v.push(format!(
                    "{WEBHOOK_FUNCTION}'s ReservedConcurrentExecutions must be ReservedConcurrency when set and absent when empty: {set:?} / {unset:?}"
                ));
            }
        }
    }
    let list = environment(root, WEBHOOK_FUNCTION, "ALLOWED_SOURCE_CIDRS").map(render);
    if list.as_deref() != Some("!Ref \"AllowedSourceCidrs\"") {
        v.push(format!(
            "{WEBHOOK_FUNCTION} must get ALLOWED_SOURCE_CIDRS from AllowedSourceCidrs: {list:?}"
        ));
    }
    if environment(root, CONSUMER_FUNCTION, "ALLOWED_SOURCE_CIDRS").is_some() {
        v.push(format!(
            "{CONSUMER_FUNCTION} has no URL: it must not be given ALLOWED_SOURCE_CIDRS"
        ));
    }
    v
}

#[test]
fn public_url_bounds_are_wired_and_each_mutation_is_caught() {
    let src = template();
    let root = parse(&src).expect("template.yaml parses");
    let found = public_url_violations(&root);
    assert!(found.is_empty(), "{found:#?}");
    for (what, from, to) in [
        (
            "no reservation",
            "      ReservedConcurrentExecutions: !If\n",
            "      ReservedConcurrentExecutionsX: !If\n",
        ),
        (
            "zero allowed",
            "AllowedPattern: \"^$|^[1-9][0-9]{0,4}$\"",
            "AllowedPattern: \"^$|^[0-9]{1,5}$\"",
        ),
        (
            "a default cap",
            "  ReservedConcurrency:\n    Type: String\n    Default: \"\"",
            "  ReservedConcurrency:\n    Type: String\n    Default: \"5\"",
        ),
        (
            "the list not passed on",
            "          ALLOWED_SOURCE_CIDRS: !Ref AllowedSourceCidrs\n",
            "",
        ),
        (
            "the condition inverted",
            "HasReservedConcurrency: !Not [!Equals [!Ref ReservedConcurrency, \"\"]]",
            "HasReservedConcurrency: !Equals [!Ref ReservedConcurrency, \"\"]",
        ),
    ] {
        assert!(
            src.contains(from),
            "{what}: the template no longer has {from:?}"
        );
        let mutated = src.replacen(from, to, 1);
        let root = parse(&mutated).expect("the mutated template parses");
        assert!(
            !public_url_violations(&root).is_empty(),
            "{what}: not caught"
        );
    }
}

#[test]
fn only_the_seal_schedule_may_invoke_the_function_that_writes_the_archive() {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    assert_eq!(seal_schedule_problems(&src), Vec::<String>::new());
    assert!(violations(&src).is_empty(), "{:#?}", violations(&src));
    // Each widening is caught.
    for (from, to) in [
        ("Principal: events.amazonaws.com", "Principal: \"*\""),
        (
            "Principal: events.amazonaws.com",
            "Principal: s3.amazonaws.com",
        ),
        (
            "Action: lambda:InvokeFunction\n      FunctionName",
            "Action: \"lambda:*\"\n      FunctionName",
        ),
        ("      SourceArn: !GetAtt SealScheduleRule.Arn\n", ""),
        (
            "ScheduleExpression: !Ref SealSchedule",
            "ScheduleExpression: rate(1 minute)",
        ),
        (
            "FunctionName: !If [QueueMode, !Ref ArchiveConsumerFunction, !Ref ArchiverFunction]",
            "FunctionName: !Ref ArchiverFunction",
        ),
        (
            "Arn: !If [QueueMode, !GetAtt ArchiveConsumerFunction.Arn, !GetAtt ArchiverFunction.Arn]",
            "Arn: !GetAtt ArchiverFunction.Arn",
        ),
    ] {
        assert!(src.contains(from), "the template has {from:?}");
        let widened = src.replacen(from, to, 1);
        assert!(
            !seal_schedule_problems(&widened).is_empty(),
            "not caught: {from:?} -> {to:?}"
        );
    }
    // A second permission (say, a public invoke) is caught too.
    let extra = src.replacen(
        "\nOutputs:",
        "\n  PublicInvoke:\n    Type: AWS::Lambda::Permission\n    Properties:\n      Action: \
         lambda:InvokeFunction\n      FunctionName: !Ref ArchiverFunction\n      Principal: \"*\"\n\
         \nOutputs:",
        1,
    );
    assert!(!seal_schedule_problems(&extra).is_empty());
}
