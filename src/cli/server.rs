//! `drover server`.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {}

pub fn main(_args: ServerArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet built")
}
