//! The state both servers share: configuration, methods, tasks, and the
//! project's shared state.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::auth::ApiKey;
use crate::config::Config;
use crate::definition::BoundMethods;
use crate::tasks::TaskStore;
use crate::upstream::Upstreams;
use crate::wire::DataReference;

pub(crate) struct App {
    pub(crate) config: Config,
    /// `SERVICE_API_KEY`, prepared once for both ports' checks.
    pub(crate) key: Option<Arc<ApiKey>>,
    pub(crate) methods: BoundMethods,
    /// The project's gRPC service, qualified: `demo_svc.DemoSvc`.
    pub(crate) grpc_service: &'static str,
    /// Its encoded descriptor set, served by reflection.
    pub(crate) file_descriptor_set: &'static [u8],
    pub(crate) store: Arc<TaskStore>,
    /// `GRPC_HOST:port` put in output references (the bound port when 0 was asked).
    pub(crate) grpc_uri: String,
    /// Cancelled when a shutdown begins: execute starts nothing from then
    /// on (503), while running tasks get the grace period to finish.
    pub(crate) draining: CancellationToken,
    /// Cancelled when the grace period of a shutdown is over; every task's
    /// token is a child.
    pub(crate) shutdown: CancellationToken,
    /// What `TaskContext::fetch` uses: the descriptor index and channels.
    pub(crate) upstreams: Arc<Upstreams>,
    /// The runtime handlers run on: the service's main one, not the
    /// servers' (see [`crate::server`]).
    pub(crate) handlers: tokio::runtime::Handle,
}

impl App {
    /// The reference a downstream service follows to fetch a result over
    /// gRPC: call the rpc named by `format` with `x-task-id: metadata.task_id`.
    pub(crate) fn output_reference(&self, task_id: &str, rpc: &str) -> DataReference {
        let mut metadata = Map::new();
        metadata.insert("task_id".to_string(), Value::String(task_id.to_string()));
        DataReference {
            protocol: "grpc".to_string(),
            uri: self.grpc_uri.clone(),
            format: rpc.to_string(),
            schema_uri: None,
            size_bytes: None,
            checksum: None,
            metadata: Some(metadata),
        }
    }
}
