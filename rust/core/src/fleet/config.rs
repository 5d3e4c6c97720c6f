//! A fleet's configuration: where its Redis is (the URL's password never
//! shown) and how this replica behaves.

use std::fmt;
use std::time::Duration;

use super::{DEFAULT_CLAIM_TTL, MIN_CLAIM_TTL};
use crate::{Error, Result};

/// What a replica does with a keyed tick while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUnavailable {
    /// Skip it (no replica can know it is its own to run).
    Skip,
    /// Run it here (every replica that cannot reach Redis runs it).
    Run,
}

/// A fleet as configured: where its Redis is and how this replica behaves.
/// Its `Debug` (like every message of this module) shows the URL without its
/// password.
#[derive(Clone)]
pub struct FleetConfig {
    pub(super) url: String,
    pub(super) redacted: String,
    password: Option<String>,
    replica: Option<String>,
    pub(super) claim_ttl: Duration,
    pub(super) on_unavailable: OnUnavailable,
}

impl FleetConfig {
    /// Check `url` (a `redis://` or `rediss://` URL) and the options. Errors
    /// never quote the URL's password.
    pub fn new(
        url: &str,
        replica: Option<String>,
        claim_ttl: Option<Duration>,
        on_unavailable: OnUnavailable,
    ) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::InvalidArgument(format!("url is not a valid redis:// URL ({e})"))
        })?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(Error::InvalidArgument(format!(
                "url must start with redis:// or rediss://, not {}://",
                parsed.scheme()
            )));
        }
        // As written in the URL (percent-encoded): the decoded form is scrubbed too.
        let password = parsed.password().map(str::to_owned);
        let mut shown = parsed.clone();
        if password.is_some() {
            let _ = shown.set_password(Some("***"));
        }
        let config = Self {
            url: url.to_owned(),
            redacted: shown.to_string(),
            password,
            replica,
            claim_ttl: claim_ttl.unwrap_or(DEFAULT_CLAIM_TTL),
            on_unavailable,
        };
        if config.claim_ttl < MIN_CLAIM_TTL {
            return Err(Error::InvalidArgument(format!(
                "claim_ttl must be at least 1 second (claims are made up to 0.1 s ahead, and \
                 the replicas' clocks must agree within half of it), not {:?}",
                config.claim_ttl
            )));
        }
        redis::Client::open(config.url.as_str()).map_err(|e| {
            Error::InvalidArgument(format!(
                "url is not a usable Redis URL: {}",
                config.scrub(&e)
            ))
        })?;
        Ok(config)
    }

    /// The URL with its password (if any) shown as `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// This replica's name as given (`None`: the bindings name it).
    pub fn replica(&self) -> Option<&str> {
        self.replica.as_deref()
    }

    pub fn claim_ttl(&self) -> Duration {
        self.claim_ttl
    }

    pub fn on_unavailable(&self) -> OnUnavailable {
        self.on_unavailable
    }

    /// `error`'s text with the password, if it appears, replaced by `***`.
    pub(super) fn scrub(&self, error: &dyn fmt::Display) -> String {
        let mut text = error.to_string();
        if let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) {
            text = text.replace(password, "***");
            let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
            if !decoded.is_empty() {
                text = text.replace(&*decoded, "***");
            }
        }
        text
    }
}

impl fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetConfig")
            .field("url", &self.redacted)
            .field("replica", &self.replica)
            .field("claim_ttl", &self.claim_ttl)
            .field("on_unavailable", &self.on_unavailable)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let config = FleetConfig::new(
            "redis://user:s3cret-pw@localhost:6379/0",
            None,
            None,
            OnUnavailable::Skip,
        )
        .unwrap();
        assert_eq!(config.redacted_url(), "redis://user:***@localhost:6379/0");
        assert!(!format!("{config:?}").contains("s3cret-pw"));
        assert_eq!(config.scrub(&"auth s3cret-pw failed"), "auth *** failed");
        let encoded = FleetConfig::new(
            "redis://:p%40ss@localhost/0",
            None,
            None,
            OnUnavailable::Skip,
        )
        .unwrap();
        assert_eq!(encoded.scrub(&"p%40ss or p@ss"), "*** or ***");
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for url in ["http://:pw1@host", "not a url pw1", "redis://:pw1@[::1"] {
            let error = FleetConfig::new(url, None, None, OnUnavailable::Skip)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("url "), "{error}");
            assert!(!error.contains("pw1"), "{error}");
        }
    }
}
