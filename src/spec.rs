//! The validated description of a service to generate.
//!
//! A [`ServiceSpec`] can only be built by [`ServiceSpec::new`], which runs
//! every naming rule of [`crate::names`]; the renderer can therefore trust
//! every name in it. All types serialise (for Tera) with the field names shown.

use crate::names::{self, InvalidName, NameResult};
use serde::Serialize;

/// The LastResult oneof tag of the first method (1 and 2 are `task_id`, `method`).
pub const FIRST_METHOD_TAG: u32 = 3;

/// How a method runs: a long task polled over HTTP, or a quick one that completes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    /// Runs as a background task; serialises as `"long"`.
    Long,
    /// Completes within the request; serialises as `"quick"`.
    Quick,
}

impl MethodKind {
    /// `"long"` or `"quick"`, as in `svcgen.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Long => "long",
            MethodKind::Quick => "quick",
        }
    }
}

/// One method of the service with every name derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodSpec {
    /// Canonical UpperCamel name, e.g. `TrainModel`.
    pub name: String,
    /// Long or quick.
    pub kind: MethodKind,
    /// LastResult oneof tag: 3 for the first method, then 4, 5, …
    pub tag: u32,
    /// Proto request message, e.g. `TrainModelRequest`.
    pub request_message: String,
    /// Proto response message.
    pub response_message: String,
    /// Rust type of the request per prost.
    pub request_type: String,
    /// Rust type of the response per prost.
    pub response_type: String,
    /// Function of the rpc in tonic's server trait (prost's snake case).
    pub rpc_fn: String,
    /// snake name: handler module, file stem, handler fn, oneof field.
    pub handler: String,
    /// prost's variant of the LastResult oneof enum.
    pub variant: String,
    #[serde(skip)]
    _validated: (),
}

/// A service whose names all passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSpec {
    /// kebab-case package name, e.g. `demo-svc`.
    pub crate_name: String,
    /// The crate as a Rust identifier, e.g. `demo_svc`.
    pub crate_ident: String,
    /// Proto package, e.g. `demo_svc` or `acme.pipeline.v1`.
    pub proto_package: String,
    /// Stem of `proto/<x>.proto`: the package with `.` → `_`.
    pub proto_file: String,
    /// Proto service name, e.g. `DemoSvc`.
    pub proto_service: String,
    /// tonic's server module, e.g. `demo_svc_server`.
    pub service_rust_mod: String,
    /// tonic's server trait (prost's UpperCamel of the service).
    pub service_trait: String,
    /// Default HTTP (control) port.
    pub http_port: u16,
    /// Default gRPC (data) port.
    pub grpc_port: u16,
    /// Default advertised gRPC host.
    pub grpc_host: String,
    /// The methods, non-empty, in the order given.
    pub methods: Vec<MethodSpec>,
    /// The upstream services whose protos `svcgen add-upstream` copied in.
    pub upstreams: Vec<UpstreamSpec>,
    #[serde(skip)]
    _validated: (),
}

/// An upstream service this one consumes: its proto and the files it
/// imports were copied into `proto/upstream/<name>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UpstreamSpec {
    /// A snake_case name: the folder under `proto/upstream/` and the module
    /// `crate::svcgen::upstreams::<name>`.
    pub name: String,
    /// The proto file that declares the service, relative to that folder.
    pub file: String,
    /// The consumed service, qualified by its package (`pkg.Service`).
    pub service: String,
    /// Every copied file, relative to the folder (the file and its imports).
    pub files: Vec<String>,
}

/// Everything the user chose, before validation. `None` means "the default".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecInput {
    /// Crate name (kebab-case, usually from [`names::crate_name_from_path`]).
    pub crate_name: String,
    /// Raw method names with their kinds, in order.
    pub methods: Vec<(String, MethodKind)>,
    /// HTTP port.
    pub http_port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// gRPC host; default the crate name.
    pub grpc_host: Option<String>,
    /// Proto package; default the snake_case crate name.
    pub proto_package: Option<String>,
    /// Proto service; default the UpperCamelCase crate name.
    pub proto_service: Option<String>,
    /// The LastResult oneof tag of each method (as recorded in a manifest);
    /// `None` numbers them in order from [`FIRST_METHOD_TAG`].
    pub tags: Option<Vec<u32>>,
    /// Upstream services (from a manifest, or being added).
    pub upstreams: Vec<UpstreamSpec>,
}

impl ServiceSpec {
    /// Validates `input` and derives every name, or names the first rule broken.
    pub fn new(input: SpecInput) -> NameResult<Self> {
        let crate_name = names::crate_name(&input.crate_name)?;
        let raw: Vec<&str> = input.methods.iter().map(|(m, _)| m.as_str()).collect();
        let derived = names::validate_methods(&raw)?;
        let proto_package = match &input.proto_package {
            Some(p) => names::proto_package(p)?,
            None => names::proto_package(&names::default_proto_package(&crate_name))?,
        };
        let defaulted = input.proto_service.is_none();
        let proto_service = match &input.proto_service {
            Some(s) => s.clone(),
            None => names::default_proto_service(&crate_name),
        };
        names::proto_service(&proto_service)
            .and_then(|_| names::check_service_against_methods(&proto_service, &derived))
            .map_err(|e| match defaulted {
                true => e.with_hint("the service name defaults to the UpperCamelCase crate name; pass --proto-service"),
                false => e,
            })?;
        let grpc_host = match &input.grpc_host {
            Some(host) => names::grpc_host(host)?,
            None => names::grpc_host(&crate_name).map_err(|e| {
                e.with_hint("the gRPC host defaults to the crate name; pass --grpc-host")
            })?,
        };
        check_ports(input.http_port, input.grpc_port)?;

        let tags = match &input.tags {
            Some(tags) => check_tags(tags, input.methods.len())?,
            None => (FIRST_METHOD_TAG..).take(input.methods.len()).collect(),
        };
        let methods = derived
            .into_iter()
            .zip(&input.methods)
            .zip(tags)
            .map(|((n, (_, kind)), tag)| MethodSpec {
                name: n.canonical,
                kind: *kind,
                tag,
                request_message: n.request_message,
                response_message: n.response_message,
                request_type: n.request_type,
                response_type: n.response_type,
                rpc_fn: n.rpc_fn,
                handler: n.handler,
                variant: n.variant,
                _validated: (),
            })
            .collect();
        Ok(ServiceSpec {
            crate_ident: crate_name.replace('-', "_"),
            proto_file: proto_package.replace('.', "_"),
            service_rust_mod: names::service_server_mod(&proto_service),
            service_trait: names::service_trait(&proto_service),
            crate_name,
            proto_package,
            proto_service,
            http_port: input.http_port,
            grpc_port: input.grpc_port,
            grpc_host,
            methods,
            upstreams: check_upstreams(input.upstreams)?,
            _validated: (),
        })
    }
}

/// Tags recorded in a manifest: one per method, unique, and valid oneof
/// field numbers that do not clash with `task_id = 1` and `method = 2`.
fn check_tags(tags: &[u32], methods: usize) -> NameResult<Vec<u32>> {
    if tags.len() != methods {
        return Err(InvalidName::new(
            "tags",
            format!("{tags:?}"),
            "need exactly one LastResult tag per method",
        ));
    }
    for (i, tag) in tags.iter().enumerate() {
        let reserved = (19_000..=19_999).contains(tag);
        if *tag < FIRST_METHOD_TAG || *tag > 536_870_911 || reserved || tags[..i].contains(tag) {
            return Err(InvalidName::new(
                "tag",
                tag.to_string(),
                "must be a unique protobuf field number of at least 3 (1 and 2 are task_id and method)",
            ));
        }
    }
    Ok(tags.to_vec())
}

/// Upstream names are unique snake identifiers (they name a folder and a
/// module), and their files stay inside their folder.
fn check_upstreams(upstreams: Vec<UpstreamSpec>) -> NameResult<Vec<UpstreamSpec>> {
    for (i, upstream) in upstreams.iter().enumerate() {
        names::upstream_name(&upstream.name)?;
        if upstreams[..i].iter().any(|u| u.name == upstream.name) {
            return Err(InvalidName::new(
                "upstream name",
                upstream.name.clone(),
                "is already the name of another upstream of this project; pass --name",
            ));
        }
        for file in upstream.files.iter().chain(std::iter::once(&upstream.file)) {
            let inside = !file.is_empty()
                && std::path::Path::new(file)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(InvalidName::new(
                    "upstream file",
                    file.clone(),
                    "must be a relative path inside proto/upstream/<name>/",
                ));
            }
            // build.rs lists the files in a Rust string, one per line.
            if file
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
            {
                return Err(InvalidName::new(
                    "upstream file",
                    file.clone(),
                    "must not contain quotes, backslashes or control characters",
                ));
            }
        }
    }
    Ok(upstreams)
}

/// The two ports must differ unless one of them is 0 (any free port).
pub fn check_ports(http_port: u16, grpc_port: u16) -> NameResult<()> {
    if http_port != 0 && http_port == grpc_port {
        return Err(InvalidName::new(
            "grpc port",
            grpc_port.to_string(),
            "must differ from the http port",
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The input of a `demo-svc` with `methods` and every other default.
    pub(crate) fn input(methods: &[(&str, MethodKind)]) -> SpecInput {
        SpecInput {
            crate_name: "demo-svc".into(),
            methods: methods.iter().map(|(m, k)| (m.to_string(), *k)).collect(),
            http_port: 8080,
            grpc_port: 50051,
            grpc_host: None,
            proto_package: None,
            proto_service: None,
            tags: None,
            upstreams: Vec::new(),
        }
    }

    #[test]
    fn defaults_and_tags() {
        let spec = ServiceSpec::new(input(&[
            ("train_model", MethodKind::Long),
            ("ExportONNX", MethodKind::Quick),
        ]))
        .unwrap();
        assert_eq!(spec.crate_ident, "demo_svc");
        assert_eq!(spec.proto_package, "demo_svc");
        assert_eq!(spec.proto_file, "demo_svc");
        assert_eq!(spec.proto_service, "DemoSvc");
        assert_eq!(spec.service_rust_mod, "demo_svc_server");
        assert_eq!(spec.service_trait, "DemoSvc");
        assert_eq!(spec.grpc_host, "demo-svc");
        assert_eq!(spec.methods[0].name, "TrainModel");
        assert_eq!(spec.methods[0].tag, 3);
        assert_eq!(spec.methods[1].tag, 4);
        assert_eq!(spec.methods[1].variant, "ExportOnnx");
        assert_eq!(spec.methods[1].kind, MethodKind::Quick);
    }

    #[test]
    fn overrides() {
        let mut i = input(&[("Process", MethodKind::Long)]);
        i.proto_package = Some("acme.pipeline.v1".into());
        i.proto_service = Some("PipelineSVC".into());
        i.grpc_host = Some("svc.local".into());
        let spec = ServiceSpec::new(i).unwrap();
        assert_eq!(spec.proto_file, "acme_pipeline_v1");
        assert_eq!(spec.service_trait, "PipelineSvc");
        assert_eq!(spec.service_rust_mod, "pipeline_svc_server");
        assert_eq!(spec.grpc_host, "svc.local");
    }

    #[test]
    fn rejects() {
        let mut i = input(&[("Foo", MethodKind::Long)]);
        i.proto_service = Some("FooResponse".into());
        assert!(ServiceSpec::new(i).is_err());
        let mut i = input(&[("Foo", MethodKind::Long)]);
        i.grpc_port = 8080;
        assert!(ServiceSpec::new(i)
            .unwrap_err()
            .to_string()
            .contains("differ"));
        assert!(ServiceSpec::new(input(&[])).is_err());
    }

    #[test]
    fn a_crate_name_too_long_for_a_host_label_asks_for_a_grpc_host() {
        let mut i = input(&[("Process", MethodKind::Long)]);
        i.crate_name = "a".repeat(64);
        let err = ServiceSpec::new(i.clone()).unwrap_err().to_string();
        assert!(err.contains("pass --grpc-host"), "{err}");
        i.grpc_host = Some("svc.local".into());
        assert!(ServiceSpec::new(i).is_ok());
    }

    #[test]
    fn serialises_kind_lowercase() {
        let spec = ServiceSpec::new(input(&[("Process", MethodKind::Quick)])).unwrap();
        let v = tera::Context::from_serialize(&spec).unwrap().into_json();
        assert_eq!(v["methods"][0]["kind"], "quick");
        assert_eq!(v["crate_name"], "demo-svc");
        assert!(v.get("_validated").is_none());
    }
}
