//! The HTTP/1.1 server in front of the [`Gateway`]: one task per connection on a listener the
//! caller binds (127.0.0.1 by default), until the shutdown future completes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::responses::GatewayError;

/// API Gateway's largest request payload.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Serves `gateway` on `listener` until `shutdown` completes; connections already open are
/// dropped then.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        continue;
                    }
                };
                let gateway = gateway.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let gateway = gateway.clone();
                        async move { Ok::<_, Infallible>(handle(&gateway, request, peer).await) }
                    });
                    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection closed with an error");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(gateway: &Gateway, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // Over API Gateway's limit (or a broken upload): REQUEST_TOO_LARGE.
    let (body, refusal) = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(body) => (body.to_bytes(), None),
        Err(_) => (Bytes::new(), Some(GatewayError::RequestTooLarge)),
    };
    let request = Request::from_parts(parts, body);
    gateway.handle(request, peer.ip(), refusal).await.map(Full::new)
}
