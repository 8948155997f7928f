//! The terminal report: one row per (host, vendor) with wrapped cells,
//! then the names on their own indented line, then a summary. Fits in 100
//! columns; nothing from the wire reaches the terminal unescaped.

use super::report::{BeaconReport, Report, ServerReport, Summary};
use std::fmt::Write;

/// Report width in columns.
const WIDTH: usize = 100;

struct Column {
    title: &'static str,
    width: usize,
    right: bool,
}

const COLUMNS: [Column; 9] = [
    Column {
        title: "HOST",
        width: 15,
        right: false,
    },
    Column {
        title: "VENDOR",
        width: 11,
        right: false,
    },
    Column {
        title: "PURPOSES",
        width: 10,
        right: false,
    },
    Column {
        title: "EVIDENCE",
        width: 17,
        right: false,
    },
    Column {
        title: "CONNS",
        width: 5,
        right: true,
    },
    Column {
        title: "DNS",
        width: 4,
        right: true,
    },
    Column {
        title: "BEACON",
        width: 7,
        right: true,
    },
    Column {
        title: "FIRST SEEN",
        width: 10,
        right: false,
    },
    Column {
        title: "LAST SEEN",
        width: 10,
        right: false,
    },
];

/// Splits `text` into lines of at most `width` characters (long words are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let mut word = word;
        while word.chars().count() > width {
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            let cut = word
                .char_indices()
                .nth(width)
                .map(|(i, _)| i)
                .unwrap_or(word.len());
            lines.push(word[..cut].to_string());
            word = &word[cut..];
        }
        let extra = usize::from(!cur.is_empty());
        if cur.chars().count() + extra + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

fn row(out: &mut String, cells: &[Vec<String>]) {
    let height = cells.iter().map(Vec::len).max().unwrap_or(1);
    for line in 0..height {
        let mut text = String::new();
        for (c, col) in cells.iter().zip(COLUMNS.iter()) {
            let v = c.get(line).map(String::as_str).unwrap_or("");
            if col.right {
                let _ = write!(text, "{v:>w$} ", w = col.width);
            } else {
                let _ = write!(text, "{v:<w$} ", w = col.width);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
}

/// A server with what the databases say: `77.74.178.11 (RU Moscow AS200107,
/// watched)`. Control characters in database strings become `?`.
fn server(s: &ServerReport) -> String {
    let mut out = s.ip.to_string();
    let mut facts: Vec<String> = [s.country.as_deref(), s.city.as_deref()]
        .into_iter()
        .flatten()
        .map(|t| {
            t.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect::<String>()
        })
        .collect();
    if let Some(a) = s.asn {
        facts.push(format!("AS{a}"));
    }
    let mut facts = facts.join(" ");
    if s.watched == Some(true) {
        if !facts.is_empty() {
            facts.push_str(", ");
        }
        facts.push_str("watched");
    }
    if !facts.is_empty() {
        let _ = write!(out, " ({facts})");
    }
    out
}

fn date_time(rfc: &str) -> Vec<String> {
    match rfc.split_once('T') {
        Some((d, t)) => vec![d.to_string(), t.to_string()],
        None => vec![rfc.to_string()],
    }
}

/// The beacon column: each period, rounded to the second (`-` for none).
fn beacon_cell(b: Option<&BeaconReport>) -> Vec<String> {
    match b {
        None => vec!["-".to_string()],
        Some(b) if b.periods.is_empty() => vec![format!("{:.0} s", b.period_s)],
        Some(b) => b
            .periods
            .iter()
            .map(|p| format!("{:.0} s", p.period_s))
            .collect(),
    }
}

/// Renders the report as a table.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if report.hosts.is_empty() {
        out.push_str("No host contacted a vendor in the feeds.\n");
    } else {
        let titles: Vec<Vec<String>> = COLUMNS.iter().map(|c| vec![c.title.to_string()]).collect();
        row(&mut out, &titles);
        out.push_str(&"-".repeat(WIDTH));
        out.push('\n');
        for h in &report.hosts {
            for c in &h.contacts {
                let mut host = wrap(&h.ip.to_string(), COLUMNS[0].width);
                if let Some(v) = h.vlan {
                    host.push(format!("vlan {v}"));
                }
                let cells = vec![
                    host,
                    wrap(c.vendor.as_deref().unwrap_or("unknown"), COLUMNS[1].width),
                    c.purposes.iter().map(|p| p.to_string()).collect(),
                    c.evidence.iter().map(|e| e.to_string()).collect(),
                    vec![c.connections.to_string()],
                    vec![c.dns_queries.to_string()],
                    beacon_cell(c.beacon.as_ref()),
                    date_time(&c.first_seen),
                    date_time(&c.last_seen),
                ];
                row(&mut out, &cells);
                let mut names = c.names.join(", ");
                if c.omitted > 0 {
                    let _ = write!(names, " (+{} more names/servers)", c.omitted);
                }
                if !c.servers.is_empty() {
                    let servers: Vec<String> = c.servers.iter().map(server).collect();
                    if !names.is_empty() {
                        names.push_str("; ");
                    }
                    let _ = write!(names, "servers {}", servers.join(", "));
                }
                for line in wrap(&names, WIDTH - 4) {
                    if !line.is_empty() {
                        let _ = writeln!(out, "    {line}");
                    }
                }
            }
        }
        out.push('\n');
    }
    out.push_str(&summary_lines(&report.summary, report.hosts.len()));
    out
}

/// The summary block under the table.
fn summary_lines(s: &Summary, hosts: usize) -> String {
    let mut out = String::new();
    let span = match (&s.first_packet, &s.last_packet) {
        (Some(a), Some(b)) => format!("{a} .. {b} ({:.0} s)", s.duration_s),
        _ => "no packets".to_string(),
    };
    let _ = writeln!(
        out,
        "{} file(s), {} packets, {} bytes, {span}",
        s.files, s.packets, s.bytes
    );
    let vendors: Vec<String> = s
        .hosts_per_vendor
        .iter()
        .map(|(v, n)| format!("{v} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "{hosts} host(s) phoning home{}",
        if vendors.is_empty() {
            String::new()
        } else {
            format!(": {}", vendors.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "{} flows, {} DNS queries read without one",
        s.flows, s.dns_queries_without_flow
    );
    let _ = writeln!(
        out,
        "{} DNS messages, {} TLS ClientHellos, {} HTTP requests",
        s.dns_messages, s.tls_client_hellos, s.http_requests
    );
    let _ = writeln!(
        out,
        "{} malformed, {} truncated, {} non-IP frames; {} anomalous DNS messages",
        s.malformed_packets, s.truncated_packets, s.non_ip_frames, s.dns_anomalies
    );
    for e in &s.input_errors {
        let _ = writeln!(
            out,
            "input error: {}: {} ({} frames read before it are included)",
            e.file, e.error, e.frames_read
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_respects_width_and_cuts_long_words() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
    }
}
