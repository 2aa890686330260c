//! How settings are read: from the environment once at cold start, through a [`Source`] that
//! tests can replace, with one error that names the variable. Each domain's settings live beside
//! it (`claims::TokenSettings`, `password::PasswordConfig`, `session::SessionConfig`,
//! `throttle::LoginThrottleConfig`, `store::StoreConfig`, `http::CorsConfig`, ...).

/// A configuration error; the message names the variable and never echoes a secret value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} is not set")]
    Missing { var: &'static str },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Where configuration values come from: the process environment, or a map in tests.
pub trait Source {
    fn get(&self, var: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Source for F {
    fn get(&self, var: &str) -> Option<String> {
        self(var)
    }
}

/// A set but empty variable counts as unset, so `VAR=` in an env file falls back to the default.
pub(crate) fn lookup(src: &dyn Source, var: &'static str) -> Option<String> {
    src.get(var).filter(|v| !v.trim().is_empty())
}

/// A [`Source`] holding exactly `vars`, for tests.
#[cfg(test)]
pub(crate) fn test_source(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k: &str| map.get(k).cloned()
}

pub(crate) fn required(src: &dyn Source, var: &'static str) -> Result<String, ConfigError> {
    lookup(src, var).ok_or(ConfigError::Missing { var })
}

/// An integer in `min..=max`, or `default` when unset.
pub(crate) fn int_in_range(
    src: &dyn Source,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = lookup(src, var) else {
        return Ok(default);
    };
    let value: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        var,
        reason: format!("expected a whole number from {min} to {max}, got {raw:?}"),
    })?;
    if !(min..=max).contains(&value) {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("must be from {min} to {max}, got {value}"),
        });
    }
    Ok(value)
}
