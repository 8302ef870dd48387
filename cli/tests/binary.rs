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
