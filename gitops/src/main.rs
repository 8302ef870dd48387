//! `gitops-controller`: the GitSync reconciler. Everything lives in the library; this parses
//! flags and reports a fatal error as `error: <message>` with exit code 1.

use std::process::ExitCode;

use clap::Parser;
use sealed_secrets_gitops::{app, args::Args};

fn main() -> ExitCode {
    let args = Args::parse();
    if args.version {
        println!("gitops-controller version: v{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    // Multi-threaded: the SealedSecret check blocks a worker thread (`block_in_place`).
    sealed_secrets_process::run_to_exit(app::run(args))
}
