//! Reading and validating feed files. The TOML is parsed into a spanned
//! tree so that every error can name `file:line:column`; all errors of all
//! files are collected before giving up, so one `feeds check` run shows
//! everything that needs fixing.

use super::{BUILTIN_FEEDS, Confidence, Feeds, Purpose, Rule, RuleKind, Vendor, VendorId};
use ipnet::IpNet;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in a feed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError {
    /// File name (or `builtin:NAME`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// All problems found in a set of feed files.
#[derive(Debug, Clone, thiserror::Error)]
pub struct FeedErrors(pub Vec<FeedError>);

impl fmt::Display for FeedErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the feeds", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Loads the built-in feeds, then the `.toml` files of `extra` (if given);
/// a file whose vendor id is already loaded replaces that vendor.
pub fn load(extra: Option<&Path>) -> Result<Feeds, FeedErrors> {
    let mut files: Vec<(String, String)> = BUILTIN_FEEDS
        .iter()
        .map(|(n, t)| (format!("builtin:{n}"), (*t).to_string()))
        .collect();
    if let Some(dir) = extra {
        files.extend(read_dir(dir)?);
    }
    build(files, true)
}

/// Validates the `.toml` files of one folder on their own.
pub fn check_dir(dir: &Path) -> Result<Feeds, FeedErrors> {
    build(read_dir(dir)?, false)
}

/// Validates one feed file given as text (`name` is used in the errors), as
/// `feeds check` does for each file of a folder. Used by the fuzz targets.
pub fn check_text(name: &str, text: &str) -> Result<Feeds, FeedErrors> {
    build(vec![(name.to_string(), text.to_string())], false)
}

fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, FeedErrors> {
    let io_err = |file: &Path, e: std::io::Error| {
        FeedErrors(vec![FeedError {
            file: file.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        }])
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(FeedErrors(vec![FeedError {
            file: dir.display().to_string(),
            line: 0,
            column: 0,
            message: "no .toml feed files in this folder".into(),
        }]));
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| io_err(&p, e))?;
            Ok((p.display().to_string(), text))
        })
        .collect()
}

/// Parses every file, lets later vendors replace earlier ones with the same
/// id when `replace` is set, and checks for values claimed twice.
fn build(files: Vec<(String, String)>, replace: bool) -> Result<Feeds, FeedErrors> {
    let mut errors = Vec::new();
    let mut parsed: Vec<(Vendor, Vec<Rule>)> = Vec::new();
    for (name, text) in &files {
        match parse_file(name, text) {
            Ok((vendor, rules)) => {
                if let Some(i) = parsed.iter().position(|(v, _)| v.id == vendor.id) {
                    if replace {
                        parsed.remove(i);
                    } else {
                        errors.push(FeedError {
                            file: name.clone(),
                            line: 1,
                            column: 1,
                            message: format!(
                                "vendor id {:?} is also defined in {}",
                                vendor.id, parsed[i].0.origin
                            ),
                        });
                        continue;
                    }
                }
                parsed.push((vendor, rules));
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    let mut feeds = Feeds::default();
    let mut seen: HashMap<(RuleKind, String), String> = HashMap::new();
    for (vid, (vendor, rules)) in parsed.into_iter().enumerate() {
        let vid = VendorId::try_from(vid).unwrap_or(VendorId::MAX);
        for mut rule in rules {
            rule.vendor = vid;
            // A fallback resolver is public infrastructure several vendors
            // may list; it is claimed per vendor.
            let key = if rule.kind == RuleKind::DnsFallbackResolver {
                (rule.kind, format!("{}:{}", vendor.id, rule.value))
            } else {
                (rule.kind, rule.value.clone())
            };
            if let Some(first) = seen.get(&key) {
                let (file, line) = split_origin(&rule.origin);
                errors.push(FeedError {
                    file,
                    line,
                    column: 1,
                    message: format!(
                        "{} {:?} is already claimed at {first}",
                        rule.kind.key(),
                        rule.value
                    ),
                });
                continue;
            }
            seen.insert(key, rule.origin.clone());
            feeds.rules.push(rule);
        }
        feeds.vendors.push(vendor);
    }
    if errors.is_empty() {
        Ok(feeds)
    } else {
        Err(FeedErrors(errors))
    }
}

fn split_origin(origin: &str) -> (String, usize) {
    match origin.rsplit_once(':') {
        Some((f, l)) => (f.to_string(), l.parse().unwrap_or(0)),
        None => (origin.to_string(), 0),
    }
}

/// Turns byte offsets into line and column numbers.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    fn at(&self, offset: usize, message: impl Into<String>) -> FeedError {
        let before = self.text.get(..offset.min(self.text.len())).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        FeedError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text
            .get(..offset.min(self.text.len()))
            .unwrap_or("")
            .matches('\n')
            .count()
            + 1
    }
}

fn file_stem(name: &str) -> &str {
    let base = name.rsplit(['/', ':', '\\']).next().unwrap_or(name);
    base.strip_suffix(".toml").unwrap_or(base)
}

/// Parses one feed file into its vendor and rules (vendor index unset).
fn parse_file(name: &str, text: &str) -> Result<(Vendor, Vec<Rule>), Vec<FeedError>> {
    let loc = Locator { file: name, text };
    let root = DeTable::parse(text).map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        vec![loc.at(at, e.message().trim().to_string())]
    })?;
    let mut errors = Vec::new();
    let mut vendor: Option<Vendor> = None;
    let mut rules = Vec::new();
    let mut rule_tables: Vec<&Spanned<DeValue<'_>>> = Vec::new();
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "vendor" => match value.get_ref().as_table() {
                Some(t) => vendor = parse_vendor(&loc, name, t, value.span().start, &mut errors),
                None => errors.push(loc.at(value.span().start, "[vendor] must be a table")),
            },
            "rule" => match value.get_ref().as_array() {
                Some(a) => rule_tables.extend(a.iter()),
                None => errors.push(loc.at(
                    value.span().start,
                    "rule must be an array of tables: write [[rule]]",
                )),
            },
            other => errors.push(loc.at(
                key.span().start,
                format!("unknown top-level key {other:?} (expected [vendor] and [[rule]])"),
            )),
        }
    }
    if vendor.is_none() && errors.is_empty() {
        errors.push(loc.at(0, "missing [vendor] table"));
    }
    if rule_tables.is_empty() && errors.is_empty() {
        errors.push(loc.at(0, "no [[rule]] entries"));
    }
    for t in rule_tables {
        match t.get_ref().as_table() {
            Some(table) => parse_rule(&loc, table, t.span().start, &mut rules, &mut errors),
            None => errors.push(loc.at(t.span().start, "each rule must be a table")),
        }
    }
    match vendor {
        Some(v) if errors.is_empty() => Ok((v, rules)),
        _ => Err(errors),
    }
}

fn string_of<'a>(
    loc: &Locator<'_>,
    v: &'a Spanned<DeValue<'_>>,
    what: &str,
    errors: &mut Vec<FeedError>,
) -> Option<&'a str> {
    let s = v.get_ref().as_str();
    if s.is_none() {
        errors.push(loc.at(
            v.span().start,
            format!("{what} must be a string, not {}", v.get_ref().type_str()),
        ));
    }
    s
}

fn parse_vendor(
    loc: &Locator<'_>,
    file: &str,
    t: &DeTable<'_>,
    at: usize,
    errors: &mut Vec<FeedError>,
) -> Option<Vendor> {
    let mut id = None;
    let mut vname = None;
    let mut hq = None;
    let mut notes = None;
    for (k, v) in t.iter() {
        let key = k.get_ref().as_ref();
        match key {
            "id" => {
                id = string_of(loc, v, "vendor.id", errors).map(|s| (s.to_string(), v.span().start))
            }
            "name" => vname = string_of(loc, v, "vendor.name", errors).map(str::to_string),
            "headquarters" => {
                hq = string_of(loc, v, "vendor.headquarters", errors).map(str::to_string)
            }
            "notes" => notes = string_of(loc, v, "vendor.notes", errors).map(str::to_string),
            other => errors.push(loc.at(
                k.span().start,
                format!("unknown key vendor.{other} (expected id, name, headquarters, notes)"),
            )),
        }
    }
    let Some((id, id_at)) = id else {
        errors.push(loc.at(at, "vendor.id is missing"));
        return None;
    };
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors.push(loc.at(
            id_at,
            format!("vendor.id {id:?} must be lowercase letters, digits and '-'"),
        ));
    } else if id != file_stem(file) {
        errors.push(loc.at(
            id_at,
            format!(
                "vendor.id {id:?} differs from the file name {:?}",
                file_stem(file)
            ),
        ));
    }
    let Some(name) = vname else {
        errors.push(loc.at(at, "vendor.name is missing"));
        return None;
    };
    Some(Vendor {
        id,
        name,
        headquarters: hq,
        notes,
        origin: file.to_string(),
    })
}

fn parse_rule(
    loc: &Locator<'_>,
    t: &DeTable<'_>,
    at: usize,
    rules: &mut Vec<Rule>,
    errors: &mut Vec<FeedError>,
) {
    let before = errors.len();
    let mut kinds: Vec<(RuleKind, &Spanned<DeValue<'_>>)> = Vec::new();
    let mut purpose = None;
    let mut confidence = None;
    let mut source = None;
    let mut product = None;
    let mut note = None;
    let mut role = None;
    for (k, v) in t.iter() {
        let key = k.get_ref().as_ref();
        if let Some((kind, _)) = RuleKind::ALL.iter().find(|(_, n)| *n == key) {
            kinds.push((*kind, v));
            continue;
        }
        match key {
            "purpose" => {
                if let Some(s) = string_of(loc, v, "purpose", errors) {
                    purpose = Purpose::parse(s);
                    if purpose.is_none() {
                        errors.push(loc.at(v.span().start, format!("purpose {s:?} is not one of update, telemetry, activation, management, web, other")));
                    }
                }
            }
            "confidence" => {
                if let Some(s) = string_of(loc, v, "confidence", errors) {
                    confidence = match s {
                        "vendor" => Some(Confidence::Vendor),
                        "community" => Some(Confidence::Community),
                        _ => {
                            errors.push(loc.at(
                                v.span().start,
                                format!("confidence {s:?} is not \"vendor\" or \"community\""),
                            ));
                            None
                        }
                    };
                }
            }
            "source" => {
                if let Some(s) = string_of(loc, v, "source", errors) {
                    if s.starts_with("https://") || s.starts_with("http://") {
                        source = Some(s.to_string());
                    } else {
                        errors.push(loc.at(
                            v.span().start,
                            format!("source {s:?} must be an http(s) URL"),
                        ));
                    }
                }
            }
            "product" => product = string_of(loc, v, "product", errors).map(str::to_string),
            "note" => note = string_of(loc, v, "note", errors).map(str::to_string),
            "role" => {
                if let Some(s) = string_of(loc, v, "role", errors) {
                    role = super::Role::ALL.into_iter().find(|r| r.as_str() == s);
                    if role.is_none() {
                        errors.push(loc.at(
                            v.span().start,
                            format!("role {s:?} is not management_server or managed_client"),
                        ));
                    }
                }
            }
            other => {
                let keys: Vec<_> = RuleKind::ALL.iter().map(|(_, n)| *n).collect();
                errors.push(loc.at(k.span().start, format!("unknown rule key {other:?} (expected one of {}, purpose, product, confidence, source, note, role)", keys.join(", "))));
            }
        }
    }
    kinds.sort_by_key(|(_, v)| v.span().start);
    match kinds.len() {
        1 => {}
        0 => errors.push(loc.at(at, "the rule has no match key (suffix, exact, cidr, asn, http_user_agent, http_path, http_content_type, ja4, dns_fallback_resolver or port)")),
        _ => errors.push(loc.at(kinds[1].1.span().start, "a rule takes exactly one match key; split it into two rules")),
    }
    for (name, present) in [
        ("purpose", purpose.is_some()),
        ("confidence", confidence.is_some()),
        ("source", source.is_some()),
    ] {
        if !present && errors.len() == before {
            errors.push(loc.at(at, format!("the rule has no {name}")));
        }
    }
    if errors.len() != before {
        return;
    }
    let (Some((kind, value)), Some(purpose), Some(confidence), Some(source)) =
        (kinds.first(), purpose, confidence, source)
    else {
        return;
    };
    let items: Vec<&Spanned<DeValue<'_>>> = match value.get_ref().as_array() {
        Some(a) if a.is_empty() => {
            errors.push(loc.at(value.span().start, "empty list"));
            return;
        }
        Some(a) => a.iter().collect(),
        None => vec![value],
    };
    for item in items {
        match normalise(*kind, item.get_ref()) {
            Ok(v) => rules.push(Rule {
                vendor: 0,
                kind: *kind,
                value: v,
                purpose,
                product: product.clone(),
                confidence,
                source: source.clone(),
                note: note.clone(),
                role,
                origin: format!("{}:{}", loc.file, loc.line_of(item.span().start)),
            }),
            Err(m) => errors.push(loc.at(item.span().start, m)),
        }
    }
}

/// Whether `f` has JA4's shape: `[tqd]` + version + `[di]` + two 2-digit
/// counts + two ALPN characters, then two 12-digit hex hashes.
fn is_ja4(f: &str) -> bool {
    let parts: Vec<&str> = f.split('_').collect();
    let hex12 = |p: &str| p.len() == 12 && p.bytes().all(|b| b.is_ascii_hexdigit());
    match parts.as_slice() {
        [a, b, c] => {
            let a = a.as_bytes();
            a.len() == 10
                && matches!(a.first(), Some(b't' | b'q' | b'd'))
                && a.get(1..3)
                    .is_some_and(|v| v.iter().all(u8::is_ascii_alphanumeric))
                && matches!(a.get(3), Some(b'd' | b'i'))
                && a.get(4..8)
                    .is_some_and(|n| n.iter().all(u8::is_ascii_digit))
                && a.get(8..10)
                    .is_some_and(|n| n.iter().all(u8::is_ascii_alphanumeric))
                && hex12(b)
                && hex12(c)
        }
        _ => false,
    }
}

/// Checks one value of a rule and returns its canonical form.
fn normalise(kind: RuleKind, v: &DeValue<'_>) -> Result<String, String> {
    if kind == RuleKind::Asn {
        let i = v
            .as_integer()
            .ok_or_else(|| format!("asn must be an integer, not {}", v.type_str()))?;
        let n = u32::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map_err(|_| format!("asn {} is not a 32-bit AS number", i.as_str()))?;
        if n == 0 {
            return Err("asn 0 is reserved".into());
        }
        return Ok(n.to_string());
    }
    let s = v
        .as_str()
        .ok_or_else(|| format!("{} must be a string, not {}", kind.key(), v.type_str()))?;
    match kind {
        RuleKind::Suffix | RuleKind::Exact => {
            let name = s.trim_end_matches('.').to_ascii_lowercase();
            let ok_label = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if name.is_empty() || name.len() > 253 || !name.split('.').all(ok_label) {
                return Err(format!(
                    "{s:?} is not a host name (letters, digits, '-', '_' in dot-separated labels; no wildcards)"
                ));
            }
            Ok(name)
        }
        RuleKind::Cidr => {
            let net: IpNet = s.parse().map_err(|_| {
                format!("{s:?} is not a CIDR prefix like 192.0.2.0/24 or 2001:db8::/32")
            })?;
            if net.trunc() != net {
                return Err(format!(
                    "{s:?} has host bits set; the prefix is {}",
                    net.trunc()
                ));
            }
            Ok(net.to_string())
        }
        RuleKind::HttpUserAgent | RuleKind::HttpPath => {
            regex::Regex::new(s).map_err(|e| {
                format!(
                    "{s:?} is not a valid regex: {}",
                    e.to_string().lines().last().unwrap_or("")
                )
            })?;
            Ok(s.to_string())
        }
        RuleKind::HttpContentType => {
            let m = s.trim().to_ascii_lowercase();
            if m.split('/').count() != 2 || m.contains(';') || m.contains(char::is_whitespace) {
                return Err(format!(
                    "{s:?} is not a bare media type like application/x-kaspavupdate"
                ));
            }
            Ok(m)
        }
        RuleKind::Ja4 => {
            let f = s.trim().to_ascii_lowercase();
            if !is_ja4(&f) {
                return Err(format!(
                    "{s:?} is not a JA4 fingerprint like t13d1516h2_8daaf6152771_e5627efa2ab1"
                ));
            }
            Ok(f)
        }
        RuleKind::Port => {
            let v = s.trim().to_ascii_lowercase();
            let proto = v.split('/').next().unwrap_or("");
            match super::parse_port(&v) {
                Some((_, lo, hi)) if lo == hi => Ok(format!("{proto}/{lo}")),
                Some((_, lo, hi)) => Ok(format!("{proto}/{lo}-{hi}")),
                None => Err(format!(
                    "{s:?} is not a port like tcp/13000, udp/15000 or tcp/23100-23199"
                )),
            }
        }
        RuleKind::DnsFallbackResolver => {
            let a: std::net::IpAddr = s.trim().parse().map_err(|_| {
                format!("{s:?} is not an IP address like 8.8.8.8 or 2001:4860:4860::8888")
            })?;
            Ok(a.to_string())
        }
        RuleKind::Asn => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<String> {
        match parse_file("t/acme.toml", text) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    const HEAD: &str = "[vendor]\nid = \"acme\"\nname = \"Acme\"\n";

    #[test]
    fn builtin_feeds_load() {
        let feeds = load(None).expect("built-in feeds are valid");
        assert!(feeds.vendors.iter().any(|v| v.id == "kaspersky"));
        assert!(feeds.vendors.len() >= 10);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = errs(&format!(
            "{HEAD}[[rule]]\nsuffix = \"a..b\"\npurpose = \"update\"\nconfidence = \"vendor\"\nsource = \"https://x\"\n"
        ));
        assert_eq!(
            e,
            [
                "t/acme.toml:5:10: \"a..b\" is not a host name (letters, digits, '-', '_' in dot-separated labels; no wildcards)"
            ]
        );
        let e = errs(&format!(
            "{HEAD}[[rule]]\ncidr = [\"10.0.0.1/8\"]\npurpose = \"updates\"\nconfidence = \"vendor\"\nsource = \"https://x\"\n"
        ));
        assert_eq!(
            e,
            [
                "t/acme.toml:6:11: purpose \"updates\" is not one of update, telemetry, activation, management, web, other"
            ]
        );
        let e = errs(&format!(
            "{HEAD}[[rule]]\ncidr = [\"10.0.0.1/8\"]\npurpose = \"update\"\nconfidence = \"vendor\"\nsource = \"https://x\"\n"
        ));
        assert_eq!(
            e,
            ["t/acme.toml:5:9: \"10.0.0.1/8\" has host bits set; the prefix is 10.0.0.0/8"]
        );
        let e = errs("[vendor\nid=1");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("t/acme.toml:1:"), "{e:?}");
    }

    #[test]
    fn a_rule_needs_exactly_one_match_key() {
        let e = errs(&format!(
            "{HEAD}[[rule]]\nsuffix = \"a.com\"\nexact = \"b.com\"\npurpose = \"web\"\nconfidence = \"vendor\"\nsource = \"https://x\"\n"
        ));
        assert_eq!(
            e,
            ["t/acme.toml:6:9: a rule takes exactly one match key; split it into two rules"]
        );
    }

    #[test]
    fn values_claimed_twice_are_reported_with_both_places() {
        let a = format!(
            "{HEAD}[[rule]]\nsuffix = \"a.com\"\npurpose = \"web\"\nconfidence = \"vendor\"\nsource = \"https://x\"\n"
        );
        let b = a.replace("acme", "beta");
        let e = build(
            vec![("d/acme.toml".into(), a), ("d/beta.toml".into(), b)],
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.0[0].to_string(),
            "d/beta.toml:5:1: suffix \"a.com\" is already claimed at d/acme.toml:5"
        );
    }

    #[test]
    fn ja4_rules_are_checked_and_lowercased() {
        let rule = |v: &str| {
            format!(
                "{HEAD}[[rule]]\nja4 = [{v}]\npurpose = \"telemetry\"\nconfidence = \"community\"\nsource = \"https://x\"\n"
            )
        };
        let ok = rule(
            "\"t13d1516h2_8daaf6152771_E5627EFA2AB1\", \"q13d0310h3_55b375c5d22e_cd85d2d88918\"",
        );
        let (_, rules) = parse_file("t/acme.toml", &ok).expect("valid");
        assert_eq!(rules[0].value, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(rules[1].kind, RuleKind::Ja4);
        for bad in [
            "\"x13d1516h2_8daaf6152771_e5627efa2ab1\"",
            "\"t13d1516h2_8daaf6152771\"",
            "\"t13x1516h2_8daaf6152771_e5627efa2ab1\"",
            "\"t13d1516h2_8daaf615277g_e5627efa2ab1\"",
        ] {
            let e = errs(&rule(bad));
            assert_eq!(e.len(), 1, "{bad}");
            assert!(e[0].contains("is not a JA4 fingerprint"), "{e:?}");
        }
    }

    #[test]
    fn fallback_resolvers_are_addresses_and_may_be_shared_by_vendors() {
        let a = format!(
            "{HEAD}[[rule]]\ndns_fallback_resolver = [\"8.8.8.8\", \"2001:4860:4860::8888\"]\npurpose = \"other\"\nconfidence = \"vendor\"\nsource = \"https://x\"\n"
        );
        let b = a.replace("acme", "beta");
        let feeds = build(
            vec![("d/acme.toml".into(), a.clone()), ("d/beta.toml".into(), b)],
            false,
        )
        .expect("two vendors may list one resolver");
        assert_eq!(feeds.rules.len(), 4);
        let dup = a.replace("\"2001:4860:4860::8888\"", "\"8.8.8.8\"");
        let e = build(vec![("d/acme.toml".into(), dup)], false).unwrap_err();
        assert!(e.0[0].message.contains("already claimed"), "{e}");
        let bad = a.replace("8.8.8.8", "8.8.8.0/24");
        let e = errs(&bad);
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("is not an IP address"), "{e:?}");
    }
}
