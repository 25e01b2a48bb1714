//! Buffers of f64 or f32 that start on a 64-byte boundary: a cache line, and one AVX-512 register.
//! The training rows and the weights are read by 64-byte vector loads; in a plain `Vec` or
//! `Arc<[T]>` they start 16 or 32 bytes into a line (the allocator's and the reference counts'
//! headers), so every such load spans two lines. Rows whose stride is a multiple of 16 values
//! then start on a boundary too. Contents and arithmetic are untouched: only addresses move.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// One cache line of storage.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// The element types an [`AlignedBuf`] holds: plain floats, whose all-zero bytes are `+0.0` and
/// whose alignment divides 64.
///
/// # Safety
/// Every bit pattern is a valid value, all-zero bytes included, and `align_of::<T>()` divides 64.
pub unsafe trait Plain: Copy {}
// SAFETY: floats accept every bit pattern; their alignment (8, 4) divides 64.
unsafe impl Plain for f64 {}
// SAFETY: as for f64.
unsafe impl Plain for f32 {}

/// `len` values of `T` starting on a 64-byte boundary.
#[derive(Clone)]
pub struct AlignedBuf<T> {
    lines: Vec<Line>,
    len: usize,
    _values: PhantomData<T>,
}

impl<T: Plain> AlignedBuf<T> {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> AlignedBuf<T> {
        let bytes = len * std::mem::size_of::<T>();
        AlignedBuf {
            lines: vec![Line([0; 64]); bytes.div_ceil(64)],
            len,
            _values: PhantomData,
        }
    }

    /// A copy of `values`.
    pub fn from_values(values: impl ExactSizeIterator<Item = T>) -> AlignedBuf<T> {
        let mut buf = AlignedBuf::zeroed(values.len());
        for (to, from) in buf.iter_mut().zip(values) {
            *to = from;
        }
        buf
    }
}

impl<T: Plain> Deref for AlignedBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the lines hold at least `len` values of `T` (`zeroed`), initialized (zeros are
        // valid values of a `Plain` type), and are aligned for `T` (64 is a multiple of its
        // alignment); the borrow of `self` keeps them alive and unaliased by writers.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> DerefMut for AlignedBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, with the exclusive borrow of `self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for AlignedBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_cache_line_and_hold_their_values() {
        for len in [0, 1, 7, 8, 9, 129, 1000] {
            let zeros = AlignedBuf::<f64>::zeroed(len);
            assert_eq!(zeros.as_ptr() as usize % 64, 0, "len {len}");
            assert_eq!(zeros.len(), len);
            assert!(zeros.iter().all(|v| v.to_bits() == 0), "len {len}");
            let values: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut copy = AlignedBuf::from_values(values.iter().copied());
            assert_eq!(copy.as_ptr() as usize % 64, 0, "len {len}");
            assert_eq!(&copy[..], &values[..]);
            if len > 0 {
                copy[len - 1] = 42.0;
                assert_eq!(copy[len - 1], 42.0);
                assert_eq!(&copy[..len - 1], &values[..len - 1]);
            }
        }
    }
}
