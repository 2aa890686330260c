//! Matching a request path and method to a route as API Gateway does: the most specific
//! resource first (literal segments over `{var}` over `{proxy+}`), then its method or `ANY`.

use crate::spec::{ApiSpec, Route, Segment};

/// Path parameter names and values, in the resource's order.
pub type PathParameters = Vec<(String, String)>;

/// Per-segment specificity: 2 literal, 1 `{var}`, 0 `{proxy+}`; compared in order.
type Rank = Vec<u8>;

/// The resource a request path matched.
#[derive(Debug)]
pub struct Found<'a> {
    pub resource: &'a str,
    pub path_parameters: PathParameters,
    /// `None`: the resource has no such method, API Gateway's 403 "Missing Authentication Token".
    pub target: Option<Target<'a>>,
}

/// What answers the request on the resource.
#[derive(Debug)]
pub enum Target<'a> {
    Route(&'a Route),
    /// An `OPTIONS` request on a resource without an `OPTIONS` method, answered from `Cors`
    /// with the resource's methods.
    Preflight(Vec<String>),
}

/// Every method `ANY` stands for, in `Access-Control-Allow-Methods`.
const ANY_METHODS: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// Finds the resource and route for `method` on `path` (percent-decoded, without the query);
/// `None` if no resource matches.
pub fn find<'a>(spec: &'a ApiSpec, method: &str, path: &str) -> Option<Found<'a>> {
    // API Gateway serves /users/ as /users.
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let parts: Vec<&str> = trimmed.split('/').filter(|_| !trimmed.is_empty()).collect();
    let matched = spec
        .routes
        .iter()
        .filter_map(|r| Some((match_segments(&r.segments, &parts)?, r)));
    let ((_, path_parameters), best) = matched.max_by(|(a, _), (b, _)| a.0.cmp(&b.0))?;
    let resource = best.resource.as_str();
    let on_resource = || spec.routes.iter().filter(|r| r.resource == resource);
    // SAM's Cors adds an OPTIONS method to every resource without one, and a method defined
    // on a resource wins over its ANY.
    let preflight = method == "OPTIONS" && spec.cors.is_some();
    let exact = on_resource().find(|r| r.method == method);
    let route = exact.or_else(|| on_resource().find(|r| r.method == "ANY" && !preflight));
    let target = match route {
        Some(route) => Some(Target::Route(route)),
        None if preflight => {
            let mut methods = vec!["OPTIONS".to_owned()];
            for route in on_resource() {
                match route.method.as_str() {
                    "ANY" => methods.extend(ANY_METHODS.map(str::to_owned)),
                    other => methods.push(other.to_owned()),
                }
            }
            methods.sort();
            methods.dedup();
            Some(Target::Preflight(methods))
        }
        None => None,
    };
    Some(Found {
        resource,
        path_parameters,
        target,
    })
}

/// The per-segment rank of a match (higher is more specific) and the path parameters.
fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<(Rank, PathParameters)> {
    let mut rank = Vec::with_capacity(segments.len());
    let mut parameters = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(literal) => {
                if parts.get(i) != Some(&literal.as_str()) {
                    return None;
                }
                rank.push(2);
            }
            Segment::Variable(name) => {
                let value = parts.get(i).filter(|p| !p.is_empty())?;
                parameters.push((name.clone(), (*value).to_owned()));
                rank.push(1);
            }
            Segment::Greedy(name) => {
                if i >= parts.len() {
                    return None;
                }
                parameters.push((name.clone(), parts[i..].join("/")));
                rank.push(0);
                return Some((rank, parameters));
            }
        }
    }
    (segments.len() == parts.len()).then_some((rank, parameters))
}
