//! The drover binary: parse the command line and hand over to `cli`.

fn main() -> std::process::ExitCode {
    drover::cli::main()
}
