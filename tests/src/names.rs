//! What keeps tests that run at the same time apart: object names unique per machine and run,
//! and loopback ports handed out once per process.

use std::{
    collections::HashSet,
    net::TcpListener,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// A name unique within this machine and run, valid as a namespace or object name (DNS-1123
/// label): `<prefix>-<6 base36 chars from time and pid>-<counter>`. Keep `prefix` short,
/// lowercase and `[a-z0-9-]`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut seed =
        nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut tag = String::new();
    for _ in 0..6 {
        let digit = (seed % 36) as u32;
        seed /= 36;
        tag.push(char::from_digit(digit, 36).unwrap_or('x'));
    }
    format!("{prefix}-{tag}-{n}")
}

/// A free TCP port on 127.0.0.1 (bind port 0, read it, drop the listener). Ports handed out
/// once are never handed out again by this process, so parallel tests cannot collide.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        let mut given = given.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) {
            return port;
        }
    }
    panic!("could not find a free port on 127.0.0.1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dns_labels() {
        let a = unique_name("ss-keys");
        let b = unique_name("ss-keys");
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
        }
    }

    #[test]
    fn ports_are_not_handed_out_twice() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        assert!(a > 0 && b > 0);
    }
}
