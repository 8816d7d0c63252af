//! Wire-level primitives of the OpenSynaptic IoT protocol: the CRC-8 / CRC-16
//! frame checksums, secure-body XOR and session keys, data command bytes,
//! binary data frames, and the fusion sender's steady state.
//!
//! Output is byte-identical to the reference implementation (OpenSynaptic
//! 1.4.2) for every input it handles without error. Where the reference
//! silently wraps out-of-range integers, these functions return an error.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod cmd;
pub mod crc;
pub mod frame;
pub mod fusion;
pub mod security;

pub use frame::{FrameError, FrameErrorKind, FrameHeader};
