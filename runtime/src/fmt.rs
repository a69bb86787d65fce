//! Logging macros routed to `defmt` when the `defmt` feature is on, and to nothing
//! otherwise (the embassy pattern): the crate never formats strings on its own.
#![allow(unused_macros)]

#[cfg(feature = "defmt")]
macro_rules! trace {
    ($($arg:tt)*) => { ::defmt::trace!($($arg)*) };
}
#[cfg(not(feature = "defmt"))]
macro_rules! trace {
    ($($arg:tt)*) => {{}};
}

#[cfg(feature = "defmt")]
macro_rules! debug {
    ($($arg:tt)*) => { ::defmt::debug!($($arg)*) };
}
#[cfg(not(feature = "defmt"))]
macro_rules! debug {
    ($($arg:tt)*) => {{}};
}

#[allow(unused_imports)]
pub(crate) use {debug, trace};
