//! The one integration test binary (style point 9): one module per area.

mod cli;
mod controls;
mod deploy;
mod e2e;
mod harden;
mod hostile_user;
mod layers;
mod ls;
mod man;
mod pasted;
mod peers;
mod record;
mod refcorpus;
mod refdecode;
mod relay;
mod replay;
mod replay_sftp;
mod sftp;
mod show;
mod show_views;
mod splice;
mod sshd;
mod standin;
mod static_bin;
mod tap;
mod util;
