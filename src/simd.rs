//! The SIMD level of the hand-written numerical loops (SGD kernels, double-double products of the
//! reference), chosen at run time for the CPU at hand, never by a build flag. Each loop is
//! compiled once per level with `#[target_feature]`; the callers keep the order of operations
//! independent of the level, so every level gives the same bits.

use crate::enums::named_enum;

/// Calls `module::avx512::name`, `module::avx2::name` or `module::portable::name` for the level
/// (asserting that this CPU runs it): the modules hold the same loop compiled per level.
macro_rules! dispatch {
    ($level:expr, $module:ident :: $name:ident($($arg:expr),*)) => {{
        let level: $crate::simd::SimdLevel = $level;
        assert!(level.is_available(), "this CPU cannot run SIMD level {level}");
        // SAFETY: the CPU has the level's features (asserted above).
        unsafe { $crate::simd::dispatch_checked!(level, $module::$name($($arg),*)) }
    }};
}
pub(crate) use dispatch;

/// [`dispatch!`] without the check, for the steps of a training loop, whose level was checked
/// once before the loop began: the per-call check was a load and a branch per kernel call, three
/// per member and minibatch step. Expands to calls of `unsafe` functions, so it must be written
/// in an `unsafe` block whose comment says where the level was checked.
macro_rules! dispatch_checked {
    ($level:expr, $module:ident :: $name:ident($($arg:expr),*)) => {{
        match $level {
            #[cfg(target_arch = "x86_64")]
            $crate::simd::SimdLevel::Avx512 => $module::avx512::$name($($arg),*),
            #[cfg(target_arch = "x86_64")]
            $crate::simd::SimdLevel::Avx2 => $module::avx2::$name($($arg),*),
            _ => $module::portable::$name($($arg),*),
        }
    }};
}
pub(crate) use dispatch_checked;

/// The modules `avx512`, `avx2` and `portable` that [`dispatch!`] calls: for each signature
/// given, a function of that name compiled for the level, which calls the module's own
/// `#[inline(always)]` function of the same name (so that it is compiled with the level's
/// features). Generics go in brackets: `fn name[T: Real](x: &[T]) -> T;`.
macro_rules! at_every_level {
    ($($(#[$attr:meta])* fn $name:ident $([$($generics:tt)*])? ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        /// Compiled for x86-64 with AVX-512 (F, VL) and FMA.
        #[cfg(target_arch = "x86_64")]
        pub mod avx512 {
            use super::*;
            $(
                $(#[$attr])*
                #[target_feature(enable = "avx512f,avx512vl,fma")]
                pub unsafe fn $name $(<$($generics)*>)? ($($arg: $ty),*) $(-> $ret)? {
                    super::$name($($arg),*)
                }
            )*
        }

        /// Compiled for x86-64 with AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        pub mod avx2 {
            use super::*;
            $(
                $(#[$attr])*
                #[target_feature(enable = "avx2,fma")]
                pub unsafe fn $name $(<$($generics)*>)? ($($arg: $ty),*) $(-> $ret)? {
                    super::$name($($arg),*)
                }
            )*
        }

        /// Compiled for any CPU (`mul_add` may be a library call).
        pub mod portable {
            use super::*;
            $(
                $(#[$attr])*
                pub fn $name $(<$($generics)*>)? ($($arg: $ty),*) $(-> $ret)? {
                    super::$name($($arg),*)
                }
            )*
        }
    };
}
pub(crate) use at_every_level;

named_enum! {
    /// The instruction set the training loop is compiled for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum SimdLevel {
        /// Any CPU: the compiler's baseline target (`mul_add` may be a library call).
        Portable => "portable",
        /// x86-64 with AVX2 and FMA.
        Avx2 => "avx2",
        /// x86-64 with AVX-512 (F, VL) and FMA.
        Avx512 => "avx512",
    }
}

impl SimdLevel {
    /// Whether this CPU can run code compiled for `self`.
    pub fn is_available(self) -> bool {
        match self {
            SimdLevel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The widest level this CPU runs (detected once).
    pub fn detect() -> SimdLevel {
        static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            SimdLevel::ALL
                .iter()
                .rev()
                .copied()
                .find(|l| l.is_available())
                .unwrap_or(SimdLevel::Portable)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detected_level_is_available_and_portable_always_is() {
        assert!(SimdLevel::Portable.is_available());
        assert!(SimdLevel::detect().is_available());
    }
}
