//! `drover demo`.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {}

pub fn main(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet built")
}
