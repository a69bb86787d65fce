//! Logging macros routed to `defmt` when the `defmt` feature is on, and to nothing
//! otherwise (the embassy pattern): the crate never formats strings on its own.
//! Without `defmt` the arguments are still borrowed, so a log line never leaves a
//! variable unused.
#![allow(unused_macros)]

#[cfg(feature = "defmt")]
macro_rules! debug {
    ($($arg:tt)*) => { ::defmt::debug!($($arg)*) };
}
#[cfg(not(feature = "defmt"))]
macro_rules! debug {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        let _ = ($(&$arg),*);
    }};
}

pub(crate) use debug;
