//! `local-api`: the REST API of a SAM template served on 127.0.0.1, as API Gateway would run
//! it, in front of the functions that `cargo lambda watch` serves through the Lambda Invoke
//! API. Routes, Lambda TOKEN authorizers (with their cache and `ValidationExpression`), REST
//! proxy events, `Cors` preflights and `GatewayResponses` are emulated; see docs/local.md,
//! "What the local API emulates and what it does not".

pub mod authorizer;
pub mod context;
pub mod gateway;
pub mod lambda;
pub mod proxy;
pub mod responses;
pub mod router;
pub mod server;
pub mod spec;
pub mod template;

pub use gateway::Gateway;
pub use lambda::LambdaClient;
pub use server::serve;
pub use spec::{ApiSpec, Options};
