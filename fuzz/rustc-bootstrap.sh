#!/bin/sh
# RUSTC_WRAPPER for fuzz builds on a stable toolchain: cargo-fuzz passes
# nightly-only flags (-Zsanitizer=address, sancov); RUSTC_BOOTSTRAP=1 lets
# stable rustc accept them. Setting the variable in the environment alone is
# not enough: cargo's target-info probe runs rustc without it.
RUSTC_BOOTSTRAP=1 exec "$@"
