//! Double-double arithmetic: a value is an unevaluated sum `hi + lo` of two f64 with
//! `|lo| <= ulp(hi) / 2`, about 32 significant digits. Built on the error-free transformations
//! `two_sum` (Knuth) and `two_prod` (fused multiply-add, or Dekker's product). Used where the least-squares
//! reference needs residuals, polynomial terms or parsed decimals beyond f64 precision.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// A double-double number `hi + lo`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DD {
    pub hi: f64,
    pub lo: f64,
}

/// `a + b = s + e` exactly.
#[inline]
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `a * b = p + e` exactly (barring overflow): one fused multiply-add where the build target
/// has FMA, else Dekker's product on Veltkamp halves (`f64::mul_add` without hardware FMA is a
/// slow library call).
#[inline]
pub fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    #[cfg(target_feature = "fma")]
    {
        (p, a.mul_add(b, -p))
    }
    #[cfg(not(target_feature = "fma"))]
    {
        let (ah, al) = split(a);
        let (bh, bl) = split(b);
        (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
    }
}

/// `sum + err += a * b`: the rounded product added to `sum` exactly, both rounding errors to
/// `err` (the step of a compensated dot product; `mul_add` must be a fused multiply-add).
#[inline(always)]
pub fn accumulate(sum: &mut f64, err: &mut f64, a: f64, b: f64) {
    let p = a * b;
    let product_error = a.mul_add(b, -p);
    let (s, sum_error) = two_sum(*sum, p);
    *sum = s;
    *err += sum_error + product_error;
}

/// A compensated sum and its gathered errors as a normalized double-double.
#[inline(always)]
pub fn normalized(sum: f64, err: f64) -> DD {
    let (hi, lo) = two_sum(sum, err);
    DD { hi, lo }
}

/// Partial sums of a compensated dot product, whatever the SIMD width.
pub const LANES: usize = 16;

/// [`LANES`] compensated sums, element `j` of a dot product going to sum `j % LANES`: each a
/// running f64 sum and the errors of its products and additions gathered apart, combined by a
/// fixed pairwise tree of error-free sums. The order, and so every bit, does not depend on the
/// SIMD width the caller is compiled for.
#[derive(Clone, Copy, Default)]
pub struct Compensated {
    sum: [f64; LANES],
    err: [f64; LANES],
}

impl Compensated {
    /// Adds `a * b` to sum `lane`.
    #[inline(always)]
    pub fn add(&mut self, lane: usize, a: f64, b: f64) {
        accumulate(&mut self.sum[lane], &mut self.err[lane], a, b);
    }

    /// Adds `a * (b_hi + b_lo)` to sum `lane`, the low part's product among the errors.
    #[inline(always)]
    pub fn add_dd(&mut self, lane: usize, a: f64, b_hi: f64, b_lo: f64) {
        self.add(lane, a, b_hi);
        self.err[lane] = a.mul_add(b_lo, self.err[lane]);
    }

    /// The sums added by a fixed pairwise tree of error-free sums.
    #[inline(always)]
    pub fn total(mut self) -> DD {
        let mut total_err = 0.0;
        for e in self.err {
            total_err += e;
        }
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for l in 0..width {
                let (s, e) = two_sum(self.sum[l], self.sum[l + width]);
                self.sum[l] = s;
                total_err += e;
            }
        }
        normalized(self.sum[0], total_err)
    }
}

/// Veltkamp split of `a` into two halves of 26 significant bits each, `a = hi + lo` exactly.
#[inline]
#[cfg_attr(target_feature = "fma", allow(dead_code))]
fn split(a: f64) -> (f64, f64) {
    const FACTOR: f64 = 134_217_729.0; // 2^27 + 1
    let c = FACTOR * a;
    let hi = c - (c - a);
    (hi, a - hi)
}

#[inline]
fn quick_two_sum(a: f64, b: f64) -> DD {
    let s = a + b;
    DD {
        hi: s,
        lo: b - (s - a),
    }
}

impl DD {
    pub const ZERO: DD = DD { hi: 0.0, lo: 0.0 };

    pub fn new(v: f64) -> DD {
        DD { hi: v, lo: 0.0 }
    }

    /// The nearest f64.
    pub fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    /// `self * b` for an f64 `b`.
    #[inline]
    pub fn mul_f64(self, b: f64) -> DD {
        let (p, e) = two_prod(self.hi, b);
        quick_two_sum(p, e + self.lo * b)
    }

    /// `self + b` for an f64 `b`.
    #[inline]
    pub fn add_f64(self, b: f64) -> DD {
        let (s, e) = two_sum(self.hi, b);
        quick_two_sum(s, e + self.lo)
    }

    /// `self^k` by repeated multiplication (k small).
    pub fn powi(self, k: u32) -> DD {
        (0..k).fold(DD::new(1.0), |acc, _| acc * self)
    }

    /// Parses a decimal such as `-0.246781078275479E-02` to double-double precision: the digits
    /// are accumulated exactly, then scaled by a power of ten in double-double.
    pub fn parse(text: &str) -> Option<DD> {
        let t = text.trim();
        let (negative, body) = match t.as_bytes().first()? {
            b'-' => (true, &t[1..]),
            b'+' => (false, &t[1..]),
            _ => (false, t),
        };
        let (mantissa, exponent) = match body.find(['e', 'E', 'd', 'D']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        let mut digits = DD::ZERO;
        let mut scale = exponent;
        let mut seen_point = false;
        let mut any = false;
        for c in mantissa.chars() {
            match c {
                '0'..='9' => {
                    digits = digits.mul_f64(10.0).add_f64(f64::from(c as u8 - b'0'));
                    any = true;
                    if seen_point {
                        scale -= 1;
                    }
                }
                '.' if !seen_point => seen_point = true,
                _ => return None,
            }
        }
        if !any {
            return None;
        }
        let power = DD::new(10.0).powi(scale.unsigned_abs());
        let value = if scale >= 0 {
            digits * power
        } else {
            digits / power
        };
        Some(if negative { -value } else { value })
    }
}

impl Add for DD {
    type Output = DD;
    #[inline]
    fn add(self, b: DD) -> DD {
        let (s, e) = two_sum(self.hi, b.hi);
        let (t, f) = two_sum(self.lo, b.lo);
        let s = quick_two_sum(s, e + t);
        quick_two_sum(s.hi, s.lo + f)
    }
}

impl Div for DD {
    type Output = DD;
    /// Long division: three f64 quotient digits, each refined against the exact remainder.
    fn div(self, b: DD) -> DD {
        let q1 = self.hi / b.hi;
        let r = self - b.mul_f64(q1);
        let q2 = r.hi / b.hi;
        let r = r - b.mul_f64(q2);
        let q3 = r.hi / b.hi;
        quick_two_sum(q1, q2).add_f64(q3)
    }
}

impl Neg for DD {
    type Output = DD;
    fn neg(self) -> DD {
        DD {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

impl Sub for DD {
    type Output = DD;
    #[inline]
    fn sub(self, b: DD) -> DD {
        self + (-b)
    }
}

impl Mul for DD {
    type Output = DD;
    #[inline]
    fn mul(self, b: DD) -> DD {
        let (p, e) = two_prod(self.hi, b.hi);
        quick_two_sum(p, e + (self.hi * b.lo + self.lo * b.hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_third_times_three_is_one_to_double_double_precision() {
        let third = DD::new(1.0) / DD::new(3.0);
        let back = third.mul_f64(3.0) - DD::new(1.0);
        assert!(back.to_f64().abs() < 1e-31, "{back:?}");
        // f64 alone leaves an error of order 1e-17 in the low part.
        assert!(third.lo != 0.0);
    }

    #[test]
    fn parse_keeps_digits_beyond_f64() {
        // 0.1 is not an f64: the double-double parse carries the rounding error in `lo`.
        let tenth = DD::parse("0.1").unwrap();
        assert_eq!(tenth.hi, 0.1);
        let err = (tenth.mul_f64(10.0) - DD::new(1.0)).to_f64();
        assert!(err.abs() < 1e-31, "{err}");
        let v = DD::parse("-0.246781078275479E-02").unwrap();
        assert_eq!(v.to_f64(), -0.246781078275479e-2);
        assert_eq!(DD::parse("1e3").unwrap().to_f64(), 1000.0);
        assert!(
            DD::parse("abc").is_none() && DD::parse("").is_none() && DD::parse("1.2.3").is_none()
        );
    }

    #[test]
    fn dekker_product_is_exact_on_awkward_operands() {
        for (a, b) in [
            (0.1, 0.3),
            (1e10 / 3.0, 7.0 / 11.0),
            (-123456.789, 9.87654321e-5),
        ] {
            let (p, e) = two_prod(a, b);
            let (ah, al) = split(a);
            assert_eq!(ah + al, a);
            // Exact by the fused multiply-add, computed independently.
            assert_eq!(e, a.mul_add(b, -p), "{a} * {b}");
        }
    }

    #[test]
    fn two_prod_is_exact() {
        let (a, b) = (1.0 + f64::EPSILON, 1.0 - f64::EPSILON);
        let (p, e) = two_prod(a, b);
        // (1 + u)(1 - u) = 1 - u^2 exactly.
        assert_eq!(p, 1.0);
        assert_eq!(e, -f64::EPSILON * f64::EPSILON);
    }
}
