//! Callers in rooms: the shared per-room audio ([`audio`]) and the task
//! that runs it ([`task`]).

pub mod audio;
pub mod task;
