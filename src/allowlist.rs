//! The optional allowlist of webhook source addresses (`ALLOWED_SOURCE_CIDRS`).
//!
//! Veriff publishes the addresses its webhooks come from. With a list set, a request whose
//! source address is outside it is refused (403) before any other work: its body is not
//! decoded and its signature not checked. The source address is the one from the Lambda
//! event's `requestContext` (`http.sourceIp` for a Function URL, `identity.sourceIp` for a
//! REST API), which AWS sets from the TCP connection: a header cannot forge it.
//!
//! An event without a source address is not a Function URL request (a direct `Invoke`,
//! say). With a list set it is refused too: an allowlist that let through whatever cannot
//! show its address would not bound anything. Pure: no I/O.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

/// Address ranges a webhook may come from, parsed once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAllowlist {
    ranges: Vec<IpNet>,
}

/// Why an `ALLOWED_SOURCE_CIDRS` value does not parse. Entries are counted from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    /// Two commas in a row, or a comma at either end.
    #[error("entry {0} is empty: separate CIDRs with single commas")]
    EmptyEntry(usize),
    /// Neither an address nor `address/prefix-length`.
    #[error(
        "entry {position} ({entry:?}) is not an IPv4 or IPv6 address or CIDR \
         (examples: 18.98.6.64/27, 52.19.226.239, 2001:db8::/32)"
    )]
    Invalid {
        /// Where in the list.
        position: usize,
        /// The entry as written.
        entry: String,
    },
    /// A CIDR with bits set after its prefix: almost always a typo for the network.
    #[error(
        "entry {position} ({entry:?}) has bits set after its prefix length: did you mean \
         {network}?"
    )]
    HostBitsSet {
        /// Where in the list.
        position: usize,
        /// The entry as written.
        entry: String,
        /// The network the entry lies in.
        network: IpNet,
    },
}

impl SourceAllowlist {
    /// Parses a comma-separated list of IPv4 and IPv6 CIDRs; a bare address is a range of
    /// one (`/32` or `/128`). The caller treats an empty value as "no list".
    pub fn parse(list: &str) -> Result<SourceAllowlist, AllowlistError> {
        let mut ranges = Vec::new();
        for (index, entry) in list.split(',').enumerate() {
            let position = index + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(AllowlistError::EmptyEntry(position));
            }
            let invalid = || AllowlistError::Invalid {
                position,
                entry: entry.chars().take(64).collect(),
            };
            let range = if entry.contains('/') {
                let range: IpNet = entry.parse().map_err(|_| invalid())?;
                if range.trunc() != range {
                    return Err(AllowlistError::HostBitsSet {
                        position,
                        entry: entry.to_string(),
                        network: range.trunc(),
                    });
                }
                range
            } else {
                IpNet::from(entry.parse::<IpAddr>().map_err(|_| invalid())?)
            };
            ranges.push(range);
        }
        Ok(SourceAllowlist { ranges })
    }

    /// Whether `address` lies in one of the ranges. An IPv4 address written as IPv6
    /// (`::ffff:a.b.c.d`) is compared as the IPv4 address it is.
    pub fn allows(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.ranges.iter().any(|range| range.contains(&address))
    }

    /// The ranges, in the order given.
    pub fn ranges(&self) -> &[IpNet] {
        &self.ranges
    }
}

/// Where a Lambda HTTP event says its request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceAddress {
    /// The address AWS recorded for the connection.
    Known(IpAddr),
    /// No `requestContext` source address: not a Function URL or API Gateway request.
    Missing,
    /// A source address field that is not an IP address (never logged: it could be
    /// anything).
    Malformed,
}

impl fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceAddress::Known(ip) => write!(f, "{ip}"),
            SourceAddress::Missing => f.write_str("missing"),
            SourceAddress::Malformed => f.write_str("malformed"),
        }
    }
}

/// Reads the source address of a Lambda HTTP event: `requestContext.http.sourceIp`
/// (Function URL, HTTP API) or `requestContext.identity.sourceIp` (REST API).
pub fn source_address(event: &Value) -> SourceAddress {
    let Some(context) = event.get("requestContext") else {
        return SourceAddress::Missing;
    };
    let field = context
        .get("http")
        .and_then(|http| http.get("sourceIp"))
        .or_else(|| context.get("identity").and_then(|id| id.get("sourceIp")));
    match field {
        None | Some(Value::Null) => SourceAddress::Missing,
        Some(Value::String(text)) => text
            .trim()
            .parse::<IpAddr>()
            .map_or(SourceAddress::Malformed, SourceAddress::Known),
        Some(_) => SourceAddress::Malformed,
    }
}

/// Veriff's published webhook source addresses (devdocs "Allowlisted URLs and IP
/// addresses", page dated 2026-02-19): US and EU zones, fixed addresses and floating
/// ranges. They can change: check Veriff's page before relying on them.
pub const VERIFF_PUBLISHED_SOURCES: &str = "100.20.120.34,52.25.243.218,54.148.105.103,\
54.218.205.80,18.98.6.64/27,3.42.137.128/27,3.42.136.96/27,34.254.42.181,34.242.213.89,\
52.19.226.239,3.251.215.160/27";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_inside_and_outside_ipv4_and_ipv6_ranges() {
        let list =
            SourceAllowlist::parse(" 18.98.6.64/27 , 52.19.226.239,2001:db8::/32, ::1").unwrap();
        assert_eq!(list.ranges().len(), 4);
        for inside in [
            "18.98.6.64",
            "18.98.6.95",
            "52.19.226.239",
            "2001:db8::1",
            "2001:db8:ffff:ffff::9",
            "::1",
            // An IPv4 address written as IPv6 is the IPv4 address.
            "::ffff:18.98.6.70",
        ] {
            assert!(list.allows(ip(inside)), "{inside} is inside");
        }
        for outside in [
            "18.98.6.63",
            "18.98.6.96",
            "52.19.226.238",
            "52.19.226.240",
            "2001:db9::1",
            "::2",
            "10.0.0.1",
            "::ffff:18.98.6.96",
        ] {
            assert!(!list.allows(ip(outside)), "{outside} is outside");
        }
    }

    #[test]
    fn a_bare_address_is_a_range_of_one_and_prefix_zero_allows_its_family() {
        let one = SourceAllowlist::parse("2001:db8::5").unwrap();
        assert_eq!(one.ranges()[0].prefix_len(), 128);
        assert!(one.allows(ip("2001:db8::5")) && !one.allows(ip("2001:db8::6")));
        let v4 = SourceAllowlist::parse("0.0.0.0/0").unwrap();
        assert!(v4.allows(ip("203.0.113.9")));
        assert!(
            !v4.allows(ip("2001:db8::1")),
            "an IPv4 range never holds IPv6"
        );
    }

    #[test]
    fn invalid_lists_name_the_entry_and_what_is_wrong() {
        assert_eq!(
            SourceAllowlist::parse("1.2.3.4,,5.6.7.8"),
            Err(AllowlistError::EmptyEntry(2))
        );
        assert_eq!(
            SourceAllowlist::parse("1.2.3.4,"),
            Err(AllowlistError::EmptyEntry(2))
        );
        for (list, position, entry) in [
            ("1.2.3.4/33", 1, "1.2.3.4/33"),
            ("1.2.3.4,example.com", 2, "example.com"),
            ("1.2.3", 1, "1.2.3"),
            ("1.2.3.4/", 1, "1.2.3.4/"),
            ("1.2.3.4/-1", 1, "1.2.3.4/-1"),
            ("2001:db8::/129", 1, "2001:db8::/129"),
            ("1.2.3.0/24/1", 1, "1.2.3.0/24/1"),
        ] {
            assert_eq!(
                SourceAllowlist::parse(list),
                Err(AllowlistError::Invalid {
                    position,
                    entry: entry.into()
                }),
                "{list}"
            );
        }
        let error = SourceAllowlist::parse("18.98.6.70/27").unwrap_err();
        assert_eq!(
            error,
            AllowlistError::HostBitsSet {
                position: 1,
                entry: "18.98.6.70/27".into(),
                network: "18.98.6.64/27".parse().unwrap()
            }
        );
        assert!(error.to_string().contains("did you mean 18.98.6.64/27?"));
    }

    #[test]
    fn veriffs_published_sources_parse_and_hold_their_addresses() {
        let list = SourceAllowlist::parse(VERIFF_PUBLISHED_SOURCES).unwrap();
        assert_eq!(list.ranges().len(), 11);
        assert!(list.allows(ip("3.251.215.191")));
        assert!(list.allows(ip("54.218.205.80")));
        assert!(!list.allows(ip("3.251.215.192")));
    }

    #[test]
    fn the_source_address_comes_from_the_request_context() {
        let url =
            json!({"requestContext": {"http": {"method": "POST", "sourceIp": "52.19.226.239"}}});
        assert_eq!(
            source_address(&url),
            SourceAddress::Known(ip("52.19.226.239"))
        );
        let v6 = json!({"requestContext": {"http": {"sourceIp": "2001:db8::7"}}});
        assert_eq!(source_address(&v6), SourceAddress::Known(ip("2001:db8::7")));
        let rest = json!({"requestContext": {"identity": {"sourceIp": "34.254.42.181"}}});
        assert_eq!(
            source_address(&rest),
            SourceAddress::Known(ip("34.254.42.181"))
        );
        // A header is not a source address: only AWS's requestContext counts.
        let header_only = json!({"headers": {"x-forwarded-for": "52.19.226.239"}, "body": "{}"});
        assert_eq!(source_address(&header_only), SourceAddress::Missing);
        for missing in [
            json!({}),
            json!({"requestContext": {}}),
            json!({"requestContext": {"http": {"method": "POST"}}}),
            json!({"requestContext": {"http": {"sourceIp": null}}}),
            json!([1]),
        ] {
            assert_eq!(
                source_address(&missing),
                SourceAddress::Missing,
                "{missing}"
            );
        }
        for malformed in [
            json!({"requestContext": {"http": {"sourceIp": "not-an-ip"}}}),
            json!({"requestContext": {"http": {"sourceIp": "1.2.3.4:443"}}}),
            json!({"requestContext": {"http": {"sourceIp": ""}}}),
            json!({"requestContext": {"http": {"sourceIp": 16909060}}}),
            json!({"requestContext": {"identity": {"sourceIp": ["1.2.3.4"]}}}),
        ] {
            assert_eq!(
                source_address(&malformed),
                SourceAddress::Malformed,
                "{malformed}"
            );
        }
    }

    #[test]
    fn only_a_known_address_is_displayed_as_an_address() {
        assert_eq!(SourceAddress::Known(ip("::1")).to_string(), "::1");
        assert_eq!(SourceAddress::Missing.to_string(), "missing");
        assert_eq!(SourceAddress::Malformed.to_string(), "malformed");
    }
}
