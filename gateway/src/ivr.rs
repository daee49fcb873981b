//! The PIN prompt for callers without a room header.
