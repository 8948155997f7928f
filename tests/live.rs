//! Live capture on real interfaces. Each test creates two network
//! namespaces joined by a veth pair (iproute2), replays a capture with
//! tcpreplay from one namespace into the veth, and runs `phonehome live` on
//! the other end; its alerts and final report must equal those of
//! `phonehome analyze` on the same file. Traffic stays between the two
//! namespaces, which a guard removes afterwards, also when a test fails.
//!
//! What is compared, and why not everything: tcpreplay sends the packets
//! now, at a fixed rate, so every capture timestamp differs from the file's
//! (`ts`, `first_seen`, `last_seen`, the summary's times, and what is
//! computed from times: connection-time samples and beacon periods), and the packet
//! count differs where the kernel reassembles IP fragments before fanout
//! (two fragments arrive as one datagram). Hosts, contacts (vendor,
//! purposes, evidence, names, servers, connections, DNS queries, rules) and
//! alerts (id, host, vendor, purposes, evidence, names, servers) must be
//! equal. IPv6 is disabled on the veth ends so the namespaces' own neighbour
//! discovery does not add packets.
//!
//! These tests need root (namespaces, raw sockets), `ip` and `tcpreplay`;
//! without them they print why and pass. CI runs as root with both
//! installed (.ci/run), so they run there.

use crate::util::{capture, root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces and raw sockets need root)".into());
    }
    for tool in ["ip", "tcpreplay"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "{tool} is not installed (apt-get install iproute2 tcpreplay)"
            ));
        }
    }
    None
}

macro_rules! need_root {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live capture test: {why}");
            return;
        }
    };
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Two namespaces joined by a veth pair; removed on drop.
struct Netns {
    a: String,
    b: String,
    va: String,
    vb: String,
}

impl Netns {
    fn new() -> Netns {
        Netns::with_queues(1)
    }

    /// With `queues` receive and transmit queues on each veth end.
    fn with_queues(queues: u32) -> Netns {
        let n = format!(
            "{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let ns = Netns {
            a: format!("phA{n}"),
            b: format!("phB{n}"),
            va: format!("pa{n}"),
            vb: format!("pb{n}"),
        };
        // The guard exists before anything is created, so a failure below
        // still removes what was made.
        sh(&["ip", "netns", "add", &ns.a]);
        sh(&["ip", "netns", "add", &ns.b]);
        let q = queues.to_string();
        let mut add = vec!["ip", "link", "add", &ns.va];
        let per_end = ["numtxqueues", &q, "numrxqueues", &q];
        if queues > 1 {
            add.extend(per_end);
        }
        add.extend(["type", "veth", "peer", "name", &ns.vb]);
        if queues > 1 {
            add.extend(per_end);
        }
        sh(&add);
        sh(&["ip", "link", "set", &ns.va, "netns", &ns.a]);
        sh(&["ip", "link", "set", &ns.vb, "netns", &ns.b]);
        for (space, dev) in [(&ns.a, &ns.va), (&ns.b, &ns.vb)] {
            let knob = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
            sh(&["ip", "netns", "exec", space, "sysctl", "-qw", &knob]);
            sh(&["ip", "-n", space, "link", "set", dev, "mtu", "9000", "up"]);
        }
        ns
    }

    /// Replays `file` into the veth from namespace A at `pps` packets/s.
    fn replay(&self, file: &Path, pps: u32) {
        let pps = format!("--pps={pps}");
        let f = file.display().to_string();
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.a,
            "tcpreplay",
            "-q",
            "-i",
            &self.va,
            &pps,
            &f,
        ]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it (and its peer).
        for space in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", space]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.va]).output();
    }
}

/// A running sensor.
struct Sensor {
    child: Child,
    dir: PathBuf,
}

impl Sensor {
    fn start(ns: &Netns, dir: &Path, extra: &[&str]) -> Sensor {
        Sensor::start_as(ns, dir, &[env!("CARGO_BIN_EXE_phonehome")], extra)
    }

    /// Starts `command` (the binary, maybe behind a wrapper) with `live`.
    fn start_as(ns: &Netns, dir: &Path, command: &[&str], extra: &[&str]) -> Sensor {
        let d = |name: &str| dir.join(name).display().to_string();
        let mut args: Vec<String> = vec!["netns".into(), "exec".into(), ns.b.clone()];
        args.extend(command.iter().map(|s| s.to_string()));
        args.extend([
            "live".into(),
            "-i".into(),
            ns.vb.clone(),
            "-j".into(),
            "2".into(),
            "--alerts".into(),
            d("alerts.jsonl"),
            "--report".into(),
            d("report.json"),
            "--format".into(),
            "json".into(),
            "--state".into(),
            d("state.json"),
            "--html".into(),
            d("report.html"),
            "--alerts".into(),
            format!("jsonl:{}", d("ecs.jsonl")),
            "--sensor".into(),
            "test-sensor".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("ip")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr file"))
            .spawn()
            .expect("start phonehome live");
        let s = Sensor {
            child,
            dir: dir.to_path_buf(),
        };
        s.wait_for("capturing on");
        s
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Waits until standard error contains `what`.
    fn wait_for(&self, what: &str) {
        let t = Instant::now();
        while !self.stderr().contains(what) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "sensor never said {what:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        sh(&["kill", sig, &self.child.id().to_string()]);
    }

    /// The status lines of the sensor process (`Uid:`, `CapEff:`).
    fn proc_status(&self, key: &str) -> String {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// SIGINT, then the exit status.
    fn stop(mut self) -> (i32, String) {
        self.signal("-INT");
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return (st.code().unwrap_or(-1), self.stderr());
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("sensor did not stop on SIGINT; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A temporary folder the unprivileged sensor can write to.
fn workdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    d
}

/// What must be equal in two reports: every contact without its times.
fn contacts(report: &Value) -> Vec<Value> {
    contacts_ordered(report, true)
}

/// [`contacts`]; with `rule_order` false, each contact's matched rules are
/// compared as a set (their order is the order evidence arrived in).
fn contacts_ordered(report: &Value, rule_order: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for h in report["hosts"].as_array().expect("hosts") {
        for c in h["contacts"].as_array().expect("contacts") {
            let mut c = c.clone();
            let o = c.as_object_mut().expect("contact object");
            // Times, and what is computed from them (connection time
            // samples, beacon periods): tcpreplay sends at its own pace.
            for key in [
                "first_seen",
                "last_seen",
                "connection_times",
                "connection_times_every",
                "beacon",
            ] {
                o.remove(key);
            }
            o.insert("host".into(), h["ip"].clone());
            o.insert("vlan".into(), h["vlan"].clone());
            o.insert("mac".into(), h["mac"].clone());
            if !rule_order && let Some(Value::Array(rules)) = o.get_mut("rules") {
                rules.sort_by_key(|r| r.to_string());
            }
            out.push(c);
        }
    }
    out
}

/// Alerts without their time, sorted by id.
fn alerts(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut v: Vec<Value> = text
        .lines()
        .map(|l| {
            let mut a: Value = serde_json::from_str(l).expect("alert line is JSON");
            a.as_object_mut().expect("alert object").remove("ts");
            a
        })
        .collect();
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    v
}

/// `analyze` on `file`: its report and alerts.
fn offline(file: &Path, dir: &Path, extra: &[&str]) -> (Value, Vec<Value>) {
    let report = dir.join("offline.json");
    let al = dir.join("offline-alerts.jsonl");
    let (r, a) = (report.display().to_string(), al.display().to_string());
    let f = file.display().to_string();
    let ecs = format!("jsonl:{}", dir.join("offline-ecs.jsonl").display());
    let mut args = vec![
        "analyze",
        "-q",
        "--format",
        "json",
        "-o",
        &r,
        "--alerts",
        &a,
        "--alerts",
        &ecs,
        "--sensor",
        "test-sensor",
    ];
    args.extend_from_slice(extra);
    args.push(&f);
    let out = crate::util::run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    (report, alerts(&al))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("file")).expect("JSON")
}

/// Runs live with `extra` flags while the demo capture is replayed, and
/// checks it against `analyze`. `one_stream`: a single capture socket, so
/// each host's packets reach its worker in wire order and even the order of
/// matched rules must be the same; with a fanout of several sockets a
/// host's connections can interleave differently (README, "Live capture").
fn live_equals_analyze(extra: &[&str], one_stream: bool) -> String {
    live_equals_analyze_on(Netns::new(), extra, one_stream)
}

/// [`live_equals_analyze`] on `ns`; returns the sensor's standard error.
fn live_equals_analyze_on(ns: Netns, extra: &[&str], one_stream: bool) -> String {
    let demo = capture("demo.pcapng");
    let dir = workdir();
    let sensor = Sensor::start(&ns, dir.path(), extra);
    // Privileges are gone before the first packet is parsed.
    assert_eq!(
        sensor.proc_status("Uid:").split_whitespace().next(),
        Some("65534"),
        "runs as nobody"
    );
    assert_eq!(sensor.proc_status("CapEff:"), "0000000000000000");
    // Several sockets: packets well apart (33 ms) compared with a ring
    // block's retire time (10 ms) plus the dispatchers' flush time (5 ms),
    // so that a DNS answer reaches the worker before the connection it
    // names even when a capture thread waits a little for a core.
    ns.replay(&demo, if one_stream { 400 } else { 30 });
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr) = sensor.stop();
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let live = read_json(&dir.path().join("report.json"));
    let (offline_report, offline_alerts) = offline(&demo, dir.path(), &[]);
    let (want, got) = (
        contacts_ordered(&offline_report, one_stream),
        contacts_ordered(&live, one_stream),
    );
    assert!(want.len() >= 9, "the demo has contacts: {want:?}");
    assert_eq!(got, want, "live contacts differ from analyze");
    // Every DNS message counted, also those the capture threads count
    // themselves instead of handing them over (no rule named).
    for counter in ["dns_messages", "dns_anomalies", "dns_queries_without_flow"] {
        assert_eq!(
            live["summary"][counter], offline_report["summary"][counter],
            "{counter}"
        );
    }
    // Beacon alerts depend on timing, which the replay compresses (the
    // demo's 5-minute beacon becomes milliseconds): first contacts only.
    let first = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .filter(|a| a["kind"] == "first_contact")
            .collect()
    };
    let live_alerts = first(alerts(&dir.path().join("alerts.jsonl")));
    assert_eq!(
        live_alerts.len(),
        want.len(),
        "one first-contact alert per contact"
    );
    assert_eq!(
        live_alerts,
        first(offline_alerts),
        "live alerts differ from analyze"
    );
    let cap = &live["summary"]["capture"];
    assert!(cap["received"].as_u64() >= Some(455), "{cap}");
    assert_eq!(cap["kernel_drops"], 0, "{cap}");
    assert!(
        cap["queue_drops"]
            .as_array()
            .expect("per worker")
            .iter()
            .all(|d| d == 0),
        "{cap}"
    );
    // The SIEM sink (ECS JSON Lines, fed from the summaries) got the same
    // first-contact alerts, with the same ids, as analyze's.
    let ecs_ids = |name: &str| -> Vec<String> {
        let mut ids: Vec<String> = alerts(&dir.path().join(name))
            .into_iter()
            .filter(|a| a["event"]["action"] == "first_contact")
            .filter_map(|a| a["event"]["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    let live_ecs = ecs_ids("ecs.jsonl");
    assert_eq!(live_ecs.len(), want.len(), "one SIEM alert per contact");
    assert_eq!(live_ecs, ecs_ids("offline-ecs.jsonl"));
    // The HTML page of the final summary embeds the same report.
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("HTML report");
    assert!(html.contains("Content-Security-Policy"), "a phonehome page");
    assert!(html.contains("10.20.0.5"), "with the demo's hosts");
    // The state file holds the same hosts.
    let state = read_json(&dir.path().join("state.json"));
    assert_eq!(state["format"], "phonehome-state");
    assert_eq!(
        state["hosts"].as_array().map(Vec::len),
        offline_report["hosts"].as_array().map(Vec::len)
    );
    stderr
}

#[test]
fn afpacket_equals_analyze() {
    need_root!();
    live_equals_analyze(&["--method", "afpacket"], true);
}

#[test]
fn afpacket_fanout_of_two_sockets_equals_analyze() {
    need_root!();
    live_equals_analyze(&["--method", "afpacket", "--capture-threads", "2"], false);
}

#[test]
fn pcap_equals_analyze() {
    need_root!();
    live_equals_analyze(&["--method", "pcap"], true);
}

#[test]
fn metrics_are_served_while_capturing() {
    need_root!();
    let demo = capture("demo.pcapng");
    let dir = workdir();
    let ns = Netns::new();
    // A new namespace's loopback starts down.
    sh(&["ip", "-n", &ns.b, "link", "set", "lo", "up"]);
    let sensor = Sensor::start(
        &ns,
        dir.path(),
        &["--report-every", "1", "--metrics", "127.0.0.1:9469"],
    );
    ns.replay(&demo, 400);
    // A summary (every second) refreshes the figures.
    std::thread::sleep(Duration::from_millis(2500));
    // Scraped from inside the sensor's namespace, with bash's /dev/tcp.
    let scrape = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.b,
            "bash",
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/9469; \
             printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3; cat <&3",
        ])
        .output()
        .expect("scrape");
    let body = String::from_utf8_lossy(&scrape.stdout).to_string();
    // The last periodic summary (written atomically while running) counts
    // every DNS message, those the capture threads counted themselves too.
    let running = read_json(&dir.path().join("report.json"));
    let (code, stderr) = sensor.stop();
    assert_eq!(code, 0, "{stderr}");
    let (offline_report, _) = offline(&demo, dir.path(), &[]);
    for counter in ["dns_messages", "dns_queries_without_flow"] {
        assert_eq!(
            running["summary"][counter], offline_report["summary"][counter],
            "{counter} in a summary while running"
        );
    }
    assert!(
        body.starts_with("HTTP/1."),
        "{body}\n{}\n{stderr}",
        String::from_utf8_lossy(&scrape.stderr)
    );
    let packets = body
        .lines()
        .find_map(|l| l.strip_prefix("phonehome_packets_total "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(packets >= Some(455), "{body}");
    assert!(body.contains("\nphonehome_drops_total 0\n"), "{body}");
}

#[test]
fn bpf_filter_is_applied_in_the_kernel() {
    need_root!();
    for method in ["afpacket", "pcap"] {
        let demo = capture("demo.pcapng");
        let dir = workdir();
        let ns = Netns::new();
        // Only DNS: contacts made by names in DNS only.
        let sensor = Sensor::start(
            &ns,
            dir.path(),
            &["--method", method, "--bpf", "udp port 53"],
        );
        ns.replay(&demo, 400);
        std::thread::sleep(Duration::from_millis(500));
        let (code, stderr) = sensor.stop();
        assert_eq!(code, 0, "{stderr}");
        let live = read_json(&dir.path().join("report.json"));
        assert_eq!(live["summary"]["tls_client_hellos"], 0, "{method}");
        assert!(
            live["summary"]["dns_messages"].as_u64() > Some(0),
            "{method}"
        );
        let (all, _) = offline(&demo, dir.path(), &[]);
        let received = live["summary"]["capture"]["received"].as_u64().unwrap_or(0);
        let total = all["summary"]["packets"].as_u64().unwrap_or(0);
        assert!(
            received > 0 && received < total / 2,
            "{method}: {received} of {total}"
        );
    }
}

/// AF_XDP in `mode` equals analyze; the program is attached in that mode
/// while the sensor runs and gone after it exits.
#[cfg(feature = "afxdp")]
fn afxdp_equals_analyze(mode: &str) {
    let stderr = live_equals_analyze(&["--method", "afxdp", "--xdp-mode", mode], true);
    assert!(
        stderr.contains(&format!("queue 0: AF_XDP, {mode} mode")),
        "{stderr}"
    );
    // The per-queue XDP counters at exit: nothing dropped or invalid.
    let last = stderr
        .lines()
        .rfind(|l| l.contains("XDP_STATISTICS"))
        .expect("XDP statistics at exit");
    for counter in [
        "rx_dropped 0",
        "rx_ring_full 0",
        "rx_fill_ring_empty_descs 0",
        "rx_invalid_descs 0",
    ] {
        assert!(last.contains(counter), "{last}");
    }
}

#[cfg(feature = "afxdp")]
#[test]
fn afxdp_native_mode_equals_analyze() {
    need_root!();
    afxdp_equals_analyze("native");
}

#[cfg(feature = "afxdp")]
#[test]
fn afxdp_skb_mode_equals_analyze() {
    need_root!();
    afxdp_equals_analyze("skb");
}

/// A veth with two receive queues: one socket per queue, both used (the
/// sender hashes flows over its queues), and the result equals analyze's
/// as with a fanout of two sockets.
#[cfg(feature = "afxdp")]
#[test]
fn afxdp_one_socket_per_queue_equals_analyze() {
    need_root!();
    let stderr = live_equals_analyze_on(
        Netns::with_queues(2),
        &["--method", "afxdp", "--xdp-mode", "native"],
        false,
    );
    assert!(stderr.contains("(2 socket(s)"), "{stderr}");
    let lent = |q: u32| -> u64 {
        stderr
            .lines()
            .rfind(|l| l.contains(&format!("queue {q}: AF_XDP")))
            .and_then(|l| l.split("; ").nth(1))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(lent(0) > 0 && lent(1) > 0, "{stderr}");
    assert_eq!(lent(0) + lent(1), 456, "{stderr}");
}

/// The XDP program is attached while the sensor runs and detached when it
/// exits; the BPF filter runs in user space with the same effect as in the
/// kernel.
#[cfg(feature = "afxdp")]
#[test]
fn afxdp_detaches_on_exit_and_filters_in_user_space() {
    need_root!();
    let demo = capture("demo.pcapng");
    let dir = workdir();
    let ns = Netns::new();
    let xdp_attached = || {
        let out = Command::new("ip")
            .args(["-n", &ns.b, "link", "show", &ns.vb])
            .output()
            .expect("ip link show");
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    };
    assert!(!xdp_attached());
    let sensor = Sensor::start(
        &ns,
        dir.path(),
        &["--method", "afxdp", "--bpf", "udp port 53"],
    );
    assert!(xdp_attached(), "the program is attached while capturing");
    ns.replay(&demo, 400);
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr) = sensor.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(!xdp_attached(), "the program is detached at exit");
    let live = read_json(&dir.path().join("report.json"));
    assert_eq!(live["summary"]["tls_client_hellos"], 0);
    let (all, _) = offline(&demo, dir.path(), &[]);
    let total = all["summary"]["packets"].as_u64().unwrap_or(0);
    let received = live["summary"]["capture"]["received"].as_u64().unwrap_or(0);
    let lent = live["summary"]["packets"].as_u64().unwrap_or(0);
    assert!(
        received > 0 && received < total / 2 && lent == received,
        "{received} received, {lent} analysed, of {total}; {stderr}"
    );
    // Exactly the packets libpcap's own filter passes, reading the file.
    let mut file = pcap::Capture::from_file(&demo).expect("libpcap reads the demo");
    file.filter("udp port 53", true).expect("filter");
    let mut matching = 0;
    while file.next_packet().is_ok() {
        matching += 1;
    }
    assert_eq!(received, matching, "{stderr}");
    assert!(live["summary"]["dns_messages"].as_u64() > Some(0));
    assert!(
        stderr.contains(&format!("{} rejected by the filter", total - received)),
        "{stderr}"
    );
}

/// Frames longer than one UMEM frame (4096 bytes) arrive in several
/// descriptors and are gathered whole: an HTTP request whose Host header
/// sits after 5,000 and after 8,000 bytes of other headers, each in one
/// jumbo TCP segment (the veth MTU is 9000), is attributed as offline.
#[cfg(feature = "afxdp")]
#[test]
fn afxdp_gathers_jumbo_frames() {
    use phonehome_synth::http;
    use phonehome_synth::session::{CaptureBuilder, Link, MILLI, SECOND, TcpConn};
    need_root!();
    let dir = workdir();
    let mut cb = CaptureBuilder::new(Link::Ethernet { vlans: vec![] });
    let mut ts = 1_700_000_000 * SECOND;
    for (i, (pad, host)) in [(5000, "ds.kaspersky.com"), (8000, "update.eset.com")]
        .into_iter()
        .enumerate()
    {
        let client = format!("10.9.0.{}:4000{i}", 5 + i).parse().expect("addr");
        let server = "198.51.100.7:80".parse().expect("addr");
        let mut c = TcpConn::new(client, server, 1000, 9000);
        ts = c.handshake(&mut cb, ts);
        let padding = "a".repeat(pad);
        let req = http::request(
            "GET",
            "/",
            None,
            None,
            &[("X-Pad", &padding), ("Host", host)],
        );
        ts = c.client_send(&mut cb, ts, &req);
        ts = c.close(&mut cb, ts) + 10 * MILLI;
    }
    let file = dir.path().join("jumbo.pcap");
    cb.write_pcap(&file, Default::default(), Default::default())
        .expect("write capture");
    let ns = Netns::new();
    for mode in ["native", "skb"] {
        let run = dir.path().join(mode);
        std::fs::create_dir(&run).expect("dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let sensor = Sensor::start(&ns, &run, &["--method", "afxdp", "--xdp-mode", mode]);
        ns.replay(&file, 200);
        std::thread::sleep(Duration::from_millis(500));
        let (code, stderr) = sensor.stop();
        assert_eq!(code, 0, "{stderr}");
        let live = read_json(&run.join("report.json"));
        let (offline_report, _) = offline(&file, &run, &[]);
        let want = contacts(&offline_report);
        assert_eq!(want.len(), 2, "{want:?}");
        assert_eq!(contacts(&live), want, "{mode}: {stderr}");
        assert_eq!(
            live["summary"]["bytes"], offline_report["summary"]["bytes"],
            "{mode}"
        );
        assert_eq!(live["summary"]["truncated_packets"], 0, "{mode}");
    }
}

/// Without the `afxdp` feature, `--method afxdp` stops with a message
/// that says so (no root needed: it fails before any socket is opened).
#[cfg(not(feature = "afxdp"))]
#[test]
fn afxdp_without_the_feature_says_so() {
    let out = crate::util::run(&[
        "live",
        "-i",
        "lo",
        "--method",
        "afxdp",
        "--alerts",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("built without AF_XDP support") && err.contains("--features afxdp"),
        "{err}"
    );
}

/// A replacement ESET feed that matches nothing in the demo.
const ESET_NOTHING: &str = r#"
[vendor]
id = "eset"
name = "ESET"

[[rule]]
exact = ["nothing.invalid"]
purpose = "update"
confidence = "community"
source = "https://example.invalid/"
"#;

#[test]
fn sighup_reloads_feeds_and_keeps_the_old_ones_when_broken() {
    need_root!();
    let demo = capture("demo.pcapng");
    let dir = workdir();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir(&feeds).expect("feeds dir");
    std::fs::write(feeds.join("eset.toml"), ESET_NOTHING).expect("feed");
    let ns = Netns::new();
    let fd = feeds.display().to_string();
    let sensor = Sensor::start(&ns, dir.path(), &["--feeds", &fd]);
    // A broken feed is refused, with the reason.
    std::fs::write(feeds.join("eset.toml"), "[vendor]\nid = \n").expect("feed");
    sensor.signal("-HUP");
    sensor.wait_for("feeds NOT reloaded");
    assert!(
        sensor.stderr().contains("eset.toml:2:"),
        "{}",
        sensor.stderr()
    );
    // The real feed is taken.
    std::fs::copy(root().join("feeds/eset.toml"), feeds.join("eset.toml")).expect("copy");
    sensor.signal("-HUP");
    sensor.wait_for("feeds reloaded");
    ns.replay(&demo, 400);
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr) = sensor.stop();
    assert_eq!(code, 0, "{stderr}");
    let live = read_json(&dir.path().join("report.json"));
    let (offline_report, _) = offline(&demo, dir.path(), &[]);
    assert_eq!(contacts(&live), contacts(&offline_report));
    assert!(crate::util::contact(&live, "2001:db8:20::15", "eset").is_some());
}

#[test]
fn history_survives_a_restart_without_new_alerts() {
    need_root!();
    let demo = capture("demo.pcapng");
    let dir = workdir();
    let ns = Netns::new();
    let sensor = Sensor::start(&ns, dir.path(), &[]);
    ns.replay(&demo, 400);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sensor.stop().0, 0);
    let first = read_json(&dir.path().join("report.json"));
    let first_alerts = alerts(&dir.path().join("alerts.jsonl"));
    assert!(!first_alerts.is_empty());
    let ecs_lines = |path: &Path| -> usize {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    };
    assert!(
        ecs_lines(&dir.path().join("ecs.jsonl")) > 0,
        "SIEM alerts before the restart"
    );
    // Restart with the same state: the hosts are known before any packet.
    std::fs::remove_file(dir.path().join("alerts.jsonl")).expect("rm");
    std::fs::remove_file(dir.path().join("report.json")).expect("rm");
    std::fs::remove_file(dir.path().join("ecs.jsonl")).expect("rm");
    let sensor = Sensor::start(&ns, dir.path(), &["--report-every", "1"]);
    // The first periodic summary (after a second; later on a loaded machine).
    let t = Instant::now();
    while !dir.path().join("report.json").exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "no periodic report");
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = read_json(&dir.path().join("report.json"));
    let hosts = |r: &Value| -> Vec<Value> {
        r["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .map(|h| h["ip"].clone())
            .collect()
    };
    assert_eq!(hosts(&during), hosts(&first), "history loaded");
    // The same traffic again raises no first-contact alert.
    ns.replay(&demo, 400);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sensor.stop().0, 0);
    assert!(alerts(&dir.path().join("alerts.jsonl")).is_empty());
    // Nor to the SIEM sink: its tracker was primed with the history.
    assert_eq!(
        ecs_lines(&dir.path().join("ecs.jsonl")),
        0,
        "SIEM alerts again after the restart"
    );
    let second = read_json(&dir.path().join("report.json"));
    let conns = |r: &Value| -> u64 {
        r["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .flat_map(|h| h["contacts"].as_array().expect("contacts").iter())
            .map(|c| c["connections"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(
        conns(&second),
        2 * conns(&first),
        "counts add up across the restart"
    );
}

#[test]
fn an_unprivileged_user_with_only_cap_net_raw_captures_and_drops_it() {
    need_root!();
    let found = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found("setcap") || !found("setpriv") {
        eprintln!("SKIPPED: setcap (libcap2-bin) or setpriv (util-linux) is not installed");
        return;
    }
    let demo = capture("demo.pcapng");
    let dir = workdir();
    // A copy of the binary with the one file capability it needs.
    let bin = dir.path().join("phonehome");
    std::fs::copy(env!("CARGO_BIN_EXE_phonehome"), &bin).expect("copy binary");
    let b = bin.display().to_string();
    sh(&["setcap", "cap_net_raw+ep", &b]);
    let ns = Netns::new();
    let wrapper = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        b.as_str(),
    ];
    let sensor = Sensor::start_as(&ns, dir.path(), &wrapper, &[]);
    assert!(
        sensor.stderr().contains("running as the starting user"),
        "{}",
        sensor.stderr()
    );
    assert_eq!(
        sensor.proc_status("Uid:").split_whitespace().next(),
        Some("65534")
    );
    assert_eq!(sensor.proc_status("CapEff:"), "0000000000000000");
    assert_eq!(sensor.proc_status("CapPrm:"), "0000000000000000");
    ns.replay(&demo, 400);
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr) = sensor.stop();
    assert_eq!(code, 0, "{stderr}");
    let live = read_json(&dir.path().join("report.json"));
    let (offline_report, _) = offline(&demo, dir.path(), &[]);
    assert_eq!(contacts(&live), contacts(&offline_report));
}

/// The alerts `live` raises, computed offline (no root needed): one
/// first-contact alert per contact, and a beacon alert when the streaming
/// check confirms the demo's 5-minute Kaspersky beacon — the same with one
/// and with two worker threads.
#[test]
fn analyze_raises_first_contact_and_beacon_alerts() {
    let demo = capture("demo.pcapng");
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, one) = offline(&demo, dir.path(), &["-j", "1"]);
    let (_, two) = offline(&demo, dir.path(), &["-j", "2"]);
    assert_eq!(one, two);
    let firsts: Vec<&Value> = one
        .iter()
        .filter(|a| a["kind"] == "first_contact")
        .collect();
    assert_eq!(firsts.len(), contacts(&report).len());
    let beacons: Vec<&Value> = one.iter().filter(|a| a["kind"] == "beacon").collect();
    assert_eq!(beacons.len(), 1, "{beacons:?}");
    let b = beacons[0];
    assert_eq!(b["host"]["ip"], "10.20.0.5");
    assert_eq!(b["vendor"], "kaspersky");
    let reported =
        &crate::util::contact(&report, "10.20.0.5", "kaspersky").expect("contact")["beacon"];
    assert_eq!(b["beacon"]["confirmed_at"], reported["confirmed_at"]);
    let p = b["beacon"]["period_s"].as_f64().unwrap_or(0.0);
    assert!((240.0..360.0).contains(&p), "{b}");
    let first = firsts
        .iter()
        .find(|a| a["host"]["ip"] == "10.20.0.5" && a["vendor"] == "kaspersky")
        .expect("first contact");
    assert_ne!(b["id"], first["id"], "ids differ per kind");
}
