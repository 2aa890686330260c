//! Matching a request path and method to a route as API Gateway does: the most specific
//! resource first (literal segments over `{var}` over `{proxy+}`), then its method or `ANY`.

use crate::spec::{ApiSpec, Route, Segment};

/// Path parameter names and values, in the resource's order.
pub type PathParameters = Vec<(String, String)>;

/// Per-segment specificity: 2 literal, 1 `{var}`, 0 `{proxy+}`; compared in order.
type Rank = Vec<u8>;

/// What a request matched.
#[derive(Debug)]
pub enum Match<'a> {
    Route {
        route: &'a Route,
        path_parameters: PathParameters,
    },
    /// An `OPTIONS` request on a resource without an `OPTIONS` method, answered from `Cors`.
    Preflight {
        resource: &'a str,
        /// The resource's methods, for `Access-Control-Allow-Methods`.
        methods: Vec<String>,
        path_parameters: PathParameters,
    },
    /// No resource, or no such method on it: API Gateway's 403 "Missing Authentication Token".
    NotFound,
}

/// Every method `ANY` stands for, in `Access-Control-Allow-Methods`.
const ANY_METHODS: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// Finds the route for `method` on `path` (already percent-decoded, without the query).
pub fn find<'a>(spec: &'a ApiSpec, method: &str, path: &str) -> Match<'a> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    // API Gateway serves /users/ as /users.
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };

    let mut best: Option<(Rank, &str, PathParameters)> = None;
    for route in &spec.routes {
        if best
            .as_ref()
            .is_some_and(|(_, resource, _)| *resource == route.resource)
        {
            continue;
        }
        if let Some((rank, parameters)) = match_segments(&route.segments, &parts)
            && best.as_ref().is_none_or(|(best_rank, _, _)| rank > *best_rank)
        {
            best = Some((rank, &route.resource, parameters));
        }
    }
    let Some((_, resource, path_parameters)) = best else {
        return Match::NotFound;
    };
    let on_resource = || spec.routes.iter().filter(|r| r.resource == resource);
    let exact = on_resource().find(|r| r.method == method);
    // SAM's Cors adds an OPTIONS method to every resource without one, and a method defined
    // on a resource wins over its ANY.
    let preflight = method == "OPTIONS" && spec.cors.is_some();
    let route = exact.or_else(|| on_resource().find(|r| r.method == "ANY" && !preflight));
    match route {
        Some(route) => Match::Route {
            route,
            path_parameters,
        },
        None if preflight => {
            let mut methods: Vec<String> = on_resource()
                .flat_map(|r| match r.method.as_str() {
                    "ANY" => ANY_METHODS.iter().map(|m| (*m).to_owned()).collect(),
                    m => vec![m.to_owned()],
                })
                .chain(["OPTIONS".to_owned()])
                .collect();
            methods.sort();
            methods.dedup();
            Match::Preflight {
                resource,
                methods,
                path_parameters,
            }
        }
        None => Match::NotFound,
    }
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
