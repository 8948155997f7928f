//! Hostile files: every malformed capture of the corpus, and synthetic broken
//! files (truncated headers, impossible record lengths, zero-length records,
//! pcapng blocks with bad lengths, DNS names that loop or never end,
//! ClientHellos whose lengths run past their end). Each run ends without a
//! panic, a damaged file is named with the byte offset of the damage, and
//! what came before the damage stays in the report.

use crate::util::{analyze_json, contact, root, strings};
use phonehome_synth::dns::DnsMessage;
use phonehome_synth::packet::{self, Mac, TcpFlags};
use phonehome_synth::tls::{self, ClientHelloSpec};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);
const TS: u32 = 1_700_000_000;

/// An Ethernet frame around an IPv4 packet.
fn eth(ip: Vec<u8>) -> Vec<u8> {
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    packet::ethernet(Mac::from_ip(src), Mac::from_ip(dst), &[], 0x0800, &ip)
}

/// A UDP DNS frame from `host` to the resolver carrying `payload`.
fn dns_frame(host: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let udp = packet::udp_datagram(host.into(), RESOLVER.into(), 40_000, 53, payload);
    eth(packet::ipv4(host, RESOLVER, 17, 1, &udp))
}

/// A query for a Kaspersky name from `host`: reported as a `dns` contact.
fn kaspersky_query(host: Ipv4Addr) -> Vec<u8> {
    dns_frame(host, &DnsMessage::query(7, "ds.kaspersky.com", 1))
}

/// A TCP frame.
fn tcp_frame(c: (Ipv4Addr, u16), s: (Ipv4Addr, u16), seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let seg = packet::tcp_segment(
        c.0.into(),
        s.0.into(),
        c.1,
        s.1,
        seq,
        1,
        TcpFlags(flags),
        data,
    );
    eth(packet::ipv4(c.0, s.0, 6, 1, &seg))
}

/// A connection from `host` to a non-vendor server whose client bytes are
/// `stream`, then a FIN.
fn connection(host: Ipv4Addr, stream: &[u8]) -> Vec<Vec<u8>> {
    let c = (host, 50_000);
    let s = (Ipv4Addr::new(198, 51, 100, 9), 443);
    let mut out = vec![
        tcp_frame(c, s, 100, 0x02, &[]),
        tcp_frame(s, c, 500, 0x12, &[]),
        tcp_frame(c, s, 101, 0x10, &[]),
    ];
    let mut seq = 101u32;
    for chunk in stream.chunks(1400) {
        out.push(tcp_frame(c, s, seq, 0x18, chunk));
        seq += chunk.len() as u32;
    }
    out.push(tcp_frame(c, s, seq, 0x11, &[]));
    out
}

/// A classic little-endian pcap: header with `snaplen`, then records whose
/// captured-length field is `caplen` (normally `data.len()`).
fn pcap(snaplen: u32, records: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, snaplen, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for (i, (caplen, data)) in records.iter().enumerate() {
        for v in [TS + i as u32, 0, *caplen, data.len() as u32] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(data);
    }
    f
}

fn records(frames: Vec<Vec<u8>>) -> Vec<(u32, Vec<u8>)> {
    frames.into_iter().map(|d| (d.len() as u32, d)).collect()
}

fn host(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, n)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The single input error of a report.
fn input_error(r: &Value) -> &Value {
    let errors = r["summary"]["input_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    &errors[0]
}

fn assert_error(r: &Value, file: &Path, offset: u64, text: &str) {
    let e = input_error(r);
    assert_eq!(e["file"], file.display().to_string());
    assert_eq!(e["offset"], offset, "{e}");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains(text), "{msg:?} should contain {text:?}");
    assert!(
        msg.contains(&format!("byte {offset}")),
        "{msg:?} names the offset"
    );
}

fn reported(r: &Value, h: Ipv4Addr) -> bool {
    contact(r, &h.to_string(), "kaspersky").is_some()
}

#[test]
fn every_malformed_corpus_capture_is_survived_one_by_one() {
    // The tcpdump-derived malformed captures and the two unreadable libpcap
    // files, each on its own: no panic, and an exit code that says what
    // happened (0 read to the end, 1 nothing readable, 3 damaged).
    let dir = root().join("captures/corpus");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.starts_with("tcpdump__") || name.starts_with("libpcap__"))
            || name.ends_with(".json")
        {
            continue;
        }
        let out = crate::util::run(&["analyze", "-q", "--format", "json", p.to_str().unwrap()]);
        let code = out.status.code();
        assert!(matches!(code, Some(0 | 1 | 3)), "{name}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        if code == Some(3) || code == Some(1) {
            assert!(
                stderr.contains(&name),
                "{name}: the damaged file is named: {stderr}"
            );
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} tcpdump/libpcap captures found");
}

#[test]
fn truncated_global_and_record_headers_name_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let good = pcap(
        65535,
        &records(vec![kaspersky_query(host(1)), kaspersky_query(host(2))]),
    );

    // A global header cut at 10 bytes, next to a good file.
    let cut = write(dir.path(), "header.pcap", &good[..10]);
    let other = write(dir.path(), "other.pcap", &good);
    let (code, r) = analyze_json(&[&cut, &other], &[]);
    assert_eq!(code, 3);
    assert_error(
        &r,
        &cut,
        0,
        "file ends inside pcap file header at byte 0: 10 of 24",
    );
    assert!(
        reported(&r, host(1)) && reported(&r, host(2)),
        "the other file is analysed"
    );

    // A record header cut after the first record: that record is kept.
    let first_end = 24 + 16 + kaspersky_query(host(1)).len();
    let cut = write(dir.path(), "record.pcap", &good[..first_end + 7]);
    let (code, r) = analyze_json(&[&cut], &[]);
    assert_eq!(code, 3);
    assert_error(
        &r,
        &cut,
        first_end as u64,
        "file ends inside pcap record header",
    );
    assert_eq!(input_error(&r)["frames_read"], 1);
    assert!(reported(&r, host(1)), "the record before the cut is kept");
    assert!(!reported(&r, host(2)));
}

#[test]
fn caplen_beyond_the_file_or_the_cap_is_an_error_and_beyond_the_snaplen_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let q1 = kaspersky_query(host(1));
    let q2 = kaspersky_query(host(2));
    let second_at = (24 + 16 + q1.len()) as u64;

    // The last record claims 1000 bytes; the file ends 60 bytes later.
    let mut f = pcap(65535, &[(q1.len() as u32, q1.clone()), (1000, q2.clone())]);
    f.truncate(second_at as usize + 16 + 60);
    let p = write(dir.path(), "caplen-file.pcap", &f);
    let (code, r) = analyze_json(&[&p], &[]);
    assert_eq!(code, 3);
    assert_error(&r, &p, second_at, "file ends inside pcap record at byte");
    assert!(
        input_error(&r)["error"]
            .as_str()
            .unwrap()
            .contains("76 of 1016 bytes")
    );
    assert!(reported(&r, host(1)));

    // A captured length beyond the 4 MiB record cap is corruption, not a
    // reason to buffer 4 GiB.
    let f = pcap(
        65535,
        &[(q1.len() as u32, q1.clone()), (0xffff_fff0, q2.clone())],
    );
    let p = write(dir.path(), "caplen-huge.pcap", &f);
    let (code, r) = analyze_json(&[&p], &[]);
    assert_eq!(code, 3);
    assert_error(
        &r,
        &p,
        second_at,
        "captured length 4294967280 exceeds the 4194304-byte limit",
    );
    assert!(reported(&r, host(1)));

    // A record longer than the header's snap length (but present in full) is
    // read, as libpcap and Wireshark do: snaplen is advisory.
    let f = pcap(40, &records(vec![q1, q2]));
    let p = write(dir.path(), "over-snaplen.pcap", &f);
    let (code, r) = analyze_json(&[&p], &[]);
    assert_eq!(code, 0);
    assert!(reported(&r, host(1)) && reported(&r, host(2)));
}

#[test]
fn zero_length_records_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let f = pcap(
        65535,
        &records(vec![
            Vec::new(),
            kaspersky_query(host(1)),
            Vec::new(),
            Vec::new(),
            kaspersky_query(host(2)),
        ]),
    );
    let p = write(dir.path(), "zero.pcap", &f);
    let (code, r) = analyze_json(&[&p], &[]);
    assert_eq!(code, 0);
    assert_eq!(r["summary"]["packets"], 5);
    assert_eq!(r["summary"]["malformed_packets"], 3, "{}", r["summary"]);
    assert!(reported(&r, host(1)) && reported(&r, host(2)));
}

/// A little-endian pcapng: section header, one Ethernet interface, then one
/// enhanced packet block per frame. Returns the file and each EPB's offset.
fn pcapng(frames: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let mut f = Vec::new();
    let block = |f: &mut Vec<u8>, t: u32, body: &[u8]| {
        let len = 12 + body.len().div_ceil(4) * 4;
        f.extend_from_slice(&t.to_le_bytes());
        f.extend_from_slice(&(len as u32).to_le_bytes());
        f.extend_from_slice(body);
        f.resize(f.len() + (4 - body.len() % 4) % 4, 0);
        f.extend_from_slice(&(len as u32).to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut f, 0x0a0d_0d0a, &shb);
    block(&mut f, 1, &[1, 0, 0, 0, 0, 0, 4, 0]);
    let mut offsets = Vec::new();
    for (i, d) in frames.iter().enumerate() {
        offsets.push(f.len());
        let ts = (u64::from(TS) + i as u64) * 1_000_000;
        let mut body = Vec::new();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(d.len() as u32).to_le_bytes());
        body.extend_from_slice(&(d.len() as u32).to_le_bytes());
        body.extend_from_slice(d);
        block(&mut f, 6, &body);
    }
    (f, offsets)
}

#[test]
fn pcapng_blocks_with_bad_lengths_name_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let frames = [
        kaspersky_query(host(1)),
        kaspersky_query(host(2)),
        kaspersky_query(host(3)),
    ];
    let (good, at) = pcapng(&frames);
    let (code, r) = analyze_json(&[&write(dir.path(), "good.pcapng", &good)], &[]);
    assert_eq!(code, 0, "the unbroken file reads: {}", r["summary"]);
    assert!(reported(&r, host(3)));

    // The second packet block's total length, replaced.
    let bad_len = |len: u32| {
        let mut f = good.clone();
        f[at[1] + 4..at[1] + 8].copy_from_slice(&len.to_le_bytes());
        f
    };
    let mut trailer = good.clone();
    let end = at[2] - 4;
    trailer[end..end + 4].copy_from_slice(&999u32.to_le_bytes());
    let cases: [(&str, Vec<u8>); 5] = [
        ("below-minimum", bad_len(8)),
        ("unaligned", bad_len(101)),
        ("past-the-file", bad_len(4096)),
        ("over-the-cap", bad_len(0x7fff_fff0)),
        ("trailer-mismatch", trailer),
    ];
    for (name, bytes) in cases {
        let p = write(dir.path(), &format!("{name}.pcapng"), &bytes);
        let (code, r) = analyze_json(&[&p], &[]);
        assert_eq!(code, 3, "{name}: {}", r["summary"]);
        let e = input_error(&r);
        assert_eq!(e["offset"], at[1] as u64, "{name}: {e}");
        let msg = e["error"].as_str().unwrap();
        assert!(
            msg.contains("pcapng") && msg.contains(&format!("byte {}", at[1])),
            "{name}: {msg}"
        );
        assert_eq!(e["frames_read"], 1, "{name}");
        assert!(
            reported(&r, host(1)),
            "{name}: the packet before the bad block is kept"
        );
        assert!(!reported(&r, host(3)), "{name}: nothing is read past it");
    }
}

/// A DNS query header (id 1, RD, one question) followed by `rest`.
fn dns_raw(rest: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(rest);
    m
}

#[test]
fn dns_names_that_loop_or_never_end_do_not_hang_or_leak_into_the_report() {
    let dir = tempfile::tempdir().unwrap();
    // A pointer to itself; two pointers to each other; a forward pointer.
    let self_loop = dns_raw(&[0xc0, 12, 0, 1, 0, 1]);
    let mutual = dns_raw(&[2, b'd', b's', 0xc0, 18, 0, 1, 0, 1, 0xc0, 12]);
    let forward = dns_raw(&[0xc0, 40, 0, 1, 0, 1]);
    // 300 one-letter labels, then kaspersky.com: far past 255 bytes.
    let mut long = Vec::new();
    for _ in 0..300 {
        long.extend_from_slice(&[1, b'a']);
    }
    long.extend_from_slice(b"\x09kaspersky\x03com\x00\x00\x01\x00\x01");
    let long = dns_raw(&long);
    // A response whose answer name points into a loop.
    let mut answer = DnsMessage::query(9, "example.org", 1);
    answer[2] |= 0x80;
    answer[7] = 1;
    answer.extend_from_slice(&[0xc0, 0x1d, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 159, 228, 2]);
    let hostile = [self_loop, mutual, forward, long, answer];
    let mut frames = vec![kaspersky_query(host(1))];
    for (i, m) in hostile.iter().enumerate() {
        frames.push(dns_frame(host(10 + i as u8), m));
    }
    frames.push(kaspersky_query(host(2)));
    let p = write(dir.path(), "dns.pcap", &pcap(65535, &records(frames)));
    let (code, r) = analyze_json(&[&p], &[]);
    assert_eq!(code, 0);
    assert!(
        reported(&r, host(1)) && reported(&r, host(2)),
        "before and after are kept"
    );
    // Each hostile message is counted as an anomaly; the two real queries
    // are not.
    assert_eq!(
        r["summary"]["dns_anomalies"],
        hostile.len(),
        "{}",
        r["summary"]
    );
    for i in 0..hostile.len() as u8 {
        if let Some(c) = contact(&r, &host(10 + i).to_string(), "kaspersky") {
            // The 300-label name is cut at 255 bytes, so its kaspersky.com
            // tail is never read: no contact may come from it or the loops.
            panic!("hostile name {i} attributed: {c}");
        }
    }
}

#[test]
fn client_hellos_whose_lengths_run_past_the_end_are_not_read_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let hello = tls::client_hello(&ClientHelloSpec::with_sni("ds.kaspersky.com"));
    let record = |hs: &[u8]| tls::records(hs, 16_384);
    let set16 =
        |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    // Offsets inside the handshake message: type(1) len(3) version(2)
    // random(32) session_id_len(1) at 38.
    let sid_at = 38;
    let sid_len = usize::from(hello[sid_at]);
    let cs_at = sid_at + 1 + sid_len;
    let cs_len = usize::from(u16::from_be_bytes([hello[cs_at], hello[cs_at + 1]]));
    let comp_at = cs_at + 2 + cs_len;
    let ext_at = comp_at + 1 + usize::from(hello[comp_at]);

    // The stream ends (FIN) half-way through the record and the message.
    let mut cut_short = record(&hello);
    cut_short.truncate(cut_short.len() / 2);
    let mut hs_too_long = hello.clone();
    hs_too_long[1..4].copy_from_slice(&[0x00, 0xff, 0xff]); // 64 KiB message, then FIN
    let mut sid_past = hello.clone();
    sid_past[sid_at] = 0xff;
    let mut cs_past = hello.clone();
    set16(&mut cs_past, cs_at, 0xfff0);
    let mut ext_past = hello.clone();
    set16(&mut ext_past, ext_at, 0xfff0);
    let mut sni_past = hello.clone();
    // The server_name extension (type 0) is the first: its list length.
    assert_eq!(
        &sni_past[ext_at + 2..ext_at + 4],
        &[0, 0],
        "SNI comes first"
    );
    set16(&mut sni_past, ext_at + 8, 0x7fff);
    let streams = [
        cut_short,
        record(&hs_too_long),
        record(&sid_past),
        record(&cs_past),
        record(&ext_past),
        record(&sni_past),
    ];
    let valid = |n| connection(host(n), &record(&hello));
    let mut frames = valid(1);
    for (i, s) in streams.iter().enumerate() {
        frames.extend(connection(host(10 + i as u8), s));
    }
    frames.extend(valid(2));
    let p = write(dir.path(), "tls.pcap", &pcap(65535, &records(frames)));
    let (code, r) = analyze_json(&[&p], &[]);
    assert_eq!(code, 0);
    for h in [host(1), host(2)] {
        let c = contact(&r, &h.to_string(), "kaspersky").expect("valid hello reported");
        assert!(strings(&c["evidence"]).contains(&"sni".to_string()));
    }
    for i in 0..streams.len() as u8 {
        assert!(
            contact(&r, &host(10 + i).to_string(), "kaspersky").is_none(),
            "stream {i}"
        );
    }
    // The two valid ones, and the one whose server_name list alone runs
    // past its extension: a hello without a readable name.
    assert_eq!(r["summary"]["tls_client_hellos"], 3, "{}", r["summary"]);
}
