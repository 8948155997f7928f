//! The HTML report (`--html`) opened in a real browser: Debian's headless
//! Chromium loads the generated file from disk (no network), and the tests
//! read the DOM after the page's script ran (`--dump-dom`) and every console
//! message (`--enable-logging=stderr`: Chromium writes each one, of any
//! level, as a `CONSOLE` line; the page itself never logs, so any such line
//! is an error, a CSP violation included). Skipped, with a message, when no
//! Chromium is installed (`.ci/run` installs the `chromium` package).

use crate::util::{capture, run};
use phonehome_synth::dns::Answer;
use phonehome_synth::http;
use phonehome_synth::session::{CaptureBuilder, Link, MILLI, SECOND, TcpConn, dns_lookup};
use phonehome_synth::tls::{self, ClientHelloSpec, MAX_RECORD_PAYLOAD};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium binary: `$PHONEHOME_CHROMIUM`, else the first of the usual
/// names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PHONEHOME_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

macro_rules! chromium_or_skip {
    () => {
        match chromium() {
            Some(c) => c,
            None => {
                eprintln!(
                    "SKIPPED: no Chromium (apt-get install chromium, or set PHONEHOME_CHROMIUM)"
                );
                return;
            }
        }
    };
}

/// What the browser made of a page.
struct Loaded {
    /// The DOM after the scripts ran.
    dom: String,
    /// Console messages (`CONSOLE` log lines).
    console: Vec<String>,
}

/// Runs headless Chromium on `url` with `mode` (`--dump-dom` or
/// `--screenshot=...`), with a private profile and a time limit.
fn browse(chrome: &Path, url: &str, mode: &str) -> Loaded {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chrome)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1400,1800",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let mut dom = String::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let dom_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish {url} in 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    dom.push_str(&dom_reader.join().unwrap());
    let stderr = reader.join().unwrap();
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Loaded { dom, console }
}

fn file_url(p: &Path, fragment: &str) -> String {
    format!("file://{}{fragment}", p.display())
}

/// The value of `attr="..."` on the first element carrying it.
fn attr<'a>(dom: &'a str, attr: &str) -> Option<&'a str> {
    let start = dom.find(&format!(" {attr}=\""))? + attr.len() + 3;
    let len = dom.get(start..)?.find('"')?;
    dom.get(start..start + len)
}

/// The text of the element with id `id` (no nested elements).
fn text_of<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let start = at + dom.get(at..)?.find('>')? + 1;
    let len = dom.get(start..)?.find('<')?;
    dom.get(start..start + len)
}

fn assert_rendered(page: &Loaded) {
    assert!(
        page.console.is_empty(),
        "console messages: {:#?}",
        page.console
    );
    assert_eq!(
        attr(&page.dom, "data-rendered"),
        Some("1"),
        "the script ran to its end"
    );
    assert!(
        !page.dom.contains("id=\"render-error\""),
        "the page reports an error"
    );
}

/// Where screenshots are kept: `<target>/test-artifacts/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// Names a hostile client sends, each under a Kaspersky suffix so the feeds
/// attribute it. No spaces (names escape them), no colons (a Host port).
const DNS_NAME: &str = "<script>document.title='pwned'</script>.kaspersky.com";
const SNI: &str = "\"><img/src=x/onerror=document.body.dataset.pwned=1>.kaspersky.com";
const HOST: &str = "'</script><svg/onload=document.title=\"pwned\">.kaspersky.com";

/// A capture where 10.66.0.5 asks DNS for [`DNS_NAME`], sends a ClientHello
/// for [`SNI`] and an HTTP request with Host [`HOST`]; 10.66.0.6 makes an
/// ordinary, three-times-repeated Kaspersky connection.
fn hostile_capture(path: &Path) {
    let mut cb = CaptureBuilder::new(Link::Ethernet { vlans: Vec::new() });
    let t0 = 1_700_000_000 * SECOND;
    let host = v4(10, 66, 0, 5);
    let resolver = SocketAddr::new(v4(10, 66, 0, 2), 53);
    let server = Ipv4Addr::new(198, 51, 100, 7);
    dns_lookup(
        &mut cb,
        t0,
        SocketAddr::new(host, 50000),
        resolver,
        7,
        DNS_NAME,
        &[Answer::a(DNS_NAME, server, 60)],
    );
    let hello = tls::records(
        &tls::client_hello(&ClientHelloSpec::with_sni(SNI)),
        MAX_RECORD_PAYLOAD,
    );
    let mut c = TcpConn::new(
        SocketAddr::new(host, 50001),
        SocketAddr::new(server.into(), 443),
        1,
        2,
    );
    let t = c.handshake(&mut cb, t0 + SECOND);
    let t = c.client_send(&mut cb, t + MILLI, &hello);
    c.close(&mut cb, t + MILLI);
    let mut c = TcpConn::new(
        SocketAddr::new(host, 50002),
        SocketAddr::new(server.into(), 80),
        3,
        4,
    );
    let t = c.handshake(&mut cb, t0 + 2 * SECOND);
    let req = http::request("GET", "/<b>x</b>", Some(HOST), Some("<i>ua</i>"), &[]);
    let t = c.client_send(&mut cb, t + MILLI, &req);
    c.close(&mut cb, t + MILLI);
    let other = v4(10, 66, 0, 6);
    for i in 0..3u16 {
        let hello = tls::records(
            &tls::client_hello(&ClientHelloSpec::with_sni("ds.kaspersky.com")),
            MAX_RECORD_PAYLOAD,
        );
        let mut c = TcpConn::new(
            SocketAddr::new(other, 51000 + i),
            SocketAddr::new(server.into(), 443),
            10,
            20,
        );
        let t = c.handshake(&mut cb, t0 + u64::from(i + 1) * 60 * SECOND);
        let t = c.client_send(&mut cb, t + MILLI, &hello);
        c.close(&mut cb, t + MILLI);
    }
    cb.write_pcapng(path).unwrap();
}

/// Escapes text as Chromium serialises a text node.
fn as_text_node(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

#[test]
fn hostile_names_are_shown_as_text_and_never_run() {
    let chrome = chromium_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("hostile.pcapng");
    hostile_capture(&pcap);
    let page = dir.path().join("report.html");
    let json = dir.path().join("report.json");
    let out = run(&[
        "analyze",
        "-q",
        "--format",
        "json",
        "-o",
        json.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The analysis did attribute the hostile names (else this proves nothing).
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let names: Vec<&str> = report["hosts"][0]["contacts"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for n in [DNS_NAME, SNI, HOST] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        html.matches("</script>").count(),
        2,
        "only the data block and the script end a script"
    );

    let loaded = browse(&chrome, &file_url(&page, "#open=10.66.0.5"), "--dump-dom");
    assert_rendered(&loaded);
    let dom = &loaded.dom;
    assert_eq!(text_of(dom, "row-count"), Some("2 of 2 rows"), "host table");
    for ip in ["10.66.0.5", "10.66.0.6"] {
        assert!(dom.contains(&format!("</button>{ip}</td>")), "row for {ip}");
    }
    // Literal text, in the table and in the opened host's evidence.
    for n in [DNS_NAME, SNI, HOST] {
        let shown = as_text_node(n);
        assert!(
            dom.matches(&shown).count() >= 2,
            "{n} is not shown as text ({shown})"
        );
    }
    // Nothing ran: the injected handlers would set these.
    assert!(dom.contains("<title>phonehome report</title>"));
    assert!(!dom.contains("data-pwned"));
    assert!(!dom.contains("<img") && !dom.contains("<b>x"));
    assert!(!dom.contains("onerror=\"") && !dom.contains("onload=\""));
    assert_eq!(
        dom.matches("<script").count(),
        2,
        "no script element was added"
    );
    // The repeated connection has one mark per connection.
    let loaded = browse(&chrome, &file_url(&page, "#open=10.66.0.6"), "--dump-dom");
    assert_rendered(&loaded);
    assert!(loaded.dom.contains("3 connection mark(s)"));

    let shot = artifacts().join("html-hostile.png");
    let _ = std::fs::remove_file(&shot);
    let s = browse(
        &chrome,
        &file_url(&page, "#open=10.66.0.5"),
        &format!("--screenshot={}", shot.display()),
    );
    assert!(s.console.is_empty(), "{:#?}", s.console);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn demo_report_renders_with_timelines() {
    let chrome = chromium_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("demo.html");
    let demo = capture("demo.pcapng");
    let out = run(&[
        "analyze",
        "-q",
        "-o",
        "/dev/null",
        "--html",
        page.to_str().unwrap(),
        demo.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let loaded = browse(&chrome, &file_url(&page, "#open=10.20.0.5"), "--dump-dom");
    assert_rendered(&loaded);
    let dom = &loaded.dom;
    assert_eq!(text_of(dom, "row-count"), Some("9 of 9 rows"));
    for ip in [
        "10.20.0.5",
        "10.20.0.6",
        "10.20.0.7",
        "10.20.0.8",
        "10.20.0.9",
        "10.20.0.10",
        "10.20.0.13",
        "10.20.0.14",
        "2001:db8:20::15",
    ] {
        assert!(dom.contains(&format!("</button>{ip}")), "row for {ip}");
    }
    // 1 update connection + 24 beacons: one mark each.
    assert!(dom.contains("25 connection mark(s)"));
    let shot = artifacts().join("html-demo.png");
    let s = browse(
        &chrome,
        &file_url(&page, "#open=10.20.0.5"),
        &format!("--screenshot={}", shot.display()),
    );
    assert!(s.console.is_empty(), "{:#?}", s.console);
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
}

/// A synthetic report of `n` hosts in the schema the other stages are moving
/// to: typed beacons, servers with places, vendor-less watched-place
/// contacts. The page must render it as well as the current one.
fn big_report(n: usize) -> Value {
    let vendors = [
        ("kaspersky", "Kaspersky"),
        ("drweb", "Dr.Web"),
        ("eset", "ESET"),
        ("avast", "Avast"),
    ];
    let hosts: Vec<Value> = (0..n)
        .map(|i| {
            let (id, name) = vendors[i % vendors.len()];
            let (country, city) = [("RU", "Moscow"), ("DE", "Frankfurt"), ("US", "Ashburn")][i % 3];
            let times: Vec<u64> = (0..24).map(|k| k * 300 + (i as u64 % 7)).collect();
            let mut contacts = vec![json!({
                "vendor": id, "vendor_name": name,
                "purposes": ["update", "telemetry"], "evidence": ["dns", "sni"],
                "names": [format!("n{i}.{id}.com"), format!("ksn-{}.{id}.com", i % 13)],
                "servers": [{"ip": format!("77.74.{}.{}", i / 250 % 250, i % 250),
                             "country": country, "city": city,
                             "asn": 200107, "org": "Kaspersky Lab AO", "watched": i % 3 == 0}],
                "connections": 24, "dns_queries": 24,
                "first_seen": "2017-09-13T10:00:05Z", "last_seen": "2017-09-13T11:55:09Z",
                "beacon": if i % 2 == 0 { json!({"period_s": 300.0, "jitter": 0.04, "score": 0.93, "count": 24}) } else { Value::Null },
                "rules": [{"kind": "suffix", "value": format!("{id}.com"), "purpose": "update", "confidence": "community", "source": "https://example.org/feed"}],
                "connection_times": times, "connection_times_every": 1
            })];
            if i % 10 == 0 {
                contacts.push(json!({
                    "vendor": null, "purposes": [], "evidence": ["cidr"], "names": [],
                    "servers": [{"ip": "5.45.192.1", "country": "RU", "city": "Moscow", "watched": true}],
                    "connections": 2, "dns_queries": 0,
                    "first_seen": "2017-09-13T10:10:00Z", "last_seen": "2017-09-13T10:20:00Z",
                    "beacon": null, "rules": []
                }));
            }
            json!({"ip": format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256), "contacts": contacts})
        })
        .collect();
    json!({
        "summary": {"files": 1, "packets": 1_000_000, "bytes": 600_000_000,
                    "first_packet": "2017-09-13T10:00:05Z", "last_packet": "2017-09-13T11:55:09Z",
                    "duration_s": 6904.0, "malformed_packets": 3, "flows_refused": 0,
                    "hosts_reported": n, "hosts_seen": n + 500, "input_errors": []},
        "hosts": hosts
    })
}

#[test]
fn ten_thousand_hosts_load_fast() {
    let chrome = chromium_or_skip!();
    let n = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("big.html");
    let html = phonehome::output::html::page(&big_report(n).to_string());
    std::fs::write(&page, &html).unwrap();
    let rows = n + n / 10;

    let mut times = Vec::new();
    for (fragment, listed) in [("", 500), ("#all", rows)] {
        let loaded = browse(&chrome, &file_url(&page, fragment), "--dump-dom");
        assert_rendered(&loaded);
        let dom = &loaded.dom;
        let count = text_of(dom, "row-count").unwrap();
        assert!(
            count.starts_with(&format!("{rows} of {rows} rows")),
            "{count}"
        );
        assert_eq!(dom.matches("<tr class=\"row\">").count(), listed);
        // The new schema's fields are used: places, watched rows, beacons.
        assert!(dom.contains("Frankfurt") && dom.contains("class=\"watched\""));
        assert!(dom.contains(">5,000</div><div class=\"l\">beacons confirmed"));
        let load: f64 = attr(dom, "data-load-ms").unwrap().parse().unwrap();
        let render: f64 = attr(dom, "data-render-ms").unwrap().parse().unwrap();
        eprintln!(
            "{n} hosts ({} MB page), {listed} rows listed: script {render:.0} ms, loaded and drawn {load:.0} ms after navigation",
            html.len() / 1_000_000
        );
        times.push(load);
    }
    let shot = artifacts().join("html-10000.png");
    let s = browse(
        &chrome,
        &file_url(&page, "#open=10.0.0.0"),
        &format!("--screenshot={}", shot.display()),
    );
    assert!(s.console.is_empty(), "{:#?}", s.console);
    // Generous for a loaded CI machine; typical figures are in README.
    assert!(times[0] < 5_000.0, "first view took {} ms", times[0]);
    assert!(times[1] < 15_000.0, "full table took {} ms", times[1]);
}
