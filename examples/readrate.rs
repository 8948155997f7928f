//! `readrate libpcap|own FILE`: how fast a capture file can be read, the
//! baseline of `benches/throughput.sh`.
//!
//! Both modes run the same loop: take each packet, touch every byte of it
//! (an XOR fold, printed so the compiler cannot drop it) and parse nothing.
//! `libpcap` reads through libpcap (`pcap_next_ex`, via the `pcap` crate);
//! `own` reads through phonehome's reader (`capture::Timeline`, exactly what
//! `phonehome analyze` uses). One machine-readable line is printed:
//!
//! ```text
//! readrate method=libpcap packets=N bytes=N secs=S pps=N gbps=G fold=HEX
//! ```
//!
//! `bytes` counts captured packet bytes (not file headers); `gbps` is
//! `bytes * 8 / secs / 1e9`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// XOR-folds `data` into `acc` eight bytes at a time.
fn touch(data: &[u8], acc: &mut u64) {
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        *acc ^= u64::from_le_bytes(b);
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        *acc ^= u64::from(b) << (8 * i);
    }
    *acc = acc.rotate_left(1);
}

/// Packets, bytes and the fold of every packet read through libpcap.
fn libpcap(path: &Path) -> Result<(u64, u64, u64), String> {
    let mut cap = pcap::Capture::from_file(path).map_err(|e| e.to_string())?;
    let (mut packets, mut bytes, mut fold) = (0u64, 0u64, 0u64);
    loop {
        match cap.next_packet() {
            Ok(p) => {
                packets += 1;
                bytes += p.data.len() as u64;
                touch(p.data, &mut fold);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok((packets, bytes, fold))
}

/// The same through phonehome's own reader.
fn own(path: &Path) -> Result<(u64, u64, u64), String> {
    let mut timeline = phonehome::capture::Timeline::new(vec![path.to_path_buf()]);
    let (mut packets, mut bytes, mut fold) = (0u64, 0u64, 0u64);
    while let Some(frame) = timeline.next_frame() {
        packets += 1;
        bytes += frame.data.len() as u64;
        touch(frame.data, &mut fold);
    }
    match timeline.failures().first() {
        Some(f) => Err(format!("{}: {}", f.path.display(), f.error)),
        None => Ok((packets, bytes, fold)),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (method, path) = match args.as_slice() {
        [m, p] if m == "libpcap" || m == "own" => (m.as_str(), PathBuf::from(p)),
        _ => {
            eprintln!("usage: readrate libpcap|own FILE");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let result = if method == "libpcap" {
        libpcap(&path)
    } else {
        own(&path)
    };
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    match result {
        Ok((packets, bytes, fold)) => {
            println!(
                "readrate method={method} packets={packets} bytes={bytes} secs={secs:.3} pps={:.0} gbps={:.3} fold={fold:016x}",
                packets as f64 / secs,
                bytes as f64 * 8.0 / secs / 1e9
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("readrate: {e}");
            ExitCode::FAILURE
        }
    }
}
