//! The training features of a data set under one whitening, as the SGD loop reads them: `x' = W x`
//! (or the data set's own rows), stored row-major and, for small data sets, padded with zeros to
//! a multiple of 16 values per row so that the kernels run without tails (the same bits either
//! way), with their column means, row norms and, made when first needed, the Gram matrix of the
//! train-MSE identity.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use faer::{Accum, Mat, MatMut, MatRef};

use crate::aligned::{AlignedBuf, Plain};
use crate::config::{Dtype, Whiten};
use crate::data::Dataset;
use crate::error::Result;
use crate::reference::{self, Reference};
use crate::train::Gram;

/// The training features of a data set under one whitening: `x' = W x` with `W` and `W^{-1}`
/// (the data set's own features without whitening), their column means and row norms.
#[derive(Clone)]
pub struct Features {
    pub x: Rows<f64>,
    /// `x` rounded to f32, when runs train in f32.
    pub x32: Option<Rows<f32>>,
    /// Values per stored row of `x` (see [`padded_width`]).
    pub stride: usize,
    pub whitening: Option<Mat<f64>>,
    pub whitening_inverse: Option<Mat<f64>>,
    pub mean: Vec<f64>,
    pub row_norm2: Arc<[f64]>,
    /// `G` of these features (see [`Prepared::gram`]).
    pub gram: Arc<OnceLock<Gram>>,
}

impl Features {
    /// The features of `data` under `whiten`; the whitening product of a big data set splits over
    /// the threads as its factorization does ([`reference::parallelism`]).
    pub fn of(data: &Dataset, reference: &Reference, whiten: Whiten, eps: f64) -> Result<Features> {
        let (n, d) = (data.n, data.d);
        let (x, whitening, whitening_inverse) = if whiten == Whiten::None {
            (Rows::Shared(data.x.clone()), None, None)
        } else {
            let zca = whiten == Whiten::Zca;
            let (w, w_inv) = reference::whitening(&reference.spectrum, zca, eps)?;
            // X W^T straight from and into row-major storage: no column-major copies.
            let mut flat = AlignedBuf::zeroed(n * d);
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(&mut flat, n, d),
                Accum::Replace,
                MatRef::from_row_major_slice(&data.x, n, d),
                w.transpose(),
                1.0,
                reference::parallelism(n, d),
            );
            (Rows::aligned(flat), Some(w), Some(w_inv))
        };
        let mean = reference::column_means(&x, n, d);
        let row_norm2 = x
            .chunks_exact(d)
            .map(|row| row.iter().map(|v| v * v).sum())
            .collect();
        let stride = padded_width(n, d);
        let x = if stride == d {
            x
        } else {
            let mut padded = AlignedBuf::zeroed(n * stride);
            for (to, from) in padded.chunks_exact_mut(stride).zip(x.chunks_exact(d)) {
                to[..d].copy_from_slice(from);
            }
            Rows::aligned(padded)
        };
        Ok(Features {
            x,
            x32: None,
            stride,
            whitening,
            whitening_inverse,
            mean,
            row_norm2,
            gram: Arc::default(),
        })
    }
}

impl Features {
    /// The same features stored with `stride` values per row (at least `d`; zeros after the
    /// features): padded or not, runs give the same bits (tested).
    pub fn with_stride(self, stride: usize) -> Features {
        let d = self.mean.len();
        assert!(stride >= d, "a stride of at least d = {d}");
        let mut x = AlignedBuf::zeroed(self.x.len() / self.stride * stride);
        for (to, from) in x
            .chunks_exact_mut(stride)
            .zip(self.x.chunks_exact(self.stride))
        {
            to[..d].copy_from_slice(&from[..d]);
        }
        Features {
            x: Rows::aligned(x),
            stride,
            x32: None,
            gram: Arc::default(),
            ..self
        }
    }

    /// These features for runs in `dtype`: for f32, the rows rounded to f32 and their norms
    /// recomputed from the rounded values (in f64).
    pub fn with_dtype(self, dtype: Dtype) -> Features {
        if dtype == Dtype::F64 {
            return self;
        }
        let x32 = Rows::aligned(AlignedBuf::from_values(self.x.iter().map(|v| *v as f32)));
        let d = self.mean.len();
        let row_norm2 = x32
            .chunks_exact(self.stride)
            .map(|row| row[..d].iter().map(|v| f64::from(*v) * f64::from(*v)).sum())
            .collect();
        Features {
            x32: Some(x32),
            row_norm2,
            gram: Arc::default(),
            ..self
        }
    }
}

/// Stored training rows, row-major: the data set's own (shared, when neither whitened nor padded)
/// or a copy that starts on a cache line ([`AlignedBuf`]; rows of a padded stride then start on
/// one too).
#[derive(Clone)]
pub enum Rows<T> {
    Shared(Arc<[T]>),
    Aligned(Arc<AlignedBuf<T>>),
}

impl<T: Plain> Rows<T> {
    fn aligned(buf: AlignedBuf<T>) -> Rows<T> {
        Rows::Aligned(Arc::new(buf))
    }
}

impl<T: Plain> Deref for Rows<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Rows::Shared(values) => values,
            Rows::Aligned(values) => values,
        }
    }
}

impl<T: Plain> std::fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rows({} values)", self.len())
    }
}

/// Stored training rows smaller than this are padded (see [`padded_width`]).
const PAD_BELOW_BYTES: usize = 32 << 20;

/// Values per stored training row for `n x d` features: `d` rounded up to a multiple of 16 (the
/// SGD kernels' partial sums), the added values zero, when the padded rows stay within 32 MB
/// (about the size of a last-level cache, where the kernels' tails are what costs); else `d`.
/// Zero lanes add nothing to any sum, so padded or not, runs give the same bits.
pub fn padded_width(n: usize, d: usize) -> usize {
    let padded = d.div_ceil(16) * 16;
    if n * padded * 8 <= PAD_BELOW_BYTES {
        padded
    } else {
        d
    }
}
