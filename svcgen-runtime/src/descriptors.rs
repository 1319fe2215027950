//! The rpcs and messages of the protos a service knows (its own and its
//! upstreams'), indexed once at start-up so that
//! [`TaskContext::fetch`](crate::TaskContext::fetch) can tell which rpc
//! returns the type a handler asks for.

use std::collections::HashMap;

use prost::bytes::{Buf, Bytes};
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
use prost::Message;
use prost_types::FileDescriptorSet;

use crate::GET_LAST_RESULT;

/// Services with their rpcs, and messages with their fields, from any
/// number of encoded `FileDescriptorSet`s.
#[derive(Debug, Default)]
pub(crate) struct DescriptorIndex {
    /// In the order they were indexed; a service seen twice is kept once.
    services: Vec<Service>,
    /// Fully qualified name (`producer.v1.ProduceResponse`, no leading
    /// dot) to the message's fields.
    messages: HashMap<String, Vec<Field>>,
}

#[derive(Debug)]
struct Service {
    /// `producer.v1.Producer`.
    name: String,
    rpcs: Vec<Rpc>,
}

#[derive(Debug)]
struct Rpc {
    name: String,
    /// The response message, fully qualified without the leading dot.
    output: String,
}

#[derive(Debug)]
struct Field {
    number: u32,
    name: String,
    /// The field's message (or enum) type, fully qualified, no leading dot.
    type_name: String,
    /// The real oneof the field belongs to (not a proto3 `optional`).
    oneof: Option<i32>,
}

/// How to get a message of the wanted type from an upstream service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    /// Call the rpc: its response is the message.
    Rpc {
        /// The service, fully qualified.
        service: String,
        /// The rpc's name.
        rpc: String,
    },
    /// Call the service's `GetLastResult` and take the message out of the
    /// envelope's oneof.
    LastResult {
        /// The service, fully qualified.
        service: String,
        /// Where the message is in the answer.
        envelope: Envelope,
    },
}

impl Route {
    /// `<service>/<rpc>`: the rpc's name in messages and, with a leading
    /// `/`, its HTTP/2 path.
    pub(crate) fn rpc(&self) -> String {
        match self {
            Route::Rpc { service, rpc } => format!("{service}/{rpc}"),
            Route::LastResult { service, .. } => format!("{service}/{GET_LAST_RESULT}"),
        }
    }
}

/// A `LastResult`-style message: the oneof case that holds the wanted
/// type, and the other cases of the same oneof.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Envelope {
    /// The envelope message, fully qualified.
    pub(crate) message: String,
    /// The field number of the wanted case.
    pub(crate) wanted: u32,
    /// Every case of the oneof (the wanted one included): number, field
    /// name, type.
    pub(crate) cases: Vec<(u32, String, String)>,
}

impl Envelope {
    /// The encoded message of the wanted case in an encoded envelope, or
    /// why there is none (another case is set, or none).
    pub(crate) fn take(&self, mut envelope: Bytes) -> Result<Bytes, String> {
        let malformed = |err: prost::DecodeError| format!("{} is malformed: {err}", self.message);
        // The last case on the wire wins, as when prost decodes a oneof.
        let mut found: Option<(u32, Bytes)> = None;
        while envelope.has_remaining() {
            let (tag, wire_type) = decode_key(&mut envelope).map_err(malformed)?;
            let is_case = self.cases.iter().any(|(number, ..)| *number == tag);
            if is_case && wire_type == WireType::LengthDelimited {
                let len = decode_varint(&mut envelope).map_err(malformed)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= envelope.remaining())
                    .ok_or_else(|| format!("{} is truncated", self.message))?;
                found = Some((tag, envelope.split_to(len)));
            } else {
                skip_field(wire_type, tag, &mut envelope, DecodeContext::default())
                    .map_err(malformed)?;
            }
        }
        match found {
            Some((tag, message)) if tag == self.wanted => Ok(message),
            Some((tag, _)) => {
                let (name, type_name) = self.case(tag);
                let (_, wanted) = self.case(self.wanted);
                Err(format!(
                    "the upstream's latest result is a `{name}` ({type_name}), not a {wanted}"
                ))
            }
            None => Err(format!("the upstream's {} holds no result", self.message)),
        }
    }

    /// The field name and type of the case numbered `number`.
    fn case(&self, number: u32) -> (&str, &str) {
        self.cases
            .iter()
            .find(|(n, ..)| *n == number)
            .map_or(("?", "?"), |(_, name, type_name)| {
                (name.as_str(), type_name.as_str())
            })
    }
}

impl DescriptorIndex {
    /// Indexes the encoded `FileDescriptorSet`s, each given with the name it
    /// goes by in error messages. An empty slice is an empty set.
    pub(crate) fn from_encoded(sets: &[(&str, &[u8])]) -> Result<DescriptorIndex, String> {
        let mut index = DescriptorIndex::default();
        for (what, encoded) in sets {
            let set = FileDescriptorSet::decode(*encoded)
                .map_err(|err| format!("{what} is not an encoded FileDescriptorSet: {err}"))?;
            index.add(&set);
        }
        Ok(index)
    }

    /// Adds the services and messages of `set`; services and messages
    /// already indexed keep their first description.
    pub(crate) fn add(&mut self, set: &FileDescriptorSet) {
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                self.add_message(package, message);
            }
            for service in &file.service {
                let name = qualify(package, service.name());
                if self.services.iter().any(|known| known.name == name) {
                    continue;
                }
                let rpcs = service
                    .method
                    .iter()
                    .map(|method| Rpc {
                        name: method.name().to_string(),
                        output: absolute(method.output_type()),
                    })
                    .collect();
                self.services.push(Service { name, rpcs });
            }
        }
    }

    fn add_message(&mut self, scope: &str, message: &prost_types::DescriptorProto) {
        let name = qualify(scope, message.name());
        for nested in &message.nested_type {
            self.add_message(&name, nested);
        }
        let fields = message
            .field
            .iter()
            .map(|field| Field {
                number: u32::try_from(field.number()).unwrap_or(0),
                name: field.name().to_string(),
                type_name: absolute(field.type_name()),
                oneof: field.oneof_index.filter(|_| !field.proto3_optional()),
            })
            .collect();
        self.messages.entry(name).or_insert(fields);
    }

    /// How to fetch a `wanted` (a fully qualified message name) from a
    /// service whose output reference has `format` `format`:
    ///
    /// 1. an rpc named `format` that returns `wanted`;
    /// 2. when no rpc is named `format`, or `format` is `GetLastResult`:
    ///    a `GetLastResult` whose response has a oneof case of type `wanted`;
    /// 3. otherwise an error: the rpcs named `format` return other types,
    ///    or no indexed proto declares the rpc.
    pub(crate) fn resolve(&self, format: &str, wanted: &str) -> Result<Route, String> {
        let named: Vec<(&Service, &Rpc)> = self
            .services
            .iter()
            .flat_map(|service| service.rpcs.iter().map(move |rpc| (service, rpc)))
            .filter(|(_, rpc)| rpc.name == format)
            .collect();
        if let Some((service, rpc)) = named.iter().find(|(_, rpc)| rpc.output == wanted) {
            return Ok(Route::Rpc {
                service: service.name.clone(),
                rpc: rpc.name.clone(),
            });
        }
        if named.is_empty() || format == GET_LAST_RESULT {
            if let Some(route) = self.last_result_with(wanted) {
                return Ok(route);
            }
        }
        if !named.is_empty() {
            let returns: Vec<String> = named
                .iter()
                .map(|(service, rpc)| {
                    format!("{}/{} returns {}", service.name, rpc.name, rpc.output)
                })
                .collect();
            let hint = match format {
                GET_LAST_RESULT => {
                    format!(", and no {GET_LAST_RESULT} response has a {wanted} case")
                }
                _ => String::new(),
            };
            return Err(format!(
                "{}, not {wanted}, the type fetched{hint}",
                returns.join("; ")
            ));
        }
        Err(format!(
            "no upstream proto declares an rpc `{format}` returning {wanted} \
             (nor a {GET_LAST_RESULT} with a {wanted} case); \
             `svcgen add-upstream <proto>` adds the producer's proto"
        ))
    }

    /// The first service whose `GetLastResult` answers a message with a
    /// oneof case of type `wanted`.
    fn last_result_with(&self, wanted: &str) -> Option<Route> {
        self.services.iter().find_map(|service| {
            let rpc = service
                .rpcs
                .iter()
                .find(|rpc| rpc.name == GET_LAST_RESULT)?;
            let fields = self.messages.get(&rpc.output)?;
            let case = fields
                .iter()
                .find(|field| field.oneof.is_some() && field.type_name == wanted)?;
            let cases = fields
                .iter()
                .filter(|field| field.oneof == case.oneof)
                .map(|field| (field.number, field.name.clone(), field.type_name.clone()))
                .collect();
            Some(Route::LastResult {
                service: service.name.clone(),
                envelope: Envelope {
                    message: rpc.output.clone(),
                    wanted: case.number,
                    cases,
                },
            })
        })
    }

    /// How many services are indexed.
    #[cfg(test)]
    pub(crate) fn service_count(&self) -> usize {
        self.services.len()
    }
}

/// `name` in `scope` (a package or an enclosing message).
fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

/// A type name as descriptors write it (`.pkg.Msg`), without the leading dot.
fn absolute(type_name: &str) -> String {
    type_name.strip_prefix('.').unwrap_or(type_name).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, MethodDescriptorProto,
        OneofDescriptorProto, ServiceDescriptorProto,
    };

    fn field(
        name: &str,
        number: i32,
        type_name: Option<&str>,
        oneof: Option<i32>,
    ) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.to_string()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(match type_name {
                Some(_) => Type::Message as i32,
                None => Type::String as i32,
            }),
            type_name: type_name.map(str::to_string),
            oneof_index: oneof,
            ..FieldDescriptorProto::default()
        }
    }

    fn message(name: &str, fields: Vec<FieldDescriptorProto>, oneofs: &[&str]) -> DescriptorProto {
        DescriptorProto {
            name: Some(name.to_string()),
            field: fields,
            oneof_decl: oneofs
                .iter()
                .map(|name| OneofDescriptorProto {
                    name: Some(name.to_string()),
                    options: None,
                })
                .collect(),
            ..DescriptorProto::default()
        }
    }

    fn rpc(name: &str, input: &str, output: &str) -> MethodDescriptorProto {
        MethodDescriptorProto {
            name: Some(name.to_string()),
            input_type: Some(input.to_string()),
            output_type: Some(output.to_string()),
            ..MethodDescriptorProto::default()
        }
    }

    /// `producer.v1`: `Producer` with `Produce`, `Summarize` and
    /// `GetLastResult`, whose oneof has `produce = 3` and `summary = 4`.
    pub(crate) fn producer() -> FileDescriptorSet {
        let last_result = message(
            "LastResult",
            vec![
                field("task_id", 1, None, None),
                field("method", 2, None, None),
                field("produce", 3, Some(".producer.v1.ProduceResponse"), Some(0)),
                field("summary", 4, Some(".producer.v1.Summary"), Some(0)),
                // A proto3 `optional` message field is not a oneof case.
                FieldDescriptorProto {
                    proto3_optional: Some(true),
                    ..field("note", 5, Some(".producer.v1.Note"), Some(1))
                },
            ],
            &["result", "_note"],
        );
        let file = FileDescriptorProto {
            name: Some("producer.proto".to_string()),
            package: Some("producer.v1".to_string()),
            message_type: vec![
                message("Empty", vec![], &[]),
                message("ProduceResponse", vec![field("value", 1, None, None)], &[]),
                message("Summary", vec![field("text", 1, None, None)], &[]),
                message("Note", vec![], &[]),
                last_result,
            ],
            service: vec![ServiceDescriptorProto {
                name: Some("Producer".to_string()),
                method: vec![
                    rpc(
                        "Produce",
                        ".producer.v1.Empty",
                        ".producer.v1.ProduceResponse",
                    ),
                    rpc("Summarize", ".producer.v1.Empty", ".producer.v1.Summary"),
                    rpc(
                        "GetLastResult",
                        ".producer.v1.Empty",
                        ".producer.v1.LastResult",
                    ),
                ],
                options: None,
            }],
            syntax: Some("proto3".to_string()),
            ..FileDescriptorProto::default()
        };
        FileDescriptorSet { file: vec![file] }
    }

    fn index() -> DescriptorIndex {
        let mut index = DescriptorIndex::default();
        index.add(&producer());
        index
    }

    fn rpc_route(rpc: &str) -> Route {
        Route::Rpc {
            service: "producer.v1.Producer".to_string(),
            rpc: rpc.to_string(),
        }
    }

    #[test]
    fn the_rpc_named_by_format_that_returns_the_type_is_called() {
        let index = index();
        let route = index.resolve("Produce", "producer.v1.ProduceResponse");
        assert_eq!(route, Ok(rpc_route("Produce")));
        assert_eq!(rpc_route("Produce").rpc(), "producer.v1.Producer/Produce");
        let whole = index.resolve("GetLastResult", "producer.v1.LastResult");
        assert_eq!(whole, Ok(rpc_route("GetLastResult")), "the envelope itself");
    }

    #[test]
    fn an_rpc_that_returns_another_type_is_an_error_naming_both() {
        let err = index()
            .resolve("Summarize", "producer.v1.ProduceResponse")
            .expect_err("Summarize returns a Summary");
        assert!(
            err.contains("producer.v1.Producer/Summarize returns producer.v1.Summary")
                && err.contains("not producer.v1.ProduceResponse"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_rpc_or_get_last_result_falls_back_to_the_envelope_case() {
        let index = index();
        for format in ["produce_output", "GetLastResult"] {
            let Ok(Route::LastResult { service, envelope }) =
                index.resolve(format, "producer.v1.Summary")
            else {
                panic!("{format}: no envelope route");
            };
            assert_eq!(service, "producer.v1.Producer");
            assert_eq!(
                (envelope.message.as_str(), envelope.wanted),
                ("producer.v1.LastResult", 4)
            );
            let numbers: Vec<u32> = envelope.cases.iter().map(|case| case.0).collect();
            assert_eq!(
                numbers,
                [3, 4],
                "the cases of the oneof, not `optional` fields"
            );
        }
        let err = index
            .resolve("produce_output", "producer.v1.Note")
            .expect_err("a proto3 optional field is no case");
        assert!(err.contains("svcgen add-upstream"), "{err}");
    }

    #[test]
    fn an_rpc_no_proto_declares_names_the_rpc_the_type_and_the_fix() {
        let err = index()
            .resolve("Train", "trainer.v1.Model")
            .expect_err("nothing returns a Model");
        assert!(
            err.contains("`Train`")
                && err.contains("trainer.v1.Model")
                && err.contains("svcgen add-upstream <proto>"),
            "{err}"
        );
    }

    #[test]
    fn sets_are_merged_a_service_seen_twice_kept_once_and_bad_bytes_refused() {
        let encoded = producer().encode_to_vec();
        let index =
            DescriptorIndex::from_encoded(&[("OWN", &encoded), ("UP", &encoded), ("NONE", &[])])
                .expect("valid sets");
        assert_eq!(index.service_count(), 1);
        let err = DescriptorIndex::from_encoded(&[("UPSTREAM_FILE_DESCRIPTOR_SET", &[0xff, 0xff])])
            .expect_err("not a set");
        assert!(
            err.starts_with("UPSTREAM_FILE_DESCRIPTOR_SET is not"),
            "{err}"
        );
    }

    #[test]
    fn the_wanted_case_is_taken_out_of_the_envelope() {
        let Ok(Route::LastResult { envelope, .. }) =
            index().resolve("GetLastResult", "producer.v1.Summary")
        else {
            panic!("no envelope route");
        };
        let mut wanted = Vec::new();
        prost::encoding::string::encode(1, &"t.1".to_string(), &mut wanted);
        prost::encoding::string::encode(2, &"Summarize".to_string(), &mut wanted);
        prost::encoding::bytes::encode(4, &vec![0x0a, 0x01, b'x'], &mut wanted);
        let taken = envelope.take(Bytes::from(wanted)).expect("the summary");
        assert_eq!(&taken[..], &[0x0a, 0x01, b'x']);

        let mut other = Vec::new();
        prost::encoding::bytes::encode(3, &vec![0x0a, 0x00], &mut other);
        let err = envelope
            .take(Bytes::from(other))
            .expect_err("a produce result");
        assert_eq!(
            err,
            "the upstream's latest result is a `produce` (producer.v1.ProduceResponse), \
             not a producer.v1.Summary"
        );
        let err = envelope.take(Bytes::new()).expect_err("empty");
        assert!(err.contains("holds no result"), "{err}");
        let err = envelope
            .take(Bytes::from_static(&[0x22, 0x05, 0x01]))
            .expect_err("short");
        assert!(err.contains("truncated"), "{err}");
    }
}
