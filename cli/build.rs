//! Links `kubeseal` as a position-dependent executable on Linux with glibc.
//!
//! Why: a kubeseal run is a few milliseconds, and as a position-independent executable (PIE,
//! rustc's default) about a tenth of it went to the dynamic loader applying some 22,000
//! relative relocations and to the copy-on-write faults of the ~90 pages of `.data.rel.ro`
//! they write to (vtables and string tables), on every run. Linked with `-no-pie` those
//! addresses are fixed at link time: 76 fewer page faults per run and about 0.3 ms less
//! (BENCHMARKS.md, "kubeseal `--cert` start-up"). The code itself is still compiled
//! position-independent; only the final link changes. Libraries, heap and stack keep their
//! randomised addresses; the executable's own image does not. Upstream's kubeseal ships that
//! way on linux/amd64 too: its release configuration sets no build mode, and Go's default
//! there is a position-dependent executable (docs/decisions.md).
//!
//! Only the `kubeseal` binary, and only where the linker driver is the GNU toolchain's
//! (`-no-pie` is a gcc/clang flag): other targets keep their defaults.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=kubeseal=-no-pie");
    }
}
