//! The HTTP/1.1 server in front of the [`Gateway`]: one task per connection on a listener the
//! caller binds (127.0.0.1 by default), until the shutdown future completes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::gateway::{Gateway, GatewayError, Incoming, MAX_BODY_BYTES, Outgoing};

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
                    if let Err(error) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(%error, "connection closed with an error");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(gateway: &Gateway, request: Request<Body>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let incoming = Incoming {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: body.as_ref().cloned().unwrap_or_default(),
        source_ip: peer.ip().to_string(),
    };
    response(match body {
        Ok(_) => gateway.handle(incoming).await,
        // Over API Gateway's limit (or a broken upload).
        Err(_) => gateway.refuse(incoming, GatewayError::REQUEST_TOO_LARGE).await,
    })
}

fn response(outgoing: Outgoing) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(outgoing.body));
    *response.status_mut() =
        hyper::StatusCode::from_u16(outgoing.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    let headers = response.headers_mut();
    for (name, value) in outgoing.headers {
        match (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::warn!(header = %name, "dropped a response header that is not valid HTTP"),
        }
    }
    response
}
