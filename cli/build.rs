//! How the `kubeseal` executable is linked on Linux with glibc: position-dependent, with the
//! code an offline seal runs placed first, and without the shared `libgcc_s`.
//!
//! Why: a kubeseal run is about two milliseconds, and most of what it costs beyond
//! `/bin/true` is the kernel mapping pages of a 15 MB executable on first touch and the
//! dynamic loader preparing it and its libraries (BENCHMARKS.md, "kubeseal `--cert`
//! start-up").
//!
//! - **`-no-pie`**: as a position-independent executable (rustc's default) about a tenth of a
//!   run went to the loader applying some 22,000 relative relocations and to the copy-on-write
//!   faults of the ~90 pages of `.data.rel.ro` they write to (vtables, string tables), on every
//!   run. Linked position-dependent those addresses are fixed at link time: 76 fewer page
//!   faults and about 0.3 ms. The code is still compiled position-independent; only the final
//!   link changes. Libraries, heap and stack keep their randomised addresses; the executable's
//!   own image does not. Upstream's kubeseal ships that way on linux/amd64 too: its release
//!   configuration sets no build mode, and Go's default there is a position-dependent
//!   executable (docs/decisions.md).
//! - **`kubeseal.order`**: the ~600 functions an offline seal enters (RSA, PEM, YAML, clap,
//!   std) are otherwise spread over 10 MB of code, one page fault per 64 KB window touched.
//!   The linker's symbol ordering file puts them side by side at the start of `.text`: about
//!   40 fewer page faults and 0.1-0.2 ms. `bench/kubeseal-order.sh` regenerates the list; a
//!   name the linker does not find (after a toolchain or dependency upgrade) is skipped
//!   silently, so a stale list costs speed, never a build.
//!
//! - **gcc's static unwinder**: std links the shared `libgcc_s` for its unwinder, one more
//!   library to find, map and relocate on every run, whose constructor also probes the CPU
//!   (a trap to the hypervisor on a virtual machine): 0.1-0.2 ms. Where gcc's static
//!   unwinder `libgcc_eh.a` exists, a one-line linker script named `libgcc_s.a`, found first
//!   on the library path, links it into the executable instead (what `-static-libgcc` does for
//!   C and C++ programs; std's own `link(name = "gcc_s")` leaves no other way). This applies
//!   to every executable of this package, tests included; unwinding works the same.
//!
//! Only where the flags are known to be understood: `-no-pie` wherever the target is Linux
//! with glibc (a gcc/clang driver flag); the ordering file and the unwinder only on x86_64
//! with rustc 1.90 or later and no linker chosen by the user, where rustc links with its own
//! LLD (`--symbol-ordering-file` is an LLD option; GNU ld has none).

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kubeseal.order");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed=CC");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || target_env != "gnu" {
        return;
    }
    println!("cargo:rustc-link-arg-bin=kubeseal=-no-pie");
    if links_with_rust_lld() {
        let order =
            Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("kubeseal.order");
        // `-Xlinker` passes the path verbatim (`-Wl,` would split it at commas).
        for arg in [
            "-Xlinker",
            "--symbol-ordering-file",
            "-Xlinker",
            &order.display().to_string(),
            "-Wl,--no-warn-symbol-ordering",
        ] {
            println!("cargo:rustc-link-arg-bin=kubeseal={arg}");
        }
        // Tells `tests/binary.rs` the ordering was asked for.
        println!("cargo:rustc-env=KUBESEAL_SYMBOL_ORDER={}", order.display());
        if let Some(unwinder) = static_unwinder() {
            link_unwinder_statically(&unwinder);
        }
    }
}

/// gcc's static unwinder, where the C compiler driver knows one.
fn static_unwinder() -> Option<PathBuf> {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (path.is_absolute() && path.is_file()).then_some(path)
}

/// Puts a `libgcc_s.a` that stands for `unwinder` first on the library path (see the module
/// documentation); the linker then takes it for std's `-lgcc_s`.
fn link_unwinder_statically(unwinder: &Path) {
    let Some(out_dir) = env::var_os("OUT_DIR") else {
        return;
    };
    let dir = PathBuf::from(out_dir).join("static-unwinder");
    let script = format!("INPUT({})\n", unwinder.display());
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("libgcc_s.a"), script).is_err()
    {
        return;
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    // Tells `tests/binary.rs` the shared `libgcc_s` should not be needed.
    println!("cargo:rustc-env=KUBESEAL_STATIC_UNWINDER=1");
}

/// Whether this build links with the LLD rustc brings along: its default for
/// x86_64-unknown-linux-gnu since 1.90, unless a linker or linker flavour was chosen.
fn links_with_rust_lld() -> bool {
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return false;
    }
    if env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "fuse-ld", "link-self-contained"]
        .iter()
        .any(|flag| flags.contains(flag))
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(output) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    minor_version(&String::from_utf8_lossy(&output.stdout)).is_some_and(|minor| minor >= 90)
}

/// The minor version of `rustc 1.MINOR.PATCH (...)`.
fn minor_version(version: &str) -> Option<u32> {
    let number = version.split_whitespace().nth(1)?;
    let mut parts = number.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
