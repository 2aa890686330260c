//! What a request is known to be while the gateway handles it: what events, logs and response
//! templates are made from.

use std::net::IpAddr;

use bytes::Bytes;
use http::Request;

use crate::spec::ApiSpec;

/// What a request is known to be while it is handled, for events, logs and templates.
pub(crate) struct Context<'a> {
    pub spec: &'a ApiSpec,
    pub request: &'a Request<Bytes>,
    pub source_ip: IpAddr,
    pub request_id: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    pub resource: Option<String>,
    pub path_parameters: Vec<(String, String)>,
    pub principal_id: Option<String>,
}

impl Context<'_> {
    /// The first value of a header, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers().get(name).and_then(|v| v.to_str().ok())
    }
}
