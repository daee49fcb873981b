//! Resolves a dial-in PIN to a room through a conference mapper.
