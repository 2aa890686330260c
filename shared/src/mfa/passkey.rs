//! The WebAuthn relying party: its id and the origins passkey ceremonies may come from, read
//! and checked at cold start. `webauthn-rs` runs the ceremonies; this module only configures it.

use webauthn_rs::prelude::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::{ConfigError, Env, Source, lookup};

/// Where passkeys may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyConfig {
    /// `WEBAUTHN_RP_ID`, default the host of the first origin: the domain passkeys are bound
    /// to. It must be that host or a registrable suffix of it (WebAuthn §5.1.3 step 8).
    pub rp_id: String,
    /// `WEBAUTHN_ORIGINS`, comma-separated: the origins of the pages that run the ceremonies
    /// (the browser client's). Unset: passkeys are off, and their routes say so.
    pub origins: Vec<Url>,
    /// `WEBAUTHN_RP_NAME`, default `jwt-auth`: the name the browser shows.
    pub rp_name: String,
}

impl PasskeyConfig {
    /// The settings, or `None` when `WEBAUTHN_ORIGINS` is unset (passkeys off).
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = lookup(src, "WEBAUTHN_ORIGINS") else {
            return Ok(None);
        };
        let invalid = |var, reason: String| ConfigError::Invalid { var, reason };
        let origins = raw
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|origin| {
                let url = Url::parse(origin)
                    .map_err(|e| invalid("WEBAUTHN_ORIGINS", format!("{origin:?} is not a URL: {e}")))?;
                let secure = url.scheme() == "https" || url.host_str() == Some("localhost");
                if !secure || url.path() != "/" || url.query().is_some() {
                    return Err(invalid(
                        "WEBAUTHN_ORIGINS",
                        format!("{origin:?} must be an https origin (or http://localhost), no path"),
                    ));
                }
                Ok(url)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let first = origins
            .first()
            .and_then(|o| o.host_str())
            .ok_or_else(|| invalid("WEBAUTHN_ORIGINS", "names no origin".into()))?
            .to_owned();
        let config = Self {
            rp_id: lookup(src, "WEBAUTHN_RP_ID").unwrap_or(first),
            origins,
            rp_name: lookup(src, "WEBAUTHN_RP_NAME").unwrap_or_else(|| "jwt-auth".into()),
        };
        config.relying_party()?;
        Ok(Some(config))
    }

    /// The relying party; fails naming `WEBAUTHN_RP_ID` when an origin is not within it.
    pub fn relying_party(&self) -> Result<Webauthn, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            var: "WEBAUTHN_RP_ID",
            reason,
        };
        for origin in &self.origins {
            let host = origin.host_str().unwrap_or_default();
            if host != self.rp_id && !host.ends_with(&format!(".{}", self.rp_id)) {
                return Err(invalid(format!(
                    "{:?} is not the host of {origin} nor a parent domain of it",
                    self.rp_id
                )));
            }
        }
        let mut builder = WebauthnBuilder::new(&self.rp_id, &self.origins[0])
            .map_err(|e| invalid(e.to_string()))?
            .rp_name(&self.rp_name);
        for origin in &self.origins[1..] {
            builder = builder.append_allowed_origin(origin);
        }
        builder.build().map_err(|e| invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn passkeys_are_off_without_origins_and_the_rp_id_defaults_to_the_first_host() {
        assert_eq!(PasskeyConfig::from_source(&source(&[])).unwrap(), None);
        let config = PasskeyConfig::from_source(&source(&[(
            "WEBAUTHN_ORIGINS",
            "https://app.example.com, https://example.com",
        )]));
        let err = config.unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    var: "WEBAUTHN_RP_ID",
                    ..
                }
            ),
            "{err:?}"
        );
        let config = PasskeyConfig::from_source(&source(&[
            ("WEBAUTHN_ORIGINS", "https://app.example.com,https://example.com"),
            ("WEBAUTHN_RP_ID", "example.com"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.origins.len(), 2);
        let local = PasskeyConfig::from_source(&source(&[("WEBAUTHN_ORIGINS", "http://localhost:5173")]))
            .unwrap()
            .unwrap();
        assert_eq!(local.rp_id, "localhost");
    }

    #[test]
    fn an_origin_must_be_secure_and_bare() {
        for origin in ["http://example.com", "https://example.com/app", "not a url"] {
            let err = PasskeyConfig::from_source(&source(&[("WEBAUTHN_ORIGINS", origin)])).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        var: "WEBAUTHN_ORIGINS",
                        ..
                    }
                ),
                "{origin}: {err:?}"
            );
        }
    }
}
