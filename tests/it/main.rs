//! The one integration test binary (style point 9): one module per area.

mod deploy;
mod show;
mod tap;
mod util;
