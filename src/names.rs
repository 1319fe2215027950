//! Name validation and derivation.
//!
//! Every identifier in a generated project is derived from a few names the
//! user gives (the target directory, the methods, the proto package and
//! service, the grpc host). This module checks those names against the
//! naming rules (README: Usage) and derives the Rust identifiers exactly the
//! way prost-build 0.14 and tonic-prost-build 0.14 derive them, so templates
//! can refer to the generated code by name. The derivations were checked by compiling protos
//! with those crates:
//!
//! - message types, the service trait and oneof variants use prost's
//!   `to_upper_camel` (heck UpperCamel + keyword sanitising):
//!   `ExportONNXRequest` → `ExportOnnxRequest`;
//! - rpc functions (server trait and client) use prost's `to_snake`
//!   (heck snake + sanitising): `ExportONNX` → `export_onnx`;
//! - tonic's server/client modules use tonic's `naive_snake_case` of the
//!   service trait name: `DemoSvc` → `demo_svc_server`.

use heck::{ToKebabCase, ToSnakeCase, ToUpperCamelCase};
use std::fmt;
use std::path::{Component, Path};

/// Longest name (method, crate, proto service, package segment) accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Longest grpc host accepted (DNS limit).
pub const MAX_HOST_LEN: usize = 253;

/// A name that breaks one of the naming rules. Displays as one line naming
/// the value and the rule: `invalid method name "1abc": must not start with a digit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    what: String,
    value: String,
    rule: String,
}

impl InvalidName {
    /// An error for `value` (a `what`, e.g. "method name") breaking `rule`.
    pub fn new(what: impl Into<String>, value: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            value: value.into(),
            rule: rule.into(),
        }
    }

    /// Appends a hint in parentheses to the rule.
    pub fn with_hint(mut self, hint: &str) -> Self {
        self.rule = format!("{} ({hint})", self.rule);
        self
    }
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.what, self.value, self.rule)
    }
}

impl std::error::Error for InvalidName {}

/// Result of a name check.
pub type NameResult<T> = Result<T, InvalidName>;

const METHOD: &str = "method name";
const CRATE: &str = "crate name";
const PACKAGE: &str = "proto package";
const SERVICE: &str = "proto service name";
const HOST: &str = "grpc host";

/// Rust keywords of every edition, strict and reserved (weak keywords such as
/// `union` are usable as identifiers and are not listed).
const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Names that would shadow a standard crate or the test harness.
const RESERVED_NAMES: &[&str] = &["test", "std", "core", "alloc", "proc_macro"];

/// Dependencies of the generated project (compared in snake form).
const GENERATED_DEPENDENCIES: &[&str] = &[
    "tokio",
    "axum",
    "tonic",
    "tonic_prost",
    "tonic_health",
    "tonic_reflection",
    "prost",
    "protox",
    "tonic_prost_build",
    "serde",
    "serde_json",
    "serde_path_to_error",
    "subtle",
    "tracing",
    "tracing_subscriber",
    "hyper",
    "hyper_util",
    "http_body_util",
];

/// Package names cargo refuses because they clash with its build directories.
const CARGO_REFUSED: &[&str] = &["build", "deps", "examples", "incremental"];

/// File names Windows reserves; cargo warns and the project cannot be checked out there.
const WINDOWS_RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Names generated into every project that methods must not collide with,
/// with what they are.
const GENERATED_NAMES: &[(&str, &str)] = &[
    ("GetLastResult", "the built-in rpc"),
    ("Empty", "a generated message"),
    ("LastResult", "a generated message"),
    ("Health", "the gRPC health service"),
    ("Check", "a gRPC health rpc"),
    ("Watch", "a gRPC health rpc"),
    ("TaskId", "a field of LastResult"),
    ("Method", "a field of LastResult"),
    ("Result", "the oneof of LastResult"),
];

/// Inherent functions of tonic's generated client; an rpc with the same Rust
/// name does not compile (`duplicate definitions`).
const TONIC_CLIENT_FNS: &[&str] = &[
    "new",
    "connect",
    "with_origin",
    "with_interceptor",
    "send_compressed",
    "accept_compressed",
    "max_decoding_message_size",
    "max_encoding_message_size",
];

/// prost's `sanitize_identifier`: raw identifiers for keywords, `_` suffix
/// for keywords that cannot be raw, `_` prefix for a leading digit.
pub fn sanitize_identifier(ident: &str) -> String {
    match ident {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        s if s.starts_with(|c: char| c.is_numeric()) => format!("_{ident}"),
        _ => ident.to_string(),
    }
}

/// prost's `to_snake`: the Rust name of fields, oneof fields and rpc functions.
pub fn prost_snake(s: &str) -> String {
    sanitize_identifier(&s.to_snake_case())
}

/// prost's `to_upper_camel`: the Rust name of messages, services and oneof variants.
pub fn prost_upper_camel(s: &str) -> String {
    sanitize_identifier(&s.to_upper_camel_case())
}

/// tonic-build's `naive_snake_case`: lowercases and puts `_` before every
/// uppercase letter that follows a character (`ABCServiceX` → `a_b_c_service_x`).
/// Used for the `<service>_server` / `<service>_client` module names.
pub fn naive_snake_case(name: &str) -> String {
    let mut s = String::new();
    let mut it = name.chars().peekable();
    while let Some(x) = it.next() {
        s.push(x.to_ascii_lowercase());
        if it.peek().is_some_and(|y| y.is_uppercase()) {
            s.push('_');
        }
    }
    s
}

/// Checks shared by every user-given identifier: not empty, no leading
/// digit, only ASCII letters/digits/`-`/`_`, at most [`MAX_NAME_LEN`].
fn check_basic(what: &str, value: &str) -> NameResult<()> {
    if value.is_empty() {
        return Err(InvalidName::new(what, value, "must not be empty"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(InvalidName::new(
            what,
            value,
            format!("must contain only ASCII letters, digits, '-' and '_' (found {bad:?})"),
        ));
    }
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(InvalidName::new(what, value, "must not start with a digit"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(InvalidName::new(
            what,
            value,
            format!(
                "must be at most {MAX_NAME_LEN} characters (it has {})",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a derived form (snake or camel) is still a usable identifier and
/// its snake form is neither a keyword nor a reserved name.
fn check_derived(what: &str, value: &str, derived: &str) -> NameResult<()> {
    if derived.is_empty() {
        return Err(InvalidName::new(
            what,
            value,
            "must contain at least one ASCII letter",
        ));
    }
    if derived.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(InvalidName::new(what, value, "must not start with a digit"));
    }
    let snake = derived.to_snake_case();
    if RUST_KEYWORDS.contains(&snake.as_str()) {
        return Err(InvalidName::new(
            what,
            value,
            format!("is the Rust keyword `{snake}`"),
        ));
    }
    if RESERVED_NAMES.contains(&snake.as_str()) {
        return Err(InvalidName::new(
            what,
            value,
            format!("`{snake}` is reserved (it would shadow a standard crate or the test harness)"),
        ));
    }
    Ok(())
}

/// Lowercase with `_` removed: two names that agree here collide.
fn collision_key(s: &str) -> String {
    s.trim_start_matches("r#")
        .chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The canonical (UpperCamelCase) form of a method name, validated.
///
/// A name that starts with an uppercase letter and has no `_`/`-` is kept
/// exactly (`ExportONNX`); anything else becomes heck UpperCamel
/// (`train_model`, `train-model` → `TrainModel`).
pub fn canonical_method(raw: &str) -> NameResult<String> {
    check_basic(METHOD, raw)?;
    let keep = raw.starts_with(|c: char| c.is_ascii_uppercase()) && !raw.contains(['_', '-']);
    let canonical = if keep {
        raw.to_string()
    } else {
        raw.to_upper_camel_case()
    };
    check_derived(METHOD, raw, &canonical)?;
    for (generated, what) in GENERATED_NAMES {
        let names = method_names(&canonical);
        if let Some((form, label)) = names
            .labelled()
            .into_iter()
            .find(|(form, _)| collision_key(form) == collision_key(generated))
        {
            let via = if label == "method" {
                String::new()
            } else {
                format!(" (its {label} is \"{form}\")")
            };
            return Err(InvalidName::new(
                METHOD,
                raw,
                format!("collides with \"{generated}\", {what}{via}"),
            ));
        }
    }
    let rpc_fn = prost_snake(&canonical);
    if TONIC_CLIENT_FNS.contains(&rpc_fn.as_str()) {
        return Err(InvalidName::new(
            METHOD,
            raw,
            format!("tonic's generated client already has a function `{rpc_fn}`"),
        ));
    }
    Ok(canonical)
}

/// Every name derived from one canonical method name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodNames {
    /// Canonical UpperCamel name, e.g. `ExportONNX`.
    pub canonical: String,
    /// Proto request message, `{M}Request`.
    pub request_message: String,
    /// Proto response message, `{M}Response`.
    pub response_message: String,
    /// Rust type of the request per prost, e.g. `ExportOnnxRequest`.
    pub request_type: String,
    /// Rust type of the response per prost.
    pub response_type: String,
    /// Rust fn of the rpc in tonic's server trait and client, e.g. `export_onnx`.
    pub rpc_fn: String,
    /// heck snake name: handler module, file stem and fn, LastResult oneof field.
    pub handler: String,
    /// prost's variant of the LastResult oneof enum, e.g. `ExportOnnx`.
    pub variant: String,
}

impl MethodNames {
    /// Every derived form with a label, for collision messages.
    fn labelled(&self) -> Vec<(&str, &'static str)> {
        vec![
            (self.canonical.as_str(), "method"),
            (self.request_message.as_str(), "request message"),
            (self.response_message.as_str(), "response message"),
            (self.request_type.as_str(), "request type"),
            (self.response_type.as_str(), "response type"),
            (self.rpc_fn.as_str(), "rpc function"),
            (self.handler.as_str(), "handler"),
            (self.variant.as_str(), "LastResult variant"),
        ]
    }
}

/// Derives every name from a canonical method name (see [`canonical_method`]).
pub fn method_names(canonical: &str) -> MethodNames {
    let request_message = format!("{canonical}Request");
    let response_message = format!("{canonical}Response");
    let handler = canonical.to_snake_case();
    MethodNames {
        canonical: canonical.to_string(),
        request_type: prost_upper_camel(&request_message),
        response_type: prost_upper_camel(&response_message),
        request_message,
        response_message,
        rpc_fn: prost_snake(canonical),
        variant: prost_upper_camel(&handler),
        handler,
    }
}

/// Validates a list of raw method names: each one, then that no two collide
/// after derivation (compared case-insensitively, ignoring `_`). Returns the
/// derived names in the given order.
pub fn validate_methods<S: AsRef<str>>(raw: &[S]) -> NameResult<Vec<MethodNames>> {
    if raw.is_empty() {
        return Err(InvalidName::new(
            METHOD,
            "",
            "at least one method is required",
        ));
    }
    let mut done: Vec<(&str, MethodNames)> = Vec::with_capacity(raw.len());
    for r in raw {
        let r = r.as_ref();
        let names = method_names(&canonical_method(r)?);
        for (earlier_raw, earlier) in &done {
            for (theirs, their_label) in earlier.labelled() {
                if let Some((ours, _)) = names
                    .labelled()
                    .into_iter()
                    .find(|(ours, _)| collision_key(ours) == collision_key(theirs))
                {
                    let rule = if earlier_raw == &r {
                        "is given twice".to_string()
                    } else if their_label == "method" {
                        format!(
                            "collides with method \"{earlier_raw}\" (\"{ours}\" vs \"{theirs}\")"
                        )
                    } else {
                        format!(
                            "collides with the {their_label} \"{theirs}\" of method \"{earlier_raw}\""
                        )
                    };
                    return Err(InvalidName::new(METHOD, r, rule));
                }
            }
        }
        done.push((r, names));
    }
    Ok(done.into_iter().map(|(_, n)| n).collect())
}

/// The crate name for a `new` target path: the kebab-case of its last
/// component (`./out/My_Service` → `my-service`), validated.
pub fn crate_name_from_path(path: &Path) -> NameResult<String> {
    let shown = path.display().to_string();
    match path.components().next_back() {
        Some(Component::Normal(last)) => match last.to_str() {
            Some(last) => crate_name(last),
            None => Err(InvalidName::new(
                CRATE,
                last.to_string_lossy(),
                "must contain only ASCII letters, digits, '-' and '_'",
            )),
        },
        None => Err(InvalidName::new(CRATE, shown, "must not be empty")),
        Some(_) => Err(InvalidName::new(
            CRATE,
            shown,
            "the path must end in a directory name, not '.', '..' or a root (it must not leave the target directory)",
        )),
    }
}

/// Validates a crate name given as a directory name and returns its
/// kebab-case form (idempotent on valid kebab names).
pub fn crate_name(component: &str) -> NameResult<String> {
    if component == "." || component == ".." || component.contains(['/', '\\']) {
        return Err(InvalidName::new(
            CRATE,
            component,
            "must be a plain directory name (it must not leave the target directory)",
        ));
    }
    check_basic(CRATE, component)?;
    let kebab = component.to_kebab_case();
    check_derived(CRATE, component, &kebab).map_err(|e| with_origin(e, &kebab, component))?;
    let snake = kebab.replace('-', "_");
    let rule = if GENERATED_DEPENDENCIES.contains(&snake.as_str()) {
        Some(format!(
            "`{snake}` is a dependency of the generated project"
        ))
    } else if CARGO_REFUSED.contains(&kebab.as_str()) {
        Some(format!(
            "cargo refuses `{kebab}` (it clashes with a build directory)"
        ))
    } else if WINDOWS_RESERVED.contains(&kebab.as_str()) {
        Some(format!("`{kebab}` is a reserved Windows file name"))
    } else {
        None
    };
    match rule {
        Some(rule) => Err(with_origin(
            InvalidName::new(CRATE, component, rule),
            &kebab,
            component,
        )),
        None => Ok(kebab),
    }
}

/// Mentions the derived crate name when it differs from the directory name.
fn with_origin(e: InvalidName, kebab: &str, component: &str) -> InvalidName {
    let rule = if kebab == component {
        e.rule
    } else {
        format!(
            "{} (crate name \"{kebab}\" comes from the directory name)",
            e.rule
        )
    };
    InvalidName::new(CRATE, component, rule)
}

/// The default proto package: the snake_case of the crate name.
pub fn default_proto_package(crate_name: &str) -> String {
    crate_name.to_snake_case()
}

/// Validates a proto package: dot-separated segments, each a lowercase
/// snake identifier (`[a-z][a-z0-9_]*`, at most 64 chars), not a keyword.
pub fn proto_package(raw: &str) -> NameResult<String> {
    if raw.is_empty() {
        return Err(InvalidName::new(PACKAGE, raw, "must not be empty"));
    }
    if raw.len() > 2 * MAX_NAME_LEN {
        return Err(InvalidName::new(
            PACKAGE,
            raw,
            format!("must be at most {} characters", 2 * MAX_NAME_LEN),
        ));
    }
    for segment in raw.split('.') {
        let rule = if segment.is_empty() {
            Some("must not have an empty segment (leading, trailing or double '.')".to_string())
        } else if segment.starts_with(|c: char| c.is_ascii_digit()) {
            Some(format!("segment \"{segment}\" must not start with a digit"))
        } else if !segment.starts_with(|c: char| c.is_ascii_lowercase()) {
            Some(format!(
                "segment \"{segment}\" must start with a lowercase letter"
            ))
        } else if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            Some(format!(
                "segment \"{segment}\" must contain only lowercase ASCII letters, digits and '_' (found {bad:?})"
            ))
        } else if segment.len() > MAX_NAME_LEN {
            Some(format!(
                "segment \"{segment}\" must be at most {MAX_NAME_LEN} characters"
            ))
        } else if RUST_KEYWORDS.contains(&segment) {
            Some(format!("segment \"{segment}\" is a Rust keyword"))
        } else if RESERVED_NAMES.contains(&segment) {
            Some(format!(
                "segment \"{segment}\" is reserved (it would shadow a standard crate or the test harness)"
            ))
        } else {
            None
        };
        if let Some(rule) = rule {
            return Err(InvalidName::new(PACKAGE, raw, rule));
        }
    }
    Ok(raw.to_string())
}

/// Validates the name of an upstream service (`add-upstream --name`): a
/// snake_case Rust identifier, not a keyword, at most [`MAX_NAME_LEN`].
pub fn upstream_name(raw: &str) -> NameResult<String> {
    const WHAT: &str = "upstream name";
    let snake = !raw.is_empty()
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        return Err(InvalidName::new(
            WHAT,
            raw,
            "must be snake_case: a lowercase letter, then lowercase letters, digits and '_'",
        ));
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(InvalidName::new(
            WHAT,
            raw,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if RUST_KEYWORDS.contains(&raw) || RESERVED_NAMES.contains(&raw) {
        return Err(InvalidName::new(
            WHAT,
            raw,
            "is a Rust keyword or reserved name",
        ));
    }
    Ok(raw.to_string())
}

/// The default proto service name: the UpperCamelCase of the crate name.
pub fn default_proto_service(crate_name: &str) -> String {
    crate_name.to_upper_camel_case()
}

/// Validates a proto service name on its own: an UpperCamel proto
/// identifier (`[A-Z][A-Za-z0-9]*`), at most 64 chars, not a keyword.
/// See [`check_service_against_methods`] for the checks that need the methods.
pub fn proto_service(raw: &str) -> NameResult<String> {
    check_basic(SERVICE, raw)?;
    if !raw.starts_with(|c: char| c.is_ascii_uppercase()) || raw.contains(['_', '-']) {
        return Err(InvalidName::new(
            SERVICE,
            raw,
            "must be UpperCamelCase: an uppercase letter, then only ASCII letters and digits",
        ));
    }
    check_derived(SERVICE, raw, raw)?;
    Ok(raw.to_string())
}

/// The Rust trait tonic generates for a proto service (prost's `to_upper_camel`).
pub fn service_trait(service: &str) -> String {
    prost_upper_camel(service)
}

/// The module tonic generates the server in: `naive_snake(trait) + "_server"`.
pub fn service_server_mod(service: &str) -> String {
    format!("{}_server", naive_snake_case(&service_trait(service)))
}

/// Checks a proto service name against the messages of the package and the
/// structs tonic generates for the methods.
pub fn check_service_against_methods(service: &str, methods: &[MethodNames]) -> NameResult<()> {
    let key = collision_key(service);
    for generated in ["Empty", "LastResult"] {
        if key == collision_key(generated) {
            return Err(InvalidName::new(
                SERVICE,
                service,
                format!("equals the message \"{generated}\" of the package"),
            ));
        }
    }
    for m in methods {
        for (message, label) in [
            (&m.request_message, "request"),
            (&m.response_message, "response"),
        ] {
            if key == collision_key(message) {
                return Err(InvalidName::new(
                    SERVICE,
                    service,
                    format!(
                        "equals the {label} message \"{message}\" of method \"{}\"",
                        m.canonical
                    ),
                ));
            }
        }
    }
    let trait_name = service_trait(service);
    for m in methods {
        // tonic defines `struct {M}Svc<T: Trait>` inside the server; it must
        // not shadow the trait itself (checked by compiling: E0404).
        if format!("{}Svc", m.canonical) == trait_name {
            return Err(InvalidName::new(
                METHOD,
                m.canonical.as_str(),
                format!(
                    "tonic would generate a struct \"{trait_name}\" for it, shadowing the service trait \"{trait_name}\" (rename the method or pass --proto-service)"
                ),
            ));
        }
    }
    Ok(())
}

/// Validates a grpc host: a hostname of letters, digits, `-` and `.`, at
/// most 253 chars, with non-empty labels of at most 63 chars that do not
/// start or end with `-`.
pub fn grpc_host(raw: &str) -> NameResult<String> {
    if raw.is_empty() {
        return Err(InvalidName::new(HOST, raw, "must not be empty"));
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(InvalidName::new(
            HOST,
            raw,
            format!("must be a hostname: only ASCII letters, digits, '-' and '.' (found {bad:?})"),
        ));
    }
    if raw.len() > MAX_HOST_LEN {
        return Err(InvalidName::new(
            HOST,
            raw,
            format!(
                "must be at most {MAX_HOST_LEN} characters (it has {})",
                raw.len()
            ),
        ));
    }
    for label in raw.split('.') {
        let rule = if label.is_empty() {
            Some("must not have an empty label (leading, trailing or double '.')".to_string())
        } else if label.len() > 63 {
            Some(format!("label \"{label}\" must be at most 63 characters"))
        } else if label.starts_with('-') || label.ends_with('-') {
            Some(format!("label \"{label}\" must not start or end with '-'"))
        } else {
            None
        };
        if let Some(rule) = rule {
            return Err(InvalidName::new(HOST, raw, rule));
        }
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of<T: fmt::Debug>(r: NameResult<T>) -> String {
        r.expect_err("should be rejected").to_string()
    }

    #[test]
    fn export_onnx_derivations() {
        let n = method_names(&canonical_method("ExportONNX").unwrap());
        assert_eq!(n.canonical, "ExportONNX");
        assert_eq!(n.request_message, "ExportONNXRequest");
        assert_eq!(n.response_message, "ExportONNXResponse");
        assert_eq!(n.request_type, "ExportOnnxRequest");
        assert_eq!(n.response_type, "ExportOnnxResponse");
        // tonic-prost-build takes the rpc fn from prost's `to_snake`, not
        // from tonic's naive snake case (checked by compiling).
        assert_eq!(n.rpc_fn, "export_onnx");
        assert_eq!(naive_snake_case("ExportONNX"), "export_o_n_n_x");
        assert_eq!(n.handler, "export_onnx");
        assert_eq!(n.variant, "ExportOnnx");
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_method("train-model").unwrap(), "TrainModel");
        assert_eq!(canonical_method("train_model").unwrap(), "TrainModel");
        assert_eq!(canonical_method("trainModel").unwrap(), "TrainModel");
        assert_eq!(canonical_method("process").unwrap(), "Process");
        assert_eq!(canonical_method("TrainModel").unwrap(), "TrainModel");
        assert_eq!(canonical_method("HTTPGet").unwrap(), "HTTPGet");
        assert_eq!(canonical_method("Train_Model").unwrap(), "TrainModel");
    }

    #[test]
    fn train_model_derivations() {
        let n = method_names("TrainModel");
        assert_eq!(n.request_type, "TrainModelRequest");
        assert_eq!(n.rpc_fn, "train_model");
        assert_eq!(n.handler, "train_model");
        assert_eq!(n.variant, "TrainModel");
    }

    #[test]
    fn tonic_naive_snake() {
        assert_eq!(naive_snake_case("ThatHasALongName"), "that_has_a_long_name");
        assert_eq!(naive_snake_case("ABCServiceX"), "a_b_c_service_x");
        assert_eq!(service_server_mod("DemoSvc"), "demo_svc_server");
        assert_eq!(service_server_mod("DemoSVC"), "demo_svc_server");
        assert_eq!(service_trait("DemoSVC"), "DemoSvc");
    }

    #[test]
    fn prost_sanitizing() {
        assert_eq!(prost_snake("Async"), "r#async");
        assert_eq!(prost_upper_camel("self"), "Self_");
        assert_eq!(sanitize_identifier("1a"), "_1a");
    }

    #[test]
    fn basic_method_rules() {
        assert_eq!(
            rule_of(canonical_method("1abc")),
            r#"invalid method name "1abc": must not start with a digit"#
        );
        assert!(rule_of(canonical_method("")).contains("must not be empty"));
        assert!(rule_of(canonical_method("a.b")).contains("only ASCII letters"));
        assert!(rule_of(canonical_method("héllo")).contains("only ASCII letters"));
        assert!(rule_of(canonical_method(&"a".repeat(65))).contains("at most 64"));
        assert!(canonical_method(&"a".repeat(64)).is_ok());
        assert!(rule_of(canonical_method("_1a")).contains("digit"));
        assert!(rule_of(canonical_method("__")).contains("at least one ASCII letter"));
    }

    #[test]
    fn keywords_and_reserved() {
        for k in [
            "async", "Await", "dyn", "Try", "gen", "abstract", "type", "Self", "SELF", "self",
            "super", "crate", "Crate",
        ] {
            assert!(rule_of(canonical_method(k)).contains("keyword"), "{k}");
        }
        for r in ["test", "Std", "core", "alloc", "ProcMacro", "proc_macro"] {
            assert!(rule_of(canonical_method(r)).contains("reserved"), "{r}");
        }
    }

    #[test]
    fn generated_name_collisions() {
        for g in [
            "GetLastResult",
            "get_last_result",
            "Empty",
            "LastResult",
            "Health",
            "Check",
            "Watch",
            "task_id",
            "TaskId",
            "method",
            "Result",
        ] {
            assert!(rule_of(canonical_method(g)).contains("collides"), "{g}");
        }
        assert!(rule_of(canonical_method("New")).contains("client"));
        assert!(rule_of(canonical_method("with_origin")).contains("client"));
    }

    #[test]
    fn method_collisions() {
        assert!(rule_of(validate_methods(&["TrainModel", "train_model"])).contains("collides"));
        assert!(rule_of(validate_methods(&["ExportONNX", "ExportOnnx"])).contains("collides"));
        let e = rule_of(validate_methods(&["Foo", "FooRequest"]));
        assert!(e.contains("request message"), "{e}");
        assert!(rule_of(validate_methods(&["FooRequest", "Foo"])).contains("collides"));
        assert!(rule_of(validate_methods(&["Foo", "Foo"])).contains("twice"));
        assert!(rule_of(validate_methods::<&str>(&[])).contains("at least one"));
        let ok = validate_methods(&["TrainModel", "ExportONNX", "process"]).unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[2].canonical, "Process");
    }

    #[test]
    fn crate_names() {
        assert_eq!(
            crate_name_from_path(Path::new("./out/My_Service")).unwrap(),
            "my-service"
        );
        assert_eq!(
            crate_name_from_path(Path::new("demo-svc")).unwrap(),
            "demo-svc"
        );
        assert_eq!(
            crate_name_from_path(Path::new("demo-svc/")).unwrap(),
            "demo-svc"
        );
        for bad in ["..", ".", "a/..", "/"] {
            assert!(
                rule_of(crate_name_from_path(Path::new(bad))).contains("leave the target"),
                "{bad}"
            );
        }
        assert!(rule_of(crate_name("tokio")).contains("dependency"));
        assert!(rule_of(crate_name("Tonic_Prost")).contains("dependency"));
        assert!(rule_of(crate_name("serde-json")).contains("dependency"));
        assert!(rule_of(crate_name("deps")).contains("cargo refuses"));
        assert!(rule_of(crate_name("Build")).contains("cargo refuses"));
        assert!(rule_of(crate_name("async")).contains("keyword"));
        assert!(rule_of(crate_name("proc-macro")).contains("reserved"));
        assert!(rule_of(crate_name("9lives")).contains("digit"));
        assert!(rule_of(crate_name("nul")).contains("Windows"));
    }

    #[test]
    fn packages() {
        assert_eq!(default_proto_package("demo-svc"), "demo_svc");
        assert!(proto_package("acme.pipeline.v1").is_ok());
        assert!(rule_of(proto_package("Acme")).contains("lowercase"));
        assert!(rule_of(proto_package("acme..v1")).contains("empty segment"));
        assert!(rule_of(proto_package("acme.type")).contains("keyword"));
        assert!(rule_of(proto_package("acme.1v")).contains("digit"));
        assert!(rule_of(proto_package("acme-x")).contains("found '-'"));
    }

    #[test]
    fn services() {
        assert_eq!(default_proto_service("demo-svc"), "DemoSvc");
        assert!(proto_service("DemoSvc").is_ok());
        assert!(rule_of(proto_service("demoSvc")).contains("UpperCamelCase"));
        assert!(rule_of(proto_service("Demo_Svc")).contains("UpperCamelCase"));
        let methods = validate_methods(&["Foo"]).unwrap();
        assert!(
            rule_of(check_service_against_methods("FooRequest", &methods))
                .contains("request message")
        );
        assert!(rule_of(check_service_against_methods("Empty", &methods)).contains("Empty"));
        assert!(check_service_against_methods("DemoSvc", &methods).is_ok());
        let demo = validate_methods(&["Demo"]).unwrap();
        assert!(rule_of(check_service_against_methods("DemoSvc", &demo)).contains("shadowing"));
    }

    #[test]
    fn hosts() {
        assert!(grpc_host("demo-svc").is_ok());
        assert!(grpc_host("svc.ns.svc.cluster.local").is_ok());
        assert!(grpc_host("10.0.0.1").is_ok());
        assert!(rule_of(grpc_host("a_b")).contains("hostname"));
        assert!(rule_of(grpc_host("-a")).contains("'-'"));
        assert!(rule_of(grpc_host("a..b")).contains("empty label"));
        assert!(rule_of(grpc_host(&"a.".repeat(130))).contains("253"));
    }
}
