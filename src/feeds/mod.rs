//! Feeds: what is known about each vendor's servers — domain suffixes, exact
//! names, address ranges, ASNs and HTTP fingerprints — each with a purpose,
//! a confidence and the source it came from.
//!
//! One TOML file per vendor (format in `feeds/README.md`). The files in the
//! repository's `feeds/` folder are compiled into the binary; `--feeds DIR`
//! adds vendors or replaces built-in ones by id. Loading validates every
//! value and reports each problem as `file:line:column: message`; a broken
//! feed is an error, never a silently smaller feed. The loaded [`Feeds`] are
//! read-only and compiled once into a [`Matcher`].

mod load;
mod matcher;
mod remap;

pub use load::{FeedError, FeedErrors, check_dir, check_text, load};
pub use matcher::{Matcher, NameMatch};
pub use remap::Remap;

use serde::Serialize;
use std::fmt;

include!(concat!(env!("OUT_DIR"), "/builtin_feeds.rs"));

/// Why a vendor's server is contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Signature, engine or product updates.
    Update,
    /// Reputation lookups, statistics, sample upload (KSN-like clouds).
    Telemetry,
    /// Licence activation and checks.
    Activation,
    /// Management consoles and agents.
    Management,
    /// The vendor's web sites.
    Web,
    /// Anything else, or unknown.
    Other,
}

impl Purpose {
    /// All purposes, in report order.
    pub const ALL: [Purpose; 6] = [
        Purpose::Update,
        Purpose::Telemetry,
        Purpose::Activation,
        Purpose::Management,
        Purpose::Web,
        Purpose::Other,
    ];

    /// The lowercase name used in feeds and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Update => "update",
            Purpose::Telemetry => "telemetry",
            Purpose::Activation => "activation",
            Purpose::Management => "management",
            Purpose::Web => "web",
            Purpose::Other => "other",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How well a rule is sourced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Documented by the vendor.
    Vendor,
    /// From community lists, routing data or observation.
    Community,
}

/// What a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A domain and every name below it.
    Suffix,
    /// One host name.
    Exact,
    /// An address range.
    Cidr,
    /// An autonomous system (needs an ASN database).
    Asn,
    /// A regex over the HTTP User-Agent.
    HttpUserAgent,
    /// A regex over the HTTP request path.
    HttpPath,
    /// An HTTP response media type.
    HttpContentType,
    /// A JA4 ClientHello fingerprint of the vendor's software.
    Ja4,
    /// A public resolver the vendor's software queries directly when its
    /// names do not resolve (not the vendor's address: a query for the
    /// vendor's names sent straight to it is the evidence).
    DnsFallbackResolver,
    /// A transport port or port range the vendor's software listens on
    /// (`tcp/13000`, `udp/15000`, `tcp/23100-23199`).
    Port,
}

impl RuleKind {
    /// All kinds, with their TOML keys.
    pub const ALL: [(RuleKind, &'static str); 10] = [
        (RuleKind::Suffix, "suffix"),
        (RuleKind::Exact, "exact"),
        (RuleKind::Cidr, "cidr"),
        (RuleKind::Asn, "asn"),
        (RuleKind::HttpUserAgent, "http_user_agent"),
        (RuleKind::HttpPath, "http_path"),
        (RuleKind::HttpContentType, "http_content_type"),
        (RuleKind::Ja4, "ja4"),
        (RuleKind::DnsFallbackResolver, "dns_fallback_resolver"),
        (RuleKind::Port, "port"),
    ];

    /// The TOML key of this kind.
    pub fn key(self) -> &'static str {
        RuleKind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

/// A vendor.
#[derive(Debug, Clone, Serialize)]
pub struct Vendor {
    /// Short id (`kaspersky`), the file stem.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Headquarters, as "City, CC".
    pub headquarters: Option<String>,
    /// Free notes.
    pub notes: Option<String>,
    /// Where the vendor was loaded from (`builtin:kaspersky.toml` or a path).
    pub origin: String,
}

/// Index of a vendor in [`Feeds::vendors`].
pub type VendorId = u16;
/// Index of a rule in [`Feeds::rules`].
pub type RuleId = u32;

/// One matching rule (a feed entry with several values becomes several rules).
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// The vendor.
    #[serde(skip)]
    pub vendor: VendorId,
    /// What it matches.
    pub kind: RuleKind,
    /// The value, normalised (lowercase names, canonical CIDR).
    pub value: String,
    /// Why the vendor's software contacts it.
    pub purpose: Purpose,
    /// Product family, when known.
    pub product: Option<String>,
    /// Sourcing quality.
    pub confidence: Confidence,
    /// Where the fact comes from.
    pub source: String,
    /// Free note.
    pub note: Option<String>,
    /// For management traffic: the role of the side that listens (the
    /// server of the conversation); the other side has the opposite role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// `file:line` of the entry.
    pub origin: String,
}

/// The part a host plays in a vendor's management traffic (Kaspersky
/// Security Center: an Administration Server and its Network Agents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages agents (an on-premises management server or a relay).
    ManagementServer,
    /// Is managed (runs the vendor's agent).
    ManagedClient,
}

impl Role {
    /// Both roles, in report order.
    pub const ALL: [Role; 2] = [Role::ManagementServer, Role::ManagedClient];

    /// The name used in feeds and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ManagementServer => "management_server",
            Role::ManagedClient => "managed_client",
        }
    }

    /// The other side's role.
    pub fn peer(self) -> Role {
        match self {
            Role::ManagementServer => Role::ManagedClient,
            Role::ManagedClient => Role::ManagementServer,
        }
    }
}

/// Loaded feeds.
#[derive(Debug, Clone, Default)]
pub struct Feeds {
    /// Vendors, in load order.
    pub vendors: Vec<Vendor>,
    /// Rules of all vendors.
    pub rules: Vec<Rule>,
}

impl Feeds {
    /// The vendor of a rule.
    pub fn vendor_of(&self, rule: RuleId) -> Option<&Vendor> {
        let r = self.rules.get(rule as usize)?;
        self.vendors.get(usize::from(r.vendor))
    }

    /// A rule by id.
    pub fn rule(&self, rule: RuleId) -> Option<&Rule> {
        self.rules.get(rule as usize)
    }
}

/// Feeds and their compiled matcher, shared read-only by every stage.
#[derive(Debug)]
pub struct Intel {
    /// The loaded feeds.
    pub feeds: Feeds,
    /// Their lookups.
    pub matcher: Matcher,
    /// GeoIP/ASN databases and watched places (empty unless given).
    pub geo: crate::geo::Geo,
}

impl Intel {
    /// Compiles `feeds` (no GeoIP/ASN databases).
    pub fn new(feeds: Feeds) -> Self {
        let matcher = Matcher::new(&feeds);
        Intel {
            feeds,
            matcher,
            geo: crate::geo::Geo::none(),
        }
    }

    /// The same, with GeoIP/ASN databases and watch rules.
    pub fn with_geo(mut self, geo: crate::geo::Geo) -> Self {
        self.geo = geo;
        self
    }
}

/// Parses a port rule value (`tcp/13000`, `udp/15000`, `tcp/23100-23199`)
/// into (IP protocol, first port, last port).
pub fn parse_port(v: &str) -> Option<(u8, u16, u16)> {
    let (proto, ports) = v.split_once('/')?;
    let proto = match proto {
        "tcp" => 6,
        "udp" => 17,
        _ => return None,
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = ports.parse().ok()?;
            (p, p)
        }
    };
    (lo > 0 && lo <= hi).then_some((proto, lo, hi))
}
