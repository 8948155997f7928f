//! SIEM sinks against real receivers that the tests start on loopback:
//! rsyslogd (imtcp + imudp; every message re-parsed by rsyslog itself:
//! RFC 5424 header properties, mmpstrucdata for the structured data,
//! mmnormalize's CEF parser for CEF) and redis-server (XADD streams, read
//! back with redis-cli). Receivers are stopped and restarted in the middle
//! of a run; every alert id must arrive. Without the Debian packages
//! (`rsyslog`, `redis-server`) the tests skip with a message; `.ci/run`
//! installs them.

use crate::util::{capture, run};
use phonehome::alerts::model::{Alert, AlertHost, AlertKind, AlertServer, Subject, alert_id};
use phonehome::alerts::{Delivery, DeliveryConfig, SinkSpec};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "/usr/bin/redis-cli";

fn have(tool: &str, package: &str) -> bool {
    if Path::new(tool).exists() {
        return true;
    }
    eprintln!("SKIPPED: {tool} not found (apt-get install {package})");
    false
}

/// A TCP and a UDP port that are free on loopback (the same number).
fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "receiver on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// rsyslogd in the foreground, with its own configuration, on loopback.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn start(dir: &Path) -> Rsyslog {
        Rsyslog::start_on(dir, free_port())
    }

    fn start_on(dir: &Path, port: u16) -> Rsyslog {
        Rsyslog::start_with(dir, port, None)
    }

    /// With `tls` (a folder holding ca.pem, server.pem, server.key), the
    /// TCP input speaks TLS (RFC 5425) through rsyslog's GnuTLS driver.
    fn start_with(dir: &Path, port: u16, tls: Option<&Path>) -> Rsyslog {
        let out = dir.join("out.jsonl");
        let (global_tls, module_tls) = match tls {
            Some(t) => (
                format!(
                    r#" DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{t}/ca.pem" DefaultNetstreamDriverCertFile="{t}/server.pem" DefaultNetstreamDriverKeyFile="{t}/server.key""#,
                    t = t.display()
                ),
                r#" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon""#
                    .to_string(),
            ),
            None => (String::new(), String::new()),
        };
        // One JSON object per received message: the header fields as rsyslog
        // parsed them, the MSG, and `$!` (mmpstrucdata's structured data or
        // mmnormalize's CEF fields).
        let conf = format!(
            r#"global(workDirectory="{dir}" maxMessageSize="64k"{global_tls})
main_queue(queue.timeoutshutdown="10000")
module(load="imtcp"{module_tls})
module(load="imudp")
module(load="mmpstrucdata")
module(load="mmnormalize")
input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="r" name="tcp")
input(type="imudp" port="{port}" address="127.0.0.1" ruleset="r" name="udp")
template(name="props" type="list") {{
  constant(value="{{\"app\":\"") property(name="app-name" format="json")
  constant(value="\",\"msgid\":\"") property(name="msgid" format="json")
  constant(value="\",\"hostname\":\"") property(name="hostname" format="json")
  constant(value="\",\"procid\":\"") property(name="procid" format="json")
  constant(value="\",\"pri\":\"") property(name="pri" format="json")
  constant(value="\",\"version\":\"") property(name="protocol-version" format="json")
  constant(value="\",\"timestamp\":\"") property(name="timestamp" dateFormat="rfc3339" format="json")
  constant(value="\",\"sd\":\"") property(name="structured-data" format="json")
  constant(value="\",\"msg\":\"") property(name="msg" format="json")
  constant(value="\",\"input\":\"") property(name="inputname" format="json")
  constant(value="\",\"parsed\":") property(name="$!")
  constant(value="}}\n")
}}
ruleset(name="r") {{
  action(type="mmpstrucdata")
  if $msg startswith "CEF:" then {{
    action(type="mmnormalize" rule=["rule=:%cef:cef%"])
  }}
  action(type="omfile" file="{out}" template="props")
}}
"#,
            dir = dir.display(),
            out = out.display()
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let mut r = Rsyslog {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        wait_for_port(self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm(&mut c);
        }
    }

    /// The received messages.
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("out.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The alert id a received message carries, by whichever parser applies.
fn received_id(line: &Value) -> Option<String> {
    let sd = &line["parsed"]["rfc5424-sd"]["phonehome@32473"]["id"];
    let cef = &line["parsed"]["cef"]["Extensions"]["externalId"];
    sd.as_str().or(cef.as_str()).map(str::to_string)
}

/// Polls until `ids` all arrived (or 30 s).
fn wait_for_ids(lines: impl Fn() -> Vec<String>, ids: &BTreeSet<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = lines();
        let set: BTreeSet<String> = got.iter().cloned().collect();
        if ids.is_subset(&set) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls until every id arrived `copies` times and at least `min` distinct
/// ids did (or 30 s): rsyslog writes its file asynchronously, so what a
/// finished sender delivered may reach the file a little later.
fn wait_for_copies(lines: impl Fn() -> Vec<String>, min: usize, copies: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = lines();
        let unique: BTreeSet<&String> = got.iter().collect();
        let done = unique.len() >= min && got.len() >= copies * unique.len();
        if done || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A synthetic alert for host number `i`.
fn alert(i: u32) -> Alert {
    let ip: IpAddr = format!("10.1.{}.{}", i / 250, i % 250 + 1).parse().unwrap();
    Alert {
        id: alert_id("test", ip, "kaspersky", AlertKind::FirstContact, None),
        kind: AlertKind::FirstContact,
        event_ms: 1_505_296_805_000 + i64::from(i),
        detected_ms: 1_800_000_000_000,
        sensor: "test".into(),
        period: None,
        subject: Subject {
            host: AlertHost {
                ip,
                vlan: Some(120),
                mac: None,
            },
            vendor: Some("kaspersky".into()),
            vendor_name: Some("Kaspersky".into()),
            place: None,
            purposes: vec!["update".into()],
            evidence: vec!["dns".into()],
            names: vec!["ds.kaspersky.com".into()],
            servers: vec![AlertServer {
                ip: "77.74.178.11".parse().unwrap(),
                country: None,
                city: None,
                asn: None,
                org: None,
                watched: None,
                watch_rule: None,
            }],
            connections: 1,
            dns_queries: 1,
            first_seen_ms: 1_505_296_805_000,
            last_seen_ms: 1_505_296_806_000,
            beacon: None,
        },
    }
}

fn quiet_config(spool: Option<&Path>) -> DeliveryConfig {
    DeliveryConfig {
        spool_dir: spool.map(Path::to_path_buf),
        backoff_max: Duration::from_millis(300),
        warn: Arc::new(|m| eprintln!("(test) {m}")),
        ..DeliveryConfig::default()
    }
}

/// Submits `n` alerts, one every `gap`, calling `at(i)` before alert `i`.
fn feed(d: &Delivery, n: u32, gap: Duration, mut at: impl FnMut(u32)) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for i in 0..n {
        at(i);
        let a = alert(i);
        ids.insert(a.id.clone());
        d.submit(&a);
        std::thread::sleep(gap);
    }
    ids
}

fn duplicates(got: &[String]) -> usize {
    let mut count: BTreeMap<&String, usize> = BTreeMap::new();
    for g in got {
        *count.entry(g).or_default() += 1;
    }
    count.values().map(|c| c - 1).sum()
}

#[test]
fn rsyslog_parses_every_rfc5424_and_cef_message() {
    if !have(RSYSLOGD, "rsyslog") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rs = Rsyslog::start(dir.path());
    let p = rs.port;
    let sinks = [
        format!("syslog+tcp://127.0.0.1:{p}"),
        format!("syslog+udp://127.0.0.1:{p}"),
        format!("cef+tcp://127.0.0.1:{p}"),
        format!("cef+udp://127.0.0.1:{p}"),
    ];
    let jsonl = dir.path().join("alerts.jsonl");
    let jsonl_spec = format!("jsonl:{}", jsonl.display());
    let demo = capture("demo.pcapng").display().to_string();
    let mut args = vec!["analyze", "-q", "-o", "/dev/null", "--sensor", "lab-1"];
    for s in &sinks {
        args.extend(["--alerts", s]);
    }
    args.extend(["--alerts", &jsonl_spec, &demo]);
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ECS documents are the reference for what each message must carry.
    let docs: BTreeMap<String, Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["event"]["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let firsts = docs
        .values()
        .filter(|d| d["event"]["code"] == "first_contact");
    assert_eq!(firsts.count(), 9, "one per host and vendor of the demo");
    let n = docs.len();
    let ids: BTreeSet<String> = docs.keys().cloned().collect();
    let got = wait_for_ids(|| rs.lines().iter().filter_map(received_id).collect(), &ids);
    let lines = rs.lines();
    assert_eq!(
        got.len(),
        4 * n,
        "every sink delivered every alert once: {got:?}"
    );
    let (mut syslog, mut cef) = (BTreeMap::new(), BTreeMap::new());
    for l in &lines {
        // rsyslog's RFC 5424 parser recognised every header field.
        assert_eq!(l["app"], "phonehome", "{l}");
        assert_eq!(l["version"], "1", "{l}");
        assert_eq!(l["hostname"], "lab-1", "{l}");
        // PROCID is the sender's pid.
        assert!(l["procid"].as_str().unwrap().parse::<u32>().unwrap() > 0);
        let msg = l["msg"].as_str().unwrap();
        let id = received_id(l).unwrap();
        let code = docs[&id]["event"]["code"].as_str().unwrap();
        assert_eq!(l["msgid"], code);
        let pri = if code == "reminder" { "133" } else { "132" };
        assert_eq!(l["pri"], pri, "local0.warning, local0.notice for reminders");
        if msg.starts_with("CEF:") {
            let c = &l["parsed"]["cef"];
            let e = &c["Extensions"];
            let id = e["externalId"].as_str().expect("CEF parsed by mmnormalize");
            let doc = &docs[id];
            assert_eq!(c["DeviceVendor"], "phonehome");
            assert_eq!(c["SignatureID"], code);
            assert_eq!(c["Severity"], doc["event"]["severity"].to_string());
            assert_eq!(l["sd"], "-");
            // liblognorm's CEF parser skips one character too many after
            // the header's last `|` (parser.c: cefGetHdrField already
            // steps over it, then "skip over terminal '|'"), so the first
            // extension key `rt` reaches us as `t`.
            assert!(msg.contains("|rt="), "{msg}");
            assert!(e["t"].as_str().unwrap().parse::<i64>().is_ok());
            let ip = &doc["source"]["ip"];
            if ip.as_str().unwrap().contains(':') {
                assert_eq!(e["c6a2"], *ip);
            } else {
                assert_eq!(e["src"], *ip);
            }
            assert_eq!(e["dvchost"], "lab-1");
            assert_eq!(e["cs1"], doc["phonehome"]["vendor"]);
            assert_eq!(e["msg"], doc["message"]);
            assert_eq!(e["dhost"], doc["destination"]["domain"]);
            *cef.entry((id.to_string(), l["input"].clone().to_string()))
                .or_insert(0) += 1;
        } else {
            let sd = &l["parsed"]["rfc5424-sd"]["phonehome@32473"];
            let id = sd["id"]
                .as_str()
                .expect("structured data parsed by mmpstrucdata");
            let doc = &docs[id];
            assert_eq!(sd["kind"], code);
            assert_eq!(sd["host"], doc["source"]["ip"]);
            assert_eq!(sd["event_time"], doc["@timestamp"]);
            // MSG is the ECS document itself (detection time aside).
            let body: Value = serde_json::from_str(msg).unwrap();
            assert_eq!(body["event"]["id"], id);
            assert_eq!(body["source"], doc["source"]);
            assert_eq!(body["threat"], doc["threat"]);
            *syslog
                .entry((id.to_string(), l["input"].clone().to_string()))
                .or_insert(0) += 1;
        }
    }
    assert_eq!(syslog.len(), 2 * n, "every id over TCP and UDP");
    assert_eq!(cef.len(), 2 * n, "every id over TCP and UDP");
}

#[test]
fn cef_and_rfc5424_escaping_survives_rsyslog_parsing() {
    if !have(RSYSLOGD, "rsyslog") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rs = Rsyslog::start(dir.path());
    let mut a = alert(0);
    a.sensor = "sensor=1|\\a".into();
    a.subject.vendor_name = Some("Kasper\"sky] = \\ |Lab|".into());
    a.subject.names = vec!["a=b.example".into(), "c\\d|e].example".into()];
    a.subject.purposes = vec!["x=y".into()];
    let specs: Vec<SinkSpec> = ["cef+tcp", "syslog+tcp"]
        .iter()
        .map(|s| format!("{s}://127.0.0.1:{}", rs.port).parse().unwrap())
        .collect();
    let d = Delivery::start(&specs, &quiet_config(None)).unwrap();
    d.submit(&a);
    let reports = d.close(Duration::from_secs(10));
    assert!(
        reports.iter().all(|r| r.delivered == 1 && r.lost == 0),
        "{reports:?}"
    );
    // One copy per sink (CEF and RFC 5424), of the one id.
    let got = wait_for_copies(|| rs.lines().iter().filter_map(received_id).collect(), 1, 2);
    assert_eq!(got, [a.id.clone(), a.id.clone()]);
    for l in rs.lines() {
        if let Some(e) = l["parsed"]["cef"]["Extensions"].as_object() {
            // Values come back unescaped, keys intact.
            assert_eq!(e["dvchost"], "sensor=1|\\a", "{l}");
            assert_eq!(e["cs4"], "a=b.example,c\\d|e].example");
            assert_eq!(e["cs2"], "x=y");
            assert_eq!(e["msg"], a.message());
        } else {
            let sd = &l["parsed"]["rfc5424-sd"]["phonehome@32473"];
            assert_eq!(sd["id"], a.id.as_str(), "{l}");
            // HOSTNAME keeps only printable ASCII without spaces.
            assert_eq!(l["hostname"], "sensor=1|\\a");
            let body: Value = serde_json::from_str(l["msg"].as_str().unwrap()).unwrap();
            assert_eq!(body["phonehome"]["vendor_name"], "Kasper\"sky] = \\ |Lab|");
        }
    }
}

#[test]
fn tcp_receiver_restarted_mid_run_loses_no_alert() {
    if !have(RSYSLOGD, "rsyslog") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rs = Rsyslog::start(dir.path());
    let spec: SinkSpec = format!("syslog+tcp://127.0.0.1:{}", rs.port)
        .parse()
        .unwrap();
    let spool = dir.path().join("spool");
    let d = Delivery::start(&[spec], &quiet_config(Some(&spool))).unwrap();
    // 5 ms apart: the receiver stops after 1.5 s (the first alerts are
    // confirmed by then, the last second's are not) and is down for 0.4 s.
    let ids = feed(&d, 500, Duration::from_millis(5), |i| {
        if i == 300 {
            rs.stop();
        }
        if i == 380 {
            rs.spawn();
        }
    });
    let reports = d.close(Duration::from_secs(20));
    let r = &reports[0];
    assert_eq!((r.lost, r.spool_bytes_left), (0, 0), "{r:?}");
    assert_eq!(r.delivered, 500, "{r:?}");
    assert!(
        r.resent > 0 && r.resent < 300,
        "only the unconfirmed are resent: {r:?}"
    );
    let got = wait_for_ids(|| rs.lines().iter().filter_map(received_id).collect(), &ids);
    let set: BTreeSet<String> = got.iter().cloned().collect();
    let missing: Vec<_> = ids.difference(&set).collect();
    assert!(
        missing.is_empty(),
        "{} alerts lost: {missing:?}",
        missing.len()
    );
    let dup = duplicates(&got);
    eprintln!(
        "tcp restart: {} received, {dup} duplicates, {} resent",
        got.len(),
        r.resent
    );
    // The contract: duplicates only come from resending unconfirmed alerts.
    assert!(
        dup as u64 <= r.resent,
        "{dup} duplicates > {} resent",
        r.resent
    );
}

#[test]
fn spooled_alerts_go_out_on_the_next_start() {
    if !have(RSYSLOGD, "rsyslog") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let spool = dir.path().join("spool");
    let spool_s = spool.display().to_string();
    let sink = format!("cef+tcp://127.0.0.1:{port}");
    let demo = capture("demo.pcapng").display().to_string();
    let args = [
        "analyze",
        "-q",
        "-o",
        "/dev/null",
        "--sensor",
        "s",
        "--alerts",
        &sink,
        "--spool",
        &spool_s,
        "--alerts-timeout",
        "1",
        &demo,
    ];
    // Nobody listens: the alerts wait in the spool.
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("bytes left in the spool"), "{err}");
    let spool_file = spool.join(format!("cef_tcp___127.0.0.1_{port}.spool"));
    assert!(std::fs::metadata(&spool_file).unwrap().len() > 0);
    // Damage the tail, as a crash in the middle of an append would.
    let len = std::fs::metadata(&spool_file).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&spool_file)
        .unwrap();
    f.set_len(len + 5).unwrap();
    drop(f);
    // The receiver comes up on that port; the next run sends the spool and
    // its own alerts (the same ids: the SIEM drops the duplicates).
    let rs = Rsyslog::start_on(dir.path(), port);
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "corrupt record at offset {len}: torn record header"
        )),
        "{err}"
    );
    assert!(err.contains(".spool"), "{err}");
    let got = wait_for_copies(|| rs.lines().iter().filter_map(received_id).collect(), 9, 2);
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert!(unique.len() >= 9, "{got:?}");
    assert_eq!(
        got.len(),
        2 * unique.len(),
        "each from the spool and from this run"
    );
    assert_eq!(
        std::fs::metadata(&spool_file).unwrap().len(),
        0,
        "spool emptied"
    );
}

/// redis-server on loopback, persisting to an append-only file so that a
/// restart keeps the stream.
struct Redis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        let mut r = Redis {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        wait_for_port(self.port);
        // Wait until it answers (it may still be loading the AOF).
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm(&mut c);
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(REDIS_CLI)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `id` field of every entry of stream `key`.
    fn ids(&self, key: &str) -> Vec<String> {
        let out = self.cli(&["XRANGE", key, "-", "+"]);
        let lines: Vec<&str> = out.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0] == "id")
            .map(|w| w[1].to_string())
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn redis_stream_gets_every_alert_across_a_restart() {
    if !have(REDIS_SERVER, "redis-server") || !have(REDIS_CLI, "redis-tools") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(dir.path());
    let spec: SinkSpec = format!("redis://127.0.0.1:{}/phonehome", redis.port)
        .parse()
        .unwrap();
    let d = Delivery::start(&[spec], &quiet_config(Some(&dir.path().join("spool")))).unwrap();
    let ids = feed(&d, 300, Duration::from_millis(5), |i| {
        if i == 100 {
            redis.stop();
        }
        if i == 180 {
            redis.spawn();
        }
    });
    let reports = d.close(Duration::from_secs(20));
    let r = &reports[0];
    assert_eq!(
        (r.delivered, r.lost, r.spool_bytes_left),
        (300, 0, 0),
        "{r:?}"
    );
    let got = redis.ids("phonehome");
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(set, ids);
    let dup = duplicates(&got);
    eprintln!("redis restart: {} entries, {dup} duplicates", got.len());
    // Redis acknowledges each XADD: a duplicate needs an entry written whose
    // reply was lost, which only the resent alerts can cause.
    assert!(
        dup as u64 <= r.resent,
        "{dup} duplicates > {} resent",
        r.resent
    );
    // Entries carry the ECS document; a consumer group reads them all.
    let out = redis.cli(&["XRANGE", "phonehome", "-", "+", "COUNT", "1"]);
    let doc = out.lines().skip_while(|l| *l != "alert").nth(1).unwrap();
    let v: Value = serde_json::from_str(doc).unwrap();
    assert_eq!(v["event"]["kind"], "alert");
    assert_eq!(
        redis
            .cli(&["XGROUP", "CREATE", "phonehome", "siem", "0"])
            .trim(),
        "OK"
    );
    let read = redis.cli(&[
        "XREADGROUP",
        "GROUP",
        "siem",
        "c1",
        "COUNT",
        "10000",
        "STREAMS",
        "phonehome",
        ">",
    ]);
    assert_eq!(read.lines().filter(|l| *l == "id").count(), got.len());
}

#[test]
fn alert_ids_are_stable_across_runs_and_depend_on_the_sensor() {
    let dir = tempfile::tempdir().unwrap();
    let demo = capture("demo.pcapng").display().to_string();
    let ids = |sensor: &str, file: &str| -> Vec<String> {
        let path = dir.path().join(file);
        let spec = format!("jsonl:{}", path.display());
        let out = run(&[
            "analyze",
            "-q",
            "-o",
            "/dev/null",
            "--sensor",
            sensor,
            "--alerts",
            &spec,
            "--remind-every",
            "30m",
            "--suppress",
            "0",
            &demo,
        ]);
        assert_eq!(out.status.code(), Some(0));
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                format!("{} {}", v["event"]["code"], v["event"]["id"])
            })
            .collect()
    };
    let a = ids("a", "1.jsonl");
    assert_eq!(a, ids("a", "2.jsonl"));
    // The demo spans almost two hours: the busiest host gets a reminder.
    assert!(a.iter().any(|l| l.starts_with("\"reminder\"")), "{a:?}");
    assert_eq!(
        a.iter()
            .filter(|l| l.starts_with("\"first_contact\""))
            .count(),
        9
    );
    let b = ids("b", "3.jsonl");
    assert_eq!(a.len(), b.len());
    assert!(a.iter().zip(&b).all(|(x, y)| x != y));
}

/// A CA and a server certificate for 127.0.0.1 and localhost, made with the
/// openssl command; None (test skipped) without it.
fn make_certs(dir: &Path) -> Option<()> {
    if !have("/usr/bin/openssl", "openssl") {
        return None;
    }
    let ssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl {args:?}");
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=phonehome test CA",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    // A second CA that signed nothing here.
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-days",
        "2",
        "-subj",
        "/CN=someone else",
    ]);
    Some(())
}

fn have_gnutls_driver() -> bool {
    let ok = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "rsyslog-gnutls"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: rsyslog's TLS driver is missing (apt-get install rsyslog-gnutls)");
    }
    ok
}

#[test]
fn tls_syslog_verifies_the_receiver_and_survives_its_restart() {
    if !have(RSYSLOGD, "rsyslog") || !have_gnutls_driver() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    if make_certs(certs.path()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rs = Rsyslog::start_with(dir.path(), free_port(), Some(certs.path()));
    let ca = certs.path().join("ca.pem").display().to_string();
    let other = certs.path().join("other.pem").display().to_string();
    let demo = capture("demo.pcapng").display().to_string();
    // A receiver whose certificate the given CA did not sign gets nothing.
    let sink = format!("syslog+tls://127.0.0.1:{}", rs.port);
    let out = run(&[
        "analyze",
        "-q",
        "-o",
        "/dev/null",
        "--alerts",
        &sink,
        "--syslog-ca",
        &other,
        "--alerts-timeout",
        "1",
        &demo,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("UnknownIssuer") && err.contains(": 0 delivered"),
        "{err}"
    );
    // By IP address and by name, with the right CA: everything arrives, and
    // rsyslog parses it.
    for host in ["127.0.0.1", "localhost"] {
        let sink = format!("syslog+tls://{host}:{}", rs.port);
        let out = run(&[
            "analyze",
            "-q",
            "-o",
            "/dev/null",
            "--alerts",
            &sink,
            "--syslog-ca",
            &ca,
            &demo,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = wait_for_copies(|| rs.lines().iter().filter_map(received_id).collect(), 9, 2);
    let n = got.iter().collect::<BTreeSet<_>>().len();
    assert!(n >= 9, "{got:?}");
    assert_eq!(got.len(), 2 * n, "{got:?}");
    // A restart in the middle of a stream of alerts loses none.
    let spec: SinkSpec = sink.parse().unwrap();
    let mut cfg = quiet_config(Some(&dir.path().join("spool")));
    cfg.sink_options.ca_file = Some(PathBuf::from(&ca));
    let d = Delivery::start(&[spec], &cfg).unwrap();
    let ids = feed(&d, 300, Duration::from_millis(5), |i| {
        if i == 150 {
            rs.stop();
        }
        if i == 220 {
            rs.spawn();
        }
    });
    let r = d.close(Duration::from_secs(20)).remove(0);
    assert_eq!(
        (r.delivered, r.lost, r.spool_bytes_left),
        (300, 0, 0),
        "{r:?}"
    );
    let got = wait_for_ids(|| rs.lines().iter().filter_map(received_id).collect(), &ids);
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert!(ids.is_subset(&set), "{} lost", ids.difference(&set).count());
    // n duplicates come from the two CLI runs above.
    let dup = duplicates(&got) - n;
    eprintln!("tls restart: {dup} duplicates, {} resent", r.resent);
    assert!(
        dup as u64 <= r.resent,
        "{dup} duplicates > {} resent",
        r.resent
    );
}

/// Measurement, not a check of behaviour: alerts per second through each
/// transport to a real receiver (`cargo test --release --test integration
/// siem::throughput -- --ignored --nocapture`).
#[test]
#[ignore]
fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let rs = Rsyslog::start(dir.path());
    let redis = Redis::start(&dir.path().join("redis").tap_mkdir());
    let n = 20_000;
    for spec in [
        format!("jsonl:{}", dir.path().join("a.jsonl").display()),
        format!("syslog+tcp://127.0.0.1:{}", rs.port),
        format!("cef+tcp://127.0.0.1:{}", rs.port),
        format!("redis://127.0.0.1:{}/bench", redis.port),
    ] {
        let spec: SinkSpec = spec.parse().unwrap();
        let mut cfg = quiet_config(None);
        cfg.queue = n as usize;
        let d = Delivery::start(std::slice::from_ref(&spec), &cfg).unwrap();
        let t = Instant::now();
        for i in 0..n {
            d.submit(&alert(i));
        }
        let submit = t.elapsed();
        let r = d.close(Duration::from_secs(120)).remove(0);
        let all = t.elapsed();
        assert_eq!(r.delivered, u64::from(n));
        eprintln!(
            "{spec}: {n} alerts, submit {:.1} us each, delivered at {:.0}/s",
            submit.as_secs_f64() * 1e6 / f64::from(n),
            f64::from(n) / all.as_secs_f64()
        );
    }
    // The spool: append and read back.
    let mut spool =
        phonehome::alerts::spool::Spool::open(&dir.path().join("sp"), "b", 1 << 32).unwrap();
    let t = Instant::now();
    for i in 0..n {
        spool.append(&alert(i)).unwrap();
    }
    let append = t.elapsed();
    let t = Instant::now();
    let mut read = 0;
    while spool.read_next().unwrap().is_some() {
        read += 1;
    }
    assert_eq!(read, n);
    eprintln!(
        "spool: append {:.1} us, read {:.1} us per alert",
        append.as_secs_f64() * 1e6 / f64::from(n),
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn a_simulated_day_raises_beacon_and_reminder_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("day.pcapng");
    let (cb, _truth) = phonehome_synth::day::build();
    cb.write_pcapng(&path).unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let spec = format!("jsonl:{}", alerts.display());
    let report = dir.path().join("report.json");
    let out = run(&[
        "analyze",
        "-q",
        "--format",
        "json",
        "-o",
        &report.display().to_string(),
        "--sensor",
        "day",
        "--alerts",
        &spec,
        "--remind-every",
        "6h",
        &path.display().to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let docs: Vec<Value> = std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |code: &str, host: &str| -> Vec<&Value> {
        docs.iter()
            .filter(|d| d["event"]["code"] == code && d["source"]["ip"] == host)
            .collect()
    };
    // One first contact per (host, vendor) of the report.
    let contacts: usize = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["contacts"].as_array().unwrap().len())
        .sum();
    let firsts = docs
        .iter()
        .filter(|d| d["event"]["code"] == "first_contact");
    assert_eq!(firsts.count(), contacts);
    // The agent's beacon: the report's figures, at the time it was confirmed.
    let agent = crate::util::contact(&report, "10.30.0.5", "kaspersky").unwrap();
    let beacon = of("beacon_confirmed", "10.30.0.5");
    assert_eq!(beacon.len(), 1, "{docs:?}");
    let b = &beacon[0]["phonehome"]["beacon"];
    assert_eq!(b["period_s"], agent["beacon"]["period_s"]);
    assert_eq!(b["count"], agent["beacon"]["count"]);
    let confirmed = agent["beacon"]["confirmed_at"].as_str().unwrap();
    assert_eq!(
        beacon[0]["@timestamp"]
            .as_str()
            .unwrap()
            .replace(".000Z", "Z"),
        confirmed
    );
    assert!(beacon[0]["message"].as_str().unwrap().contains("every"));
    // Still phoning home at the end of the day: one reminder for its last
    // 6-hour period, whose index is in the alert.
    let reminders = of("reminder", "10.30.0.5");
    assert_eq!(reminders.len(), 1, "{docs:?}");
    let last = phonehome::alerts::model::parse_rfc3339_ms(agent["last_seen"].as_str().unwrap());
    assert_eq!(
        reminders[0]["phonehome"]["period"].as_i64(),
        last.map(|ms| ms.div_euclid(6 * 3_600_000))
    );
}

#[test]
fn watched_place_contacts_raise_alerts_with_geo_and_asn() {
    use phonehome_synth::mmdb::{CitySchema, asn_db, city_db};
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    phonehome_synth::geo::write_capture(p("geo.pcapng")).unwrap();
    let city = phonehome_synth::geo::city_records();
    std::fs::write(
        p("city.mmdb"),
        city_db(CitySchema::GeoIp2City, &city).unwrap(),
    )
    .unwrap();
    let asn = asn_db(&phonehome_synth::geo::asn_records()).unwrap();
    std::fs::write(p("asn.mmdb"), asn).unwrap();
    let spec = format!("jsonl:{}", p("alerts.jsonl").display());
    let out = run(&[
        "analyze",
        "-q",
        "-o",
        "/dev/null",
        "--sensor",
        "geo",
        "--geoip",
        &p("city.mmdb").display().to_string(),
        "--asn",
        &p("asn.mmdb").display().to_string(),
        "--alerts",
        &spec,
        &p("geo.pcapng").display().to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = std::fs::read_to_string(p("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let watched: Vec<&Value> = docs
        .iter()
        .filter(|d| d["event"]["code"] == "first_contact" && d["phonehome"]["vendor"].is_null())
        .collect();
    // 10.30.0.5, .8, .9 and 2001:db8:30::5 contact servers in Moscow.
    assert_eq!(watched.len(), 4, "{docs:#?}");
    let d = watched
        .iter()
        .find(|d| d["source"]["ip"] == "10.30.0.5")
        .expect("the unknown Moscow beacon");
    assert_eq!(d["phonehome"]["place"], "RU/Moscow");
    assert_eq!(d["destination"]["ip"], "203.0.113.77");
    assert_eq!(d["destination"]["geo"]["country_iso_code"], "RU");
    assert_eq!(d["destination"]["geo"]["city_name"], "Moscow");
    assert_eq!(d["destination"]["as"]["number"], 64500);
    assert_eq!(
        d["destination"]["as"]["organization"]["name"],
        "Example Moscow Hosting"
    );
    assert_eq!(d["threat"]["indicator"]["type"], "ipv4-addr");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("watched place RU/Moscow"),
        "{d}"
    );
    // Its id is keyed on the place and the server: stable, and distinct
    // from every other alert.
    let ip: IpAddr = "10.30.0.5".parse().unwrap();
    let want = alert_id(
        "geo",
        ip,
        "place:RU/Moscow@203.0.113.77",
        AlertKind::FirstContact,
        None,
    );
    assert_eq!(d["event"]["id"], want.as_str());
    let ids: BTreeSet<&str> = docs
        .iter()
        .map(|d| d["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), docs.len());
}
