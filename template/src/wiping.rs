//! A growable byte buffer for bytes derived from template values, wiped on every path.
//!
//! Templates work on decrypted items, and almost every function builds a new string from them
//! (`upper`, `b64enc`, `printf`, the rendered output, …). A plain `Vec<u8>` or `String` leaks
//! such a string twice over: when it grows, the allocator is handed back the old allocation
//! with a copy of what was written so far, and when it is dropped, its bytes are freed as they
//! are. `Zeroizing<Vec<u8>>` only covers the second case. [`WipingBuf`] covers both: growth
//! copies into a new allocation and wipes the old one (whole capacity) before freeing it, and
//! dropping wipes the buffer. It converts into the engine's string type (`SecretBytes`) and
//! into the `Zeroizing<Vec<u8>>` a render returns without copying.
//!
//! A leaf: it uses nothing else from the crate, so every module that builds strings can use it.

use std::fmt;
use std::ops::{Deref, DerefMut};

use zeroize::{Zeroize, Zeroizing};

/// The smallest allocation a growing buffer takes, so short strings built a byte at a time
/// don't reallocate (and wipe) at every byte.
const MIN_GROWN_CAPACITY: usize = 64;

/// A byte buffer that never leaves a copy of its contents to the allocator: growing wipes the
/// allocation it leaves, and dropping wipes the buffer.
#[derive(Default)]
pub(crate) struct WipingBuf(Vec<u8>);

impl WipingBuf {
    /// An empty buffer (it allocates on the first write).
    pub(crate) fn new() -> Self {
        WipingBuf(Vec::new())
    }

    /// An empty buffer with room for `capacity` bytes before it has to grow.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        WipingBuf(Vec::with_capacity(capacity))
    }

    /// A copy of `bytes` in an allocation of exactly their size.
    pub(crate) fn from_slice(bytes: &[u8]) -> Self {
        let mut buf = WipingBuf::with_capacity(bytes.len());
        buf.extend_from_slice(bytes);
        buf
    }

    /// `len` zero bytes, to be written through `DerefMut` (and cut with [`Self::truncate`]).
    pub(crate) fn zeroed(len: usize) -> Self {
        WipingBuf(vec![0; len])
    }

    /// `bytes` repeated `count` times, in an allocation of exactly that size. Callers check
    /// the size first.
    pub(crate) fn repeated(bytes: &[u8], count: usize) -> Self {
        let total = bytes.len().saturating_mul(count);
        let mut buf = WipingBuf::with_capacity(total);
        if total == 0 {
            return buf;
        }
        buf.0.extend_from_slice(bytes);
        // Doubling copies within the allocation, which has room for all of it.
        while buf.0.len() <= total / 2 {
            buf.0.extend_from_within(..);
        }
        let rest = total - buf.0.len();
        buf.0.extend_from_within(..rest);
        buf
    }

    /// The text of `args` (`format!` into a wiping buffer).
    pub(crate) fn formatted(args: fmt::Arguments<'_>) -> Self {
        let mut buf = WipingBuf::new();
        // Writing to a `WipingBuf` never fails.
        let _ = fmt::Write::write_fmt(&mut buf, args);
        buf
    }

    /// Makes room for `additional` more bytes, moving to a larger allocation (and wiping the
    /// old one) when the current one is too small.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.0.len().saturating_add(additional);
        if needed > self.0.capacity() {
            let capacity = needed
                .max(self.0.capacity().saturating_mul(2))
                .max(MIN_GROWN_CAPACITY);
            let mut grown = Vec::with_capacity(capacity);
            grown.extend_from_slice(&self.0);
            retire(std::mem::replace(&mut self.0, grown));
        }
    }

    /// Appends `bytes`.
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// Appends one byte.
    pub(crate) fn push(&mut self, byte: u8) {
        self.reserve(1);
        self.0.push(byte);
    }

    /// Appends `byte` `count` times.
    pub(crate) fn extend_repeat(&mut self, byte: u8, count: usize) {
        self.reserve(count);
        self.0.resize(self.0.len() + count, byte);
    }

    /// Shortens the buffer to `len` bytes; the bytes cut off stay in the allocation until it
    /// is wiped.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// The bytes as a vector that is wiped when dropped, without copying them.
    pub(crate) fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(std::mem::take(&mut self.0))
    }
}

impl Deref for WipingBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for WipingBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for WipingBuf {
    fn drop(&mut self) {
        retire(std::mem::take(&mut self.0));
    }
}

/// Test assertions compare buffers with text and print them; outside tests a buffer can't
/// be printed.
#[cfg(test)]
impl fmt::Debug for WipingBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(&self.0), f)
    }
}

#[cfg(test)]
impl PartialEq<&str> for WipingBuf {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Write for WipingBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Wipes an allocation that is given up, whole capacity (bytes cut off by `truncate` sit past
/// the length), before it is freed.
fn retire(mut old: Vec<u8>) {
    if old.capacity() == 0 {
        return;
    }
    // Makes the spare capacity part of the slice, so the wipe below covers the allocation.
    old.resize(old.capacity(), 0);
    old.as_mut_slice().zeroize();
    #[cfg(test)]
    retired::record(&old);
}

/// What [`retire`] left in the allocations it was given, so tests can check that growth and
/// drops wipe them.
#[cfg(test)]
pub(crate) mod retired {
    use std::cell::RefCell;

    thread_local! {
        static RETIRED: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// Records the contents of an allocation as it is about to be freed.
    pub(super) fn record(old: &[u8]) {
        RETIRED.with(|retired| retired.borrow_mut().push(old.to_vec()));
    }

    /// The allocations this thread freed since the last call, as they were freed.
    pub(crate) fn take() -> Vec<Vec<u8>> {
        RETIRED.with(|retired| std::mem::take(&mut *retired.borrow_mut()))
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::{WipingBuf, retired};

    const SECRET: &[u8] = b"correct horse battery staple";

    #[test]
    fn growing_wipes_the_allocation_it_leaves() {
        let mut buf = WipingBuf::with_capacity(SECRET.len());
        buf.extend_from_slice(SECRET);
        retired::take();
        let old_capacity = buf.0.capacity();

        buf.extend_from_slice(b"!");

        assert_eq!(&buf[..], b"correct horse battery staple!");
        assert!(buf.0.capacity() > old_capacity);
        // The old allocation, whole, held the secret and was wiped before it was freed.
        assert_eq!(retired::take(), vec![vec![0; old_capacity]]);
    }

    #[test]
    fn every_way_of_writing_grows_by_wiping() {
        let mut buf = WipingBuf::new();
        for byte in SECRET {
            buf.push(*byte);
        }
        buf.extend_repeat(b'x', 100);
        let _ = write!(buf, "{}", "y".repeat(300));
        let written = buf.len();
        assert_eq!(&buf[..SECRET.len()], SECRET);
        assert_eq!(written, SECRET.len() + 400);

        // 0 -> 64 bytes (nothing to free), 64 -> 128 (extend_repeat), 128 -> 428 (write!).
        let freed = retired::take();
        assert_eq!(
            freed.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![64, 128]
        );
        assert!(freed.iter().flatten().all(|&byte| byte == 0));
    }

    #[test]
    fn bytes_cut_off_are_wiped_too() {
        let mut buf = WipingBuf::zeroed(16);
        buf.copy_from_slice(&SECRET[..16]);
        buf.truncate(4);
        retired::take();

        buf.extend_from_slice(&[b'-'; 64]);

        // The 12 bytes past the length were in the old allocation: they are wiped as well.
        assert_eq!(retired::take(), vec![vec![0; 16]]);
        assert_eq!(&buf[..4], &SECRET[..4]);
    }

    #[test]
    fn dropping_wipes_the_buffer() {
        let buf = WipingBuf::from_slice(SECRET);
        retired::take();
        drop(buf);
        assert_eq!(retired::take(), vec![vec![0; SECRET.len()]]);
    }

    #[test]
    fn conversion_keeps_the_allocation() {
        let mut buf = WipingBuf::with_capacity(100);
        buf.extend_from_slice(SECRET);
        let pointer = buf.as_ptr();
        retired::take();

        let bytes = buf.into_zeroizing();

        assert_eq!(bytes.as_ptr(), pointer);
        assert_eq!(&bytes[..], SECRET);
        // Nothing was copied, so nothing was left to wipe.
        assert!(retired::take().is_empty());
    }

    #[test]
    fn repeated_fills_one_allocation() {
        retired::take();
        for count in [0, 1, 2, 3, 7, 8, 100] {
            let buf = WipingBuf::repeated(b"abc", count);
            assert_eq!(&buf[..], b"abc".repeat(count).as_slice(), "{count}");
            assert_eq!(buf.0.capacity(), 3 * count);
        }
        assert_eq!(&WipingBuf::repeated(b"", 1 << 40)[..], b"");
        // Nothing grew: the only allocations freed are the results, when dropped.
        assert!(
            retired::take()
                .iter()
                .all(|freed| freed.iter().all(|&byte| byte == 0))
        );
    }

    #[test]
    fn formatted_is_format() {
        let text = WipingBuf::formatted(format_args!("{:>8}|{:x}", "ab", 255));
        assert_eq!(&text[..], b"      ab|ff");
    }
}
