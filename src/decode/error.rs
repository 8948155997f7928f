//! Why a frame could not be decoded: the layer, what was wrong and where,
//! as a `Copy` value with no allocation (the sentence is written by `Display`).

use std::fmt;

/// The protocol layer a decode error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Link layer (Ethernet, SLL, loopback, NFLOG).
    Link,
    /// 802.1Q/802.1ad tags.
    Vlan,
    /// MPLS label stack.
    Mpls,
    /// PPPoE session header.
    Pppoe,
    /// IPv4 header.
    Ipv4,
    /// IPv6 header or extension headers.
    Ipv6,
    /// TCP header.
    Tcp,
    /// UDP header.
    Udp,
    /// GRE header.
    Gre,
}

/// What was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// The header needs more bytes than the frame has.
    Short {
        /// Bytes required.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A length field is smaller than the header it describes.
    BadLength,
    /// The IP version nibble is not 4 or 6.
    BadVersion,
    /// Too many stacked headers (VLAN tags, MPLS labels, extension headers, tunnels).
    TooDeep,
}

/// A decode failure: layer, kind and the offset of the header in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// The layer.
    pub layer: Layer,
    /// The problem.
    pub kind: DecodeErrorKind,
    /// Offset of the layer's header in the frame (outermost frame bytes for
    /// the outer layers; tunnelled layers count from the inner frame).
    pub offset: usize,
}

impl DecodeError {
    pub(crate) fn short(layer: Layer, offset: usize, need: usize, have: usize) -> Self {
        DecodeError {
            layer,
            kind: DecodeErrorKind::Short { need, have },
            offset,
        }
    }

    pub(crate) fn new(layer: Layer, kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError {
            layer,
            kind,
            offset,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} header at offset {}: ", self.layer, self.offset)?;
        match self.kind {
            DecodeErrorKind::Short { need, have } => {
                write!(f, "needs {need} bytes, {have} present")
            }
            DecodeErrorKind::BadLength => write!(f, "length field shorter than the header"),
            DecodeErrorKind::BadVersion => write!(f, "IP version is neither 4 nor 6"),
            DecodeErrorKind::TooDeep => write!(f, "too many stacked headers"),
        }
    }
}

impl std::error::Error for DecodeError {}
