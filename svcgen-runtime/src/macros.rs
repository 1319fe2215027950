//! [`service!`](crate::service): the one place a generated project
//! describes itself to the runtime.
//!
//! svcgen writes the invocation into the project's `src/svcgen.rs`. It is a
//! macro rather than a hand-expanded `impl` so that the table reads as a
//! table, and so that `cargo fmt` leaves it exactly as svcgen wrote it
//! whatever the length of the names in it (rustfmt does not reflow the
//! inside of a brace-delimited macro call).

/// Defines a unit struct and implements [`Definition`](crate::Definition)
/// for it from a table of the service's methods.
///
/// ```ignore
/// svcgen_runtime::service! {
///     /// This service, as the runtime sees it.
///     pub struct Service {
///         state: crate::state::State,
///         output: crate::proto::last_result::Result,
///         grpc_service: "demo_svc.DemoSvc",
///         file_descriptor_set: crate::proto::FILE_DESCRIPTOR_SET,
///         // Optional: the protos of the services this one consumes.
///         upstream_file_descriptor_set: crate::proto::UPSTREAM_FILE_DESCRIPTOR_SET,
///         default_http_port: 8080,
///         default_grpc_port: 50051,
///         default_grpc_host: "demo-svc",
///         methods: [
///             // name: kind => handler as the `output` variant it returns
///             "TrainModel": Long => crate::methods::train_model::train_model as TrainModel,
///             "ExportONNX": Quick => crate::methods::export_onnx::export_onnx as ExportOnnx,
///         ],
///     }
/// }
/// ```
///
/// Each handler is `async fn(TaskContext<State>) -> Result<R, HandlerError>`
/// where `R` is the response message that the `output` variant wraps; the
/// method's results are served by the rpc of the same name. `output` must
/// be a prost oneof enum (its inherent `encode` writes the oneof field).
///
/// `upstream_file_descriptor_set` is optional (without it the service has
/// no upstream protos); it sets
/// [`Definition::UPSTREAM_FILE_DESCRIPTOR_SET`](crate::Definition::UPSTREAM_FILE_DESCRIPTOR_SET),
/// where [`TaskContext::fetch`](crate::TaskContext::fetch) finds the rpcs of
/// the services this one consumes.
///
/// `upstreams: [producer, ...]` (optional, after `default_grpc_host`) is
/// what svcgen writes instead: the names of the upstreams whose protos the
/// project's `build.rs` compiled into `OUT_DIR/upstream/<name>/`. It
/// defines a module `upstreams` beside the struct, with one module per
/// upstream holding its messages and client (`upstreams::producer::<package
/// modules>::ProduceResponse`), and takes the upstream descriptor set from
/// `OUT_DIR/upstreams.bin`.
#[macro_export]
macro_rules! service {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            state: $state:ty,
            output: $output:ty,
            grpc_service: $grpc_service:literal,
            file_descriptor_set: $file_descriptor_set:expr,
            $(upstream_file_descriptor_set: $upstream_file_descriptor_set:expr,)?
            default_http_port: $http_port:literal,
            default_grpc_port: $grpc_port:literal,
            default_grpc_host: $grpc_host:literal,
            $(upstreams: [$($upstream:ident),* $(,)?],)?
            methods: [
                $($method:literal: $kind:ident => $handler:path as $variant:ident),+ $(,)?
            ] $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name;

        $(
            /// The messages and clients of the services this one consumes
            /// (`svcgen add-upstream`), one module per upstream.
            pub mod upstreams {
                $(
                    #[allow(clippy::all, missing_docs)]
                    pub mod $upstream {
                        include!(concat!(
                            env!("OUT_DIR"),
                            "/upstream/",
                            stringify!($upstream),
                            "/mod.rs"
                        ));
                    }
                )*
            }
        )?

        impl $crate::Definition for $name {
            type State = $state;
            type Output = $output;
            const GRPC_SERVICE: &'static str = $grpc_service;
            const FILE_DESCRIPTOR_SET: &'static [u8] = $file_descriptor_set;
            $(
                const UPSTREAM_FILE_DESCRIPTOR_SET: &'static [u8] =
                    $upstream_file_descriptor_set;
            )?
            $(
                const UPSTREAM_FILE_DESCRIPTOR_SET: &'static [u8] =
                    $crate::__upstream_file_descriptor_set!($($upstream)*);
            )?
            const DEFAULT_HTTP_PORT: u16 = $http_port;
            const DEFAULT_GRPC_PORT: u16 = $grpc_port;
            const DEFAULT_GRPC_HOST: &'static str = $grpc_host;

            fn methods() -> $crate::Methods<Self> {
                let mut methods = $crate::Methods::new();
                $(
                    methods.add($method, $crate::MethodKind::$kind, |ctx| async move {
                        $handler(ctx).await.map(<$output>::$variant)
                    });
                )+
                methods
            }

            fn rpc_of(output: &Self::Output) -> &'static str {
                type Output = $output;
                match output {
                    $(Output::$variant(_) => $method,)+
                }
            }

            fn encode(output: &Self::Output, buf: &mut ::std::vec::Vec<u8>) {
                output.encode(buf)
            }

            async fn init_state(
                config: &$crate::Config,
            ) -> ::std::result::Result<Self::State, $crate::BoxError> {
                <$state>::init(config).await
            }
        }
    };
}

/// The upstream descriptor set `build.rs` wrote, for [`service!`]'s
/// `upstreams` (its input only ties the expansion to that field).
#[doc(hidden)]
#[macro_export]
macro_rules! __upstream_file_descriptor_set {
    ($($upstream:ident)*) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/upstreams.bin"))
    };
}
