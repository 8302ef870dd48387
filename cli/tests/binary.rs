//! How the `kubeseal` executable is linked (see `cli/build.rs`).

/// On Linux with glibc, `kubeseal` is a position-dependent executable (ELF type `ET_EXEC`), so
/// the loader has no relative relocations to apply at each run; elsewhere the platform's
/// default stands.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn kubeseal_is_linked_position_dependent() {
    let path = env!("CARGO_BIN_EXE_kubeseal");
    let bytes = std::fs::read(path).expect("read the kubeseal binary");
    assert_eq!(&bytes[..4], b"\x7fELF", "{path} is not an ELF file");
    // e_type, little-endian, at offset 16: 2 is ET_EXEC, 3 is ET_DYN (a PIE).
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    assert_eq!(
        e_type, 2,
        "{path} is linked position-independent (e_type {e_type})"
    );
}

/// Where the linker was given `kubeseal.order` (see `cli/build.rs`), the functions it names
/// sit side by side at the start of the code, not spread over it. The debug build is linked
/// with the same list; the names it shares with the release build (aws-lc's C functions,
/// std's) are enough to see the layout.
#[test]
fn the_functions_an_offline_seal_runs_come_first() {
    use object::{Object, ObjectSymbol, SymbolKind};
    let Some(order) = option_env!("KUBESEAL_SYMBOL_ORDER") else {
        eprintln!(
            "skipped: this build links kubeseal without a symbol ordering file (cli/build.rs)"
        );
        return;
    };
    let listed: std::collections::HashSet<String> = std::fs::read_to_string(order)
        .expect("read kubeseal.order")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    let path = env!("CARGO_BIN_EXE_kubeseal");
    let bytes = std::fs::read(path).expect("read the kubeseal binary");
    let file = object::File::parse(&*bytes).expect("parse the kubeseal binary");
    let mut functions: Vec<(u64, bool)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
        .filter_map(|s| Some((s.address(), listed.contains(s.name().ok()?))))
        .collect();
    functions.sort_unstable();
    let present = functions.iter().filter(|(_, listed)| *listed).count();
    assert!(
        present >= 50,
        "only {present} functions of {order} are in {path}"
    );
    // Rank of the last listed function among all functions by address: with the list
    // honoured, the listed ones (and the few that share an assembly file's section with one)
    // come first; without it they spread over the whole range.
    let last_listed = functions
        .iter()
        .rposition(|(_, listed)| *listed)
        .expect("listed functions");
    assert!(
        last_listed < present * 3,
        "the {present} listed functions reach rank {last_listed} of {} in {path}: the linker did not order them",
        functions.len()
    );
}

/// Where `cli/build.rs` found gcc's static unwinder, `kubeseal` does not load `libgcc_s`.
#[test]
fn kubeseal_does_not_load_libgcc_s() {
    use object::read::elf::{ElfFile64, FileHeader};
    if option_env!("KUBESEAL_STATIC_UNWINDER").is_none() {
        eprintln!("skipped: this build links kubeseal with the shared libgcc_s (cli/build.rs)");
        return;
    }
    let path = env!("CARGO_BIN_EXE_kubeseal");
    let bytes = std::fs::read(path).expect("read the kubeseal binary");
    let elf = ElfFile64::<object::Endianness>::parse(&*bytes).expect("parse the kubeseal binary");
    let endian = elf.endian();
    let sections = elf
        .elf_header()
        .sections(endian, &*bytes)
        .expect("section table");
    let dynamic = sections
        .dynamic_table(endian, &*bytes)
        .expect("dynamic table");
    let needed: Vec<String> = dynamic
        .iter()
        .filter(|entry| entry.tag == object::elf::DT_NEEDED)
        .map(|entry| {
            String::from_utf8_lossy(dynamic.string(entry).expect("library name")).into_owned()
        })
        .collect();
    assert!(
        needed.iter().any(|name| name.starts_with("libc.so")),
        "{path} needs {needed:?}: the dynamic table was not read"
    );
    assert!(
        !needed.iter().any(|name| name.starts_with("libgcc_s")),
        "{path} still needs {needed:?}"
    );
}
