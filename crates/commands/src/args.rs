//! The [`Arguments`] view of one request: the command name and its arguments as byte slices.
//!
//! The command table never sees a frame or a socket. The proxy implements [`Arguments`] over its
//! parsed request frame; tests and other callers use the implementations for slices, arrays and
//! vectors of byte slices given here.

use std::fmt;

/// Read access to the elements of one request, the command name included.
///
/// Index 0 is the command name; `count()` counts it too, like Redis's `argc`. Callers of
/// [`get`](Arguments::get) in this crate only ask for indexes below [`count`](Arguments::count).
pub trait Arguments {
    /// Number of elements, the command name included.
    fn count(&self) -> usize;

    /// The element at `index` (0 is the command name). `index` is below [`count`](Arguments::count).
    fn get(&self, index: usize) -> &[u8];
}

/// An index past the end reads as an empty element.
impl Arguments for [&[u8]] {
    fn count(&self) -> usize {
        self.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        <[&[u8]]>::get(self, index).copied().unwrap_or_default()
    }
}

impl<const N: usize> Arguments for [&[u8]; N] {
    fn count(&self) -> usize {
        N
    }

    fn get(&self, index: usize) -> &[u8] {
        Arguments::get(self.as_slice(), index)
    }
}

impl Arguments for Vec<&[u8]> {
    fn count(&self) -> usize {
        self.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        Arguments::get(self.as_slice(), index)
    }
}

impl<T: Arguments + ?Sized> Arguments for &T {
    fn count(&self) -> usize {
        (**self).count()
    }

    fn get(&self, index: usize) -> &[u8] {
        (**self).get(index)
    }
}

/// Shows at most the first eight elements, each lossily decoded, so a hostile request cannot
/// make a log line or a debug dump unbounded.
impl fmt::Debug for dyn Arguments + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let mut list = f.debug_list();
        for index in 0..self.count().min(SHOWN) {
            list.entry(&String::from_utf8_lossy(self.get(index)));
        }
        if self.count() > SHOWN {
            list.entry(&format_args!("... {} more", self.count() - SHOWN));
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Arguments;

    #[test]
    fn slices_arrays_and_vectors_agree() {
        let array: [&[u8]; 2] = [b"get", b"k"];
        let vec: Vec<&[u8]> = array.to_vec();
        let slice: &[&[u8]] = &array;
        assert_eq!(array.count(), 2);
        assert_eq!(vec.count(), 2);
        assert_eq!(slice.count(), 2);
        assert_eq!((&slice).get(1), b"k");
        assert_eq!(vec.get(0), b"get");
    }

    #[test]
    fn debug_is_bounded() {
        let many: Vec<&[u8]> = vec![b"x"; 100];
        let dynamic: &dyn Arguments = &many;
        let shown = format!("{dynamic:?}");
        assert!(shown.len() < 80, "{shown}");
        assert!(shown.contains("92 more"), "{shown}");
    }
}
