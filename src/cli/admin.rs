//! `drover admin`.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct AdminArgs {}

pub fn main(_args: AdminArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet built")
}
