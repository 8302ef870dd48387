//! `controller`: the sealed-secrets controller binary. Everything lives in the library; this
//! parses flags and reports a fatal error as `error: <message>` with exit code 1.

use std::process::ExitCode;

use clap::Parser;
use sealed_secrets_controller::{app, args::Args};

fn main() -> ExitCode {
    let args = Args::parse();
    if args.version {
        println!("controller version: v{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    sealed_secrets_process::run_to_exit(app::run(args))
}
