//! Wire formats of an alert: an Elastic Common Schema document (JSON Lines
//! and Redis sinks, and the MSG of RFC 5424 syslog), RFC 5424 syslog
//! messages, and ArcSight CEF lines (carried inside RFC 5424 syslog).
//!
//! Every output is printable ASCII: non-ASCII characters in JSON strings
//! become `\uXXXX` escapes, and wire-derived strings are already escaped by
//! the report (`\DDD`), so no control character reaches a SIEM.

use super::model::Alert;
use crate::capture::Timestamp;
use crate::output::time::write_rfc3339;
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::net::IpAddr;

/// Syslog facility: local0 (RFC 5424 section 6.2.1).
pub const FACILITY_LOCAL0: u8 = 16;

/// The SD-ID of the structured data element (RFC 5424 section 7.2.2:
/// name@PEN; 32473 is the example Private Enterprise Number of RFC 5612).
pub const SD_ID: &str = "phonehome@32473";

/// APP-NAME of every syslog message.
pub const APP_NAME: &str = "phonehome";

/// Unix milliseconds as an RFC 3339 UTC string with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    let ts = Timestamp(ms.saturating_mul(1_000_000));
    write_rfc3339(&mut s, ts, false);
    // Insert the milliseconds before the `Z`.
    s.pop();
    let _ = write!(s, ".{:03}Z", ms.rem_euclid(1000));
    s
}

/// Re-encodes a JSON text so that it is pure ASCII (non-ASCII characters
/// only occur inside JSON strings, where `\uXXXX` is equivalent).
pub fn ascii_json(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// ECS MAC address form: upper case, hyphen-separated.
fn ecs_mac(mac: &str) -> String {
    mac.replace(':', "-").to_ascii_uppercase()
}

/// The Elastic Common Schema document of an alert.
pub fn ecs(alert: &Alert) -> Value {
    let s = &alert.subject;
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), json!(rfc3339_ms(alert.event_ms)));
    doc.insert("message".into(), json!(alert.message()));
    doc.insert(
        "event".into(),
        json!({
            "kind": "alert",
            "category": ["network", "intrusion_detection"],
            "type": ["info", "connection"],
            "id": alert.id,
            "code": alert.kind.as_str(),
            "action": alert.kind.as_str(),
            "dataset": "phonehome.alert",
            "module": "phonehome",
            "severity": alert.kind.cef_severity(),
            "created": rfc3339_ms(alert.detected_ms),
            "start": rfc3339_ms(s.first_seen_ms),
            "end": rfc3339_ms(s.last_seen_ms),
            "reason": alert.message(),
        }),
    );
    doc.insert(
        "observer".into(),
        json!({
            "name": alert.sensor,
            "hostname": alert.sensor,
            "type": "sensor",
            "vendor": "phonehome",
            "product": "phonehome",
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    let mut source = Map::new();
    source.insert("ip".into(), json!(s.host.ip));
    if let Some(m) = &s.host.mac {
        source.insert("mac".into(), json!(ecs_mac(m)));
    }
    doc.insert("source".into(), Value::Object(source));
    if let Some(v) = s.host.vlan {
        doc.insert(
            "network".into(),
            json!({"vlan": {"id": v.to_string()}, "direction": "egress"}),
        );
    } else {
        doc.insert("network".into(), json!({"direction": "egress"}));
    }
    let name = s.names.first();
    let server = s.servers.first();
    let mut dest = Map::new();
    if let Some(sv) = server {
        dest.insert("ip".into(), json!(sv.ip));
        let mut geo = Map::new();
        if let Some(c) = &sv.country {
            geo.insert("country_iso_code".into(), json!(c));
        }
        if let Some(c) = &sv.city {
            geo.insert("city_name".into(), json!(c));
        }
        if !geo.is_empty() {
            dest.insert("geo".into(), Value::Object(geo));
        }
        if sv.asn.is_some() || sv.org.is_some() {
            dest.insert(
                "as".into(),
                json!({"number": sv.asn, "organization": {"name": sv.org}}),
            );
        }
    }
    if let Some(n) = name {
        dest.insert("domain".into(), json!(n));
    }
    if !dest.is_empty() {
        doc.insert("destination".into(), Value::Object(dest));
    }
    if let Some(n) = name {
        let has = |e: &str| s.evidence.iter().any(|x| x == e);
        if has("dns") {
            doc.insert("dns".into(), json!({"question": {"name": n}}));
        }
        if has("sni") {
            doc.insert("tls".into(), json!({"client": {"server_name": n}}));
        }
        if has("http_host") {
            doc.insert("url".into(), json!({"domain": n}));
        }
    }
    let mut indicator = Map::new();
    match (name, server) {
        (Some(n), _) => {
            indicator.insert("type".into(), json!("domain-name"));
            indicator.insert("url".into(), json!({"domain": n}));
        }
        (None, Some(sv)) => {
            let t = if sv.ip.is_ipv4() {
                "ipv4-addr"
            } else {
                "ipv6-addr"
            };
            indicator.insert("type".into(), json!(t));
        }
        (None, None) => {}
    }
    if let Some(sv) = server {
        indicator.insert("ip".into(), json!(sv.ip));
    }
    indicator.insert("provider".into(), json!("phonehome feeds"));
    indicator.insert(
        "description".into(),
        json!(format!(
            "{} ({})",
            s.vendor_name
                .clone()
                .or_else(|| s.place.clone())
                .unwrap_or_default(),
            s.purposes.join(", ")
        )),
    );
    indicator.insert("first_seen".into(), json!(rfc3339_ms(s.first_seen_ms)));
    indicator.insert("last_seen".into(), json!(rfc3339_ms(s.last_seen_ms)));
    indicator.insert(
        "sightings".into(),
        json!(s.connections.saturating_add(s.dns_queries)),
    );
    doc.insert("threat".into(), json!({"indicator": indicator}));
    let mut ips: Vec<String> = vec![s.host.ip.to_string()];
    ips.extend(s.servers.iter().map(|sv| sv.ip.to_string()));
    doc.insert("related".into(), json!({"ip": ips, "hosts": s.names}));
    doc.insert(
        "phonehome".into(),
        json!({
            "alert": alert.kind.as_str(),
            "vendor": s.vendor,
            "vendor_name": s.vendor_name,
            "place": s.place,
            "purposes": s.purposes,
            "evidence": s.evidence,
            "names": s.names,
            "servers": s.servers,
            "connections": s.connections,
            "dns_queries": s.dns_queries,
            "beacon": s.beacon,
            "period": alert.period,
            "host": s.host,
        }),
    );
    Value::Object(doc)
}

/// The ECS document as one ASCII line (no newline).
pub fn ecs_line(alert: &Alert) -> String {
    ascii_json(&ecs(alert).to_string())
}

/// Keeps printable US-ASCII (33..=126), at most `max` bytes; `-` when empty
/// (RFC 5424 header fields).
fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if out.is_empty() { "-".into() } else { out }
}

/// Escapes an SD-PARAM value (RFC 5424 section 6.3.3: `"`, `\` and `]`).
fn sd_value(out: &mut String, v: &str) {
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            out.push('?');
        }
    }
}

/// An RFC 5424 message: header, `[phonehome@32473 ...]` structured data,
/// and `msg` as the MSG part.
pub fn rfc5424(alert: &Alert, msg: &str, with_sd: bool) -> String {
    let pri = u16::from(FACILITY_LOCAL0) * 8 + u16::from(alert.kind.syslog_severity());
    let mut out = format!(
        "<{pri}>1 {} {} {APP_NAME} {} {} ",
        rfc3339_ms(alert.detected_ms),
        header_field(&alert.sensor, 255),
        std::process::id(),
        alert.kind.as_str(),
    );
    if with_sd {
        let s = &alert.subject;
        out.push('[');
        out.push_str(SD_ID);
        let mut param = |name: &str, value: &str| {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            sd_value(&mut out, value);
            out.push('"');
        };
        param("id", &alert.id);
        param("kind", alert.kind.as_str());
        param("host", &s.host.ip.to_string());
        if let Some(v) = s.host.vlan {
            param("vlan", &v.to_string());
        }
        if let Some(m) = &s.host.mac {
            param("mac", m);
        }
        param("target", &s.target());
        param("event_time", &rfc3339_ms(alert.event_ms));
        if let Some(p) = alert.period {
            param("period", &p.to_string());
        }
        out.push(']');
    } else {
        out.push('-');
    }
    out.push(' ');
    out.push_str(msg);
    out
}

/// The RFC 5424 form with the ECS document as MSG.
pub fn syslog_line(alert: &Alert) -> String {
    rfc5424(alert, &ecs_line(alert), true)
}

/// Escapes a CEF header field (`\` and `|`).
fn cef_header(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Escapes a CEF extension value (`\`, `=`, and line breaks as `\n`/`\r`).
pub fn cef_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// A CEF:0 line (ArcSight Common Event Format, revision 25).
pub fn cef(alert: &Alert) -> String {
    let s = &alert.subject;
    let mut out = String::from("CEF:0|");
    cef_header(&mut out, "phonehome");
    out.push('|');
    cef_header(&mut out, "phonehome");
    out.push('|');
    cef_header(&mut out, env!("CARGO_PKG_VERSION"));
    out.push('|');
    cef_header(&mut out, alert.kind.as_str());
    out.push('|');
    cef_header(&mut out, alert.kind.title());
    let _ = write!(out, "|{}|", alert.kind.cef_severity());
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", alert.detected_ms.to_string()),
        ("start", s.first_seen_ms.to_string()),
        ("end", s.last_seen_ms.to_string()),
        ("externalId", alert.id.clone()),
        ("cat", alert.kind.as_str().to_string()),
        ("dvchost", alert.sensor.clone()),
        ("deviceDirection", "1".into()),
        ("msg", alert.message()),
    ];
    push_ip(&mut ext, s.host.ip, ("src", "c6a2", "Source IPv6 Address"));
    if let Some(m) = &s.host.mac {
        ext.push(("smac", m.clone()));
    }
    if let Some(sv) = s.servers.first() {
        push_ip(&mut ext, sv.ip, ("dst", "c6a3", "Destination IPv6 Address"));
    }
    if let Some(n) = s.names.first() {
        ext.push(("dhost", n.clone()));
    }
    let custom = [
        ("cs1", "vendor", s.target()),
        ("cs2", "purposes", s.purposes.join(",")),
        ("cs3", "evidence", s.evidence.join(",")),
        ("cs4", "names", s.names.join(",")),
        (
            "cs5",
            "servers",
            s.servers
                .iter()
                .map(|sv| sv.ip.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    for (k, label, v) in custom {
        ext.push((k, v));
        ext.push((label_key(k), label.to_string()));
    }
    ext.push(("cn1", s.connections.to_string()));
    ext.push(("cn1Label", "connections".into()));
    ext.push(("cn2", s.dns_queries.to_string()));
    ext.push(("cn2Label", "dns_queries".into()));
    if let Some(v) = s.host.vlan {
        ext.push(("cn3", v.to_string()));
        ext.push(("cn3Label", "vlan".into()));
    }
    if let Some(b) = &s.beacon {
        let figures = format!(
            "period_s={} jitter={} score={} count={} source={}",
            b.period_s, b.jitter, b.score, b.count, b.source
        );
        ext.push(("cs6", figures));
        ext.push(("cs6Label", "beacon".into()));
    }
    for (i, (k, v)) in ext.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        cef_value(&mut out, v);
    }
    out
}

fn label_key(k: &str) -> &'static str {
    match k {
        "cs1" => "cs1Label",
        "cs2" => "cs2Label",
        "cs3" => "cs3Label",
        "cs4" => "cs4Label",
        "cs5" => "cs5Label",
        _ => "cs6Label",
    }
}

fn push_ip(ext: &mut Vec<(&str, String)>, ip: IpAddr, keys: (&'static str, &'static str, &str)) {
    match ip {
        IpAddr::V4(_) => ext.push((keys.0, ip.to_string())),
        IpAddr::V6(_) => {
            ext.push((keys.1, ip.to_string()));
            let label: &'static str = if keys.1 == "c6a2" {
                "c6a2Label"
            } else {
                "c6a3Label"
            };
            ext.push((label, keys.2.to_string()));
        }
    }
}

/// The CEF line inside an RFC 5424 message (no structured data).
pub fn cef_syslog_line(alert: &Alert) -> String {
    rfc5424(alert, &cef(alert), false)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alerts::model::{AlertHost, AlertKind, AlertServer, Subject};

    /// An alert with every hostile character in its strings.
    pub fn nasty_alert() -> Alert {
        Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            kind: AlertKind::FirstContact,
            event_ms: 1_505_296_805_123,
            detected_ms: 1_505_296_900_000,
            sensor: "sensor one|=\\\"]".into(),
            period: None,
            subject: Subject {
                host: AlertHost {
                    ip: "10.20.0.5".parse().unwrap(),
                    vlan: Some(120),
                    mac: Some("02:00:0a:14:00:05".into()),
                },
                vendor: Some("kaspersky".into()),
                vendor_name: Some("Kasper|sky = \"Lab\" \\ ]".into()),
                place: None,
                purposes: vec!["update".into(), "telemetry".into()],
                evidence: vec!["dns".into(), "sni".into()],
                names: vec!["a=b|c\\d.example\n".into(), "ds.kaspersky.com".into()],
                servers: vec![AlertServer {
                    ip: "2001:db8::1".parse().unwrap(),
                    country: Some("RU".into()),
                    city: Some("Moskvá".into()),
                    asn: Some(200107),
                    org: Some("Kaspersky Lab AO".into()),
                    watched: None,
                    watch_rule: None,
                }],
                connections: 25,
                dns_queries: 3,
                first_seen_ms: 1_505_296_805_000,
                last_seen_ms: 1_505_303_709_000,
                beacon: None,
            },
        }
    }

    #[test]
    fn ms_timestamps() {
        assert_eq!(rfc3339_ms(1_505_296_805_123), "2017-09-13T10:00:05.123Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn ecs_has_the_fields_siems_index() {
        let a = nasty_alert();
        let line = ecs_line(&a);
        assert!(line.is_ascii());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"]["kind"], "alert");
        assert_eq!(v["event"]["id"], a.id);
        assert_eq!(v["source"]["ip"], "10.20.0.5");
        assert_eq!(v["source"]["mac"], "02-00-0A-14-00-05");
        assert_eq!(v["destination"]["ip"], "2001:db8::1");
        assert_eq!(v["destination"]["geo"]["city_name"], "Moskvá");
        assert_eq!(v["destination"]["as"]["number"], 200107);
        assert_eq!(v["dns"]["question"]["name"], "a=b|c\\d.example\n");
        assert_eq!(v["tls"]["client"]["server_name"], "a=b|c\\d.example\n");
        assert!(v.get("url").is_none(), "no http_host evidence");
        assert_eq!(v["threat"]["indicator"]["type"], "domain-name");
        assert_eq!(v["observer"]["name"], a.sensor);
        assert_eq!(v["network"]["vlan"]["id"], "120");
        assert_eq!(v["@timestamp"], "2017-09-13T10:00:05.123Z");
    }

    #[test]
    fn rfc5424_escapes_structured_data() {
        let a = nasty_alert();
        let l = syslog_line(&a);
        assert!(l.starts_with("<132>1 2017-09-13T10:01:40.000Z sensorone|=\\\"] phonehome "));
        assert!(
            l.contains(" first_contact [phonehome@32473 id=\"0123456789abcdef0123456789abcdef\"")
        );
        assert!(!l.contains('\n'));
    }

    #[test]
    fn cef_escapes_header_and_extension() {
        let mut a = nasty_alert();
        a.sensor = "s=1\\x".into();
        let l = cef(&a);
        assert!(l.starts_with("CEF:0|phonehome|phonehome|"), "{l}");
        assert!(l.contains("|first_contact|First contact|6|rt=1505296900000 "));
        assert!(l.contains(" dvchost=s\\=1\\\\x "), "{l}");
        assert!(
            l.contains(" cs4=a\\=b|c\\\\d.example\\n,ds.kaspersky.com "),
            "{l}"
        );
        assert!(l.contains(" c6a3=2001:db8::1 c6a3Label=Destination IPv6 Address "));
        assert!(!l.contains('\n'));
    }
}
