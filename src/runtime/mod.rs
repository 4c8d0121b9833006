//! The only module that touches sockets, timers and the clock (tokio).
