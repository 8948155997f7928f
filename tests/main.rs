//! Integration tests: the `phonehome` binary run on real and generated
//! captures. One binary, one module per area (as ripgrep's tests do).

/// Helpers: running the binary, temporary folders, reading JSON.
mod util;

/// Extraction compared with tshark's dissection of the 82 real captures.
mod truth;

/// The demo capture: the report a defender should get from it.
mod demo;

/// Command-line behaviour: inputs, formats, filters, feeds, exit codes.
mod cli;

/// Damaged and hostile files: clear errors, no panics, results kept.
mod damaged;

/// One thread and N threads: the same report and the same events.
mod parallel;

/// The HTML report in headless Chromium: rendering, hostile names, 10,000 hosts.
mod html;

/// Beacon analysis of a generated day: periods, counts, nulls.
mod beacons;
/// GeoIP/ASN databases: enrichment, `asn` evidence, watched places.
mod geo;

/// The benchmark generator's captures: read whole, beacons found.
mod bulk;
