//! Webhooks (issue 18): what an owner registers, the events a project
//! reports, and the endpoint URL rules. Delivery timing is in
//! [`crate::webhook_retry`], the address rules in [`crate::outbound`].

use crate::ValidationError;

/// What every webhook secret starts with (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook's signing secret: `whsec_` and base64. Shown to its owner once,
/// stored sealed, never logged (its `Debug` says nothing of it).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A secret read back from where it was kept; the signer refuses one
    /// whose key does not decode.
    pub fn from_trusted(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The events a webhook may subscribe to, named as in the payload's
/// `type` and the `webhook-event` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    UpdatePublished,
    UpdateRepublished,
    /// A rollout changed, including a halt (0%) and an automatic halt.
    UpdateRolloutChanged,
    UpdateDeleted,
    UpdateRolledBackToEmbedded,
    ChannelChanged,
    /// Sent on request ("send test"), to check an endpoint.
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        Self::UpdatePublished,
        Self::UpdateRepublished,
        Self::UpdateRolloutChanged,
        Self::UpdateDeleted,
        Self::UpdateRolledBackToEmbedded,
        Self::ChannelChanged,
        Self::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdatePublished => "update.published",
            Self::UpdateRepublished => "update.republished",
            Self::UpdateRolloutChanged => "update.rolloutChanged",
            Self::UpdateDeleted => "update.deleted",
            Self::UpdateRolledBackToEmbedded => "update.rolledBackToEmbedded",
            Self::ChannelChanged => "channel.changed",
            Self::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|event| event.as_str() == raw.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|event| event.as_str()).collect();
                ValidationError::new(format!(
                    "{raw:?} is not an event; events are {}.",
                    known.join(", ")
                ))
            })
    }

    /// A subscription list: at least one event, each once (repeats are
    /// dropped), in a stable order.
    pub fn parse_list<'a>(
        raw: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Self>, ValidationError> {
        let mut events = raw
            .into_iter()
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_unstable();
        events.dedup();
        if events.is_empty() {
            return Err(ValidationError::new("events must name at least one event."));
        }
        Ok(events)
    }
}

/// A webhook endpoint: an absolute `https` (or `http`) URL with a host,
/// without credentials or a fragment, at most [`WebhookUrl::MAX_LEN`]
/// bytes. Whether its host may be reached is decided where it is resolved
/// (see [`crate::outbound`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        if raw.len() > Self::MAX_LEN {
            return Err(ValidationError::new(format!(
                "url must be at most {} characters.",
                Self::MAX_LEN
            )));
        }
        let parsed = url::Url::parse(raw)
            .map_err(|error| ValidationError::new(format!("url is not a URL: {error}.")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(ValidationError::new(
                "url must be an https:// (or http://) URL.",
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(ValidationError::new("url must name a host."));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ValidationError::new(
                "url must not carry a user name or password; the payload is signed instead.",
            ));
        }
        if parsed.fragment().is_some() {
            return Err(ValidationError::new("url must not have a #fragment."));
        }
        Ok(Self(parsed))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host as written (a name, or an IP address literal without
    /// brackets), for resolving.
    pub fn host(&self) -> &str {
        let host = self.0.host_str().unwrap_or_default();
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port, the scheme's default when none is written.
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(443)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_lists_are_deduplicated() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Ok(event));
        }
        let list =
            EventType::parse_list(["update.published", "channel.changed", "update.published"]);
        assert_eq!(
            list,
            Ok(vec![EventType::UpdatePublished, EventType::ChannelChanged])
        );
        assert!(EventType::parse_list([]).is_err());
        let unknown = EventType::parse("update.exploded");
        assert!(unknown.is_err_and(|error| error.0.contains("update.published")));
    }

    #[test]
    fn endpoint_urls_are_absolute_http_urls_without_credentials() {
        let url = WebhookUrl::parse(" https://hooks.example.com/ota?team=7 ");
        let url = url.map(|url| (url.as_str().to_owned(), url.host().to_owned(), url.port()));
        assert_eq!(
            url,
            Ok((
                "https://hooks.example.com/ota?team=7".to_owned(),
                "hooks.example.com".to_owned(),
                443
            ))
        );
        let v6 = WebhookUrl::parse("http://[2606:4700::1111]:8080/x");
        assert_eq!(
            v6.map(|url| (url.host().to_owned(), url.port())),
            Ok(("2606:4700::1111".to_owned(), 8080))
        );
        for bad in [
            "",
            "hooks.example.com/ota",
            "ftp://hooks.example.com/",
            "file:///etc/passwd",
            "https://user:secret@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(WebhookUrl::MAX_LEN));
        assert!(WebhookUrl::parse(&long).is_err());
    }
}
