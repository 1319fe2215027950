//! A service for large transfers, used as producer (A) and consumer (B):
//! `Make` returns `size` bytes drawn from `seed`; `Digest` fetches its
//! input as a `MakeResponse` with `ctx.fetch` and returns a checksum of the
//! bytes, their length and how long the fetch took. (A service may consume
//! another instance of its own kind: its own proto is indexed.)

use std::sync::LazyLock;
use std::time::Instant;

use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet, OneofDescriptorProto};
use serde_json::json;
use svcgen_runtime::testing::{poll_id, TestService};
use svcgen_runtime::{
    BoxError, Config, DataReference, Definition, HandlerError, MethodKind, Methods, TaskContext,
};

use super::{field, message, proto_file};

/// The rpc of `Make`'s results.
pub const MAKE: &str = "Make";
/// The rpc of `Digest`'s results.
pub const DIGEST: &str = "Digest";

/// `message MakeResponse { bytes data = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct MakeResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

impl prost::Name for MakeResponse {
    const NAME: &'static str = "MakeResponse";
    const PACKAGE: &'static str = "blob.v1";
}

/// `MakeResponse` with its `bytes` field as [`Bytes`](prost::bytes::Bytes)
/// (prost-build's `.bytes(["."])`): decoded as a slice of the fetched
/// buffer, not a copy.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MakeResponseBytes {
    #[prost(bytes = "bytes", tag = "1")]
    pub data: prost::bytes::Bytes,
}

impl prost::Name for MakeResponseBytes {
    const NAME: &'static str = "MakeResponse";
    const PACKAGE: &'static str = "blob.v1";
}

/// `message DigestResponse { uint64 checksum = 1; uint64 length = 2; uint64 fetch_micros = 3; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct DigestResponse {
    #[prost(uint64, tag = "1")]
    pub checksum: u64,
    #[prost(uint64, tag = "2")]
    pub length: u64,
    /// How long `ctx.fetch` took, in microseconds.
    #[prost(uint64, tag = "3")]
    pub fetch_micros: u64,
}

impl prost::Name for DigestResponse {
    const NAME: &'static str = "DigestResponse";
    const PACKAGE: &'static str = "blob.v1";
}

/// The `result` oneof of the blob service's `LastResult`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum BlobOutput {
    #[prost(message, tag = "3")]
    Make(MakeResponse),
    #[prost(message, tag = "4")]
    Digest(DigestResponse),
}

/// The blob service.
pub struct Blob;

impl Definition for Blob {
    type State = ();
    type Output = BlobOutput;
    const GRPC_SERVICE: &'static str = "blob.v1.Blob";
    const FILE_DESCRIPTOR_SET: &'static [u8] = &[];
    const DEFAULT_HTTP_PORT: u16 = 8080;
    const DEFAULT_GRPC_PORT: u16 = 50051;
    const DEFAULT_GRPC_HOST: &'static str = "blob";

    fn file_descriptor_set() -> &'static [u8] {
        static SET: LazyLock<Vec<u8>> = LazyLock::new(|| blob_proto().encode_to_vec());
        &SET
    }

    fn methods() -> Methods<Self> {
        let mut methods = Methods::new();
        methods.add(MAKE, MethodKind::Long, |ctx| async move {
            run_make(ctx).await.map(BlobOutput::Make)
        });
        methods.add(DIGEST, MethodKind::Long, |ctx| async move {
            run_digest(ctx).await.map(BlobOutput::Digest)
        });
        methods
    }

    fn rpc_of(output: &BlobOutput) -> &'static str {
        match output {
            BlobOutput::Make(_) => MAKE,
            BlobOutput::Digest(_) => DIGEST,
        }
    }

    fn encode(output: &BlobOutput, buf: &mut Vec<u8>) {
        output.encode(buf)
    }

    async fn init_state(_config: &Config) -> Result<(), BoxError> {
        Ok(())
    }
}

/// `size` bytes (a parameter, default 1 KiB) of the pattern of `seed`.
async fn run_make(ctx: TaskContext<()>) -> Result<MakeResponse, HandlerError> {
    let size: usize = ctx.parameter("size")?.unwrap_or(1024);
    let seed: u64 = ctx.parameter("seed")?.unwrap_or(0);
    let data = tokio::task::spawn_blocking(move || pattern(seed, size)).await?;
    Ok(MakeResponse { data })
}

/// The first input, fetched as a `MakeResponse` (a [`MakeResponseBytes`]
/// when the parameter `bytes_field` is true): its checksum and length.
async fn run_digest(ctx: TaskContext<()>) -> Result<DigestResponse, HandlerError> {
    let input = ctx
        .inputs()
        .first()
        .ok_or_else(|| HandlerError::new("no input"))?;
    let started = Instant::now();
    let data: prost::bytes::Bytes = if ctx.parameter("bytes_field")?.unwrap_or(false) {
        ctx.fetch::<MakeResponseBytes>(input).await?.data
    } else {
        ctx.fetch::<MakeResponse>(input).await?.data.into()
    };
    let fetch_micros = started.elapsed().as_micros() as u64;
    let length = data.len() as u64;
    let checksum = tokio::task::spawn_blocking(move || checksum(&data)).await?;
    Ok(DigestResponse {
        checksum,
        length,
        fetch_micros,
    })
}

/// Runs `Make` of `size` bytes from `seed` on `producer`; its output
/// reference.
pub async fn make(producer: &TestService, seed: u64, size: usize) -> DataReference {
    let made = producer
        .run_to_completion(MAKE, json!({"seed": seed, "size": size}))
        .await;
    producer.output_reference(&made).await
}

/// Runs `Digest` of `input` on `consumer`: the digest, or the task's error.
pub async fn digest(
    consumer: &TestService,
    input: &DataReference,
) -> Result<DigestResponse, String> {
    digest_with(consumer, input, json!({})).await
}

/// Runs `Digest` of `input` on `consumer` with `parameters`.
pub async fn digest_with(
    consumer: &TestService,
    input: &DataReference,
    parameters: serde_json::Value,
) -> Result<DigestResponse, String> {
    let answer = consumer
        .execute_with_inputs(DIGEST, std::slice::from_ref(input), parameters)
        .await;
    let id = poll_id(&answer);
    let done = consumer.wait_until_done(&id).await;
    if done["status"] != "complete" {
        return Err(done["error"].as_str().unwrap_or_default().to_string());
    }
    Ok(consumer
        .fetch::<DigestResponse>(DIGEST, &id)
        .await
        .expect("the digest"))
}

/// The `i`th word of the pattern of `seed` (splitmix64).
fn word(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `len` bytes of the pattern of `seed`: its words, little-endian.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0_u8; len];
    let mut words = data.chunks_exact_mut(8);
    let mut i = 0;
    for chunk in &mut words {
        chunk.copy_from_slice(&word(seed, i).to_le_bytes());
        i += 1;
    }
    let tail = words.into_remainder();
    let last = word(seed, i).to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
    data
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over little-endian 64-bit words (the tail byte by byte), then
/// the length: order-sensitive, so a piece out of place changes it.
pub fn checksum(data: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    let mut words = data.chunks_exact(8);
    for chunk in &mut words {
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(bytes)).wrapping_mul(FNV_PRIME);
    }
    for byte in words.remainder() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME);
    }
    (hash ^ data.len() as u64).wrapping_mul(FNV_PRIME)
}

/// [`checksum`] of [`pattern`]`(seed, len)`, computed from the words
/// without the bytes.
pub fn expected_checksum(seed: u64, len: usize) -> u64 {
    let mut hash = FNV_OFFSET;
    let words = (len / 8) as u64;
    for i in 0..words {
        hash = (hash ^ word(seed, i)).wrapping_mul(FNV_PRIME);
    }
    let last = word(seed, words).to_le_bytes();
    for byte in &last[..len % 8] {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME);
    }
    (hash ^ len as u64).wrapping_mul(FNV_PRIME)
}

/// The blob service's proto:
///
/// ```proto
/// package blob.v1;
/// service Blob {
///   rpc Make(MakeRequest) returns (MakeResponse);
///   rpc Digest(DigestRequest) returns (DigestResponse);
///   rpc GetLastResult(Empty) returns (LastResult);
/// }
/// message MakeResponse { bytes data = 1; }
/// message DigestResponse { uint64 checksum = 1; uint64 length = 2; uint64 fetch_micros = 3; }
/// message LastResult {
///   string task_id = 1;
///   string method = 2;
///   oneof result { MakeResponse make = 3; DigestResponse digest = 4; }
/// }
/// ```
pub fn blob_proto() -> FileDescriptorSet {
    let case = |name: &str, number: i32, type_name: &str| FieldDescriptorProto {
        oneof_index: Some(0),
        ..field(name, number, Type::Message, Some(type_name))
    };
    let last_result = DescriptorProto {
        oneof_decl: vec![OneofDescriptorProto {
            name: Some("result".to_string()),
            options: None,
        }],
        ..message(
            "LastResult",
            vec![
                field("task_id", 1, Type::String, None),
                field("method", 2, Type::String, None),
                case("make", 3, ".blob.v1.MakeResponse"),
                case("digest", 4, ".blob.v1.DigestResponse"),
            ],
        )
    };
    proto_file(
        "blob.v1",
        "Blob",
        &[
            (MAKE, "MakeRequest", "MakeResponse"),
            (DIGEST, "DigestRequest", "DigestResponse"),
            ("GetLastResult", "Empty", "LastResult"),
        ],
        vec![
            message("MakeRequest", vec![]),
            message("MakeResponse", vec![field("data", 1, Type::Bytes, None)]),
            message("DigestRequest", vec![]),
            message(
                "DigestResponse",
                vec![
                    field("checksum", 1, Type::Uint64, None),
                    field("length", 2, Type::Uint64, None),
                    field("fetch_micros", 3, Type::Uint64, None),
                ],
            ),
            message("Empty", vec![]),
            last_result,
        ],
    )
}
