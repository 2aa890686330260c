//! Which browser origins may read the answers (`CORS_ALLOWED_ORIGINS`).

use crate::config::{ConfigError, Env, Source, lookup};

/// Which browser origins may read responses (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    /// `CORS_ALLOWED_ORIGINS`, default none: comma-separated origins such as
    /// `https://app.example.com`, or `*` for any origin.
    pub allowed_origins: Vec<String>,
}

impl CorsConfig {
    /// Whether `origin` is one of the configured origins by name (`*` does not count).
    pub fn allows_exactly(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o != "*" && o.eq_ignore_ascii_case(origin))
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let var = "CORS_ALLOWED_ORIGINS";
        let allowed_origins: Vec<String> = lookup(src, var)
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &allowed_origins {
            let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
            if origin != "*" && (!scheme_ok || origin.matches('/').count() != 2) {
                return Err(ConfigError::Invalid {
                    var,
                    reason: format!("{origin:?} is not an origin like https://app.example.com"),
                });
            }
        }
        Ok(Self { allowed_origins })
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn cors_origins_are_parsed_and_checked() {
        let c = CorsConfig::from_source(&source(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com/, http://localhost:5173",
        )]))
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        let err =
            CorsConfig::from_source(&source(&[("CORS_ALLOWED_ORIGINS", "app.example.com")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "CORS_ALLOWED_ORIGINS",
                ..
            }
        ));
    }
}
