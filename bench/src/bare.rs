//! The reference server: bare hyper (HTTP/1.1, no router, no middleware)
//! answering every request with the same JSON body, on a tokio runtime of
//! as many worker threads as the generated service's server runtime. The
//! harness runs it as a child process (`svcgen-bench bare-hyper`) so its
//! CPU time is measured apart from the load client's.

use std::convert::Infallible;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Worker threads of the generated service's server runtime (see
/// `ServePlane` in svcgen-runtime/src/server.rs): the cores, at most 4.
pub fn server_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4))
}

/// Serves `body` as `application/json` on `127.0.0.1:0` until killed,
/// after printing `listening http_addr=<addr>` on stdout.
pub fn serve(body: String) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_threads())
        .enable_all()
        .build()
        .context("starting the bare hyper runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr().context("the bound address")?;
        println!("listening http_addr={addr}");
        let body = Bytes::from(body);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    eprintln!("bare hyper: accept failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                    let mut response = Response::new(Full::new(body.clone()));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
