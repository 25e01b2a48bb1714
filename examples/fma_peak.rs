//! The machine's peak rate of fused multiply-adds in f64, for `bench/compare.sh` to set sweep's
//! FLOP rate against: independent chains of vector FMAs held in registers (enough chains to
//! cover the instruction's latency on two ports), at the widest SIMD level this CPU has, on one
//! thread and on every core at once. Prints one line of JSON: the CPU model, the SIMD level and
//! the GFLOP/s (an FMA counts two flops).
//!
//! `cargo build --release --examples`, then `target/release/examples/fma_peak`.

use std::time::Instant;

/// Independent accumulator registers.
const CHAINS: usize = 16;
/// FMAs per chain per timed pass.
const ROUNDS: usize = 50_000_000;

/// Runs `ROUNDS` FMAs on each of `CHAINS` vectors of `lanes` f64; returns flops per second and a
/// value that depends on every result (so that nothing is optimized away).
fn rate(level: &str) -> (f64, f64) {
    let start = Instant::now();
    // SAFETY: the level was detected on this CPU.
    let (sink, lanes) = unsafe {
        match level {
            #[cfg(target_arch = "x86_64")]
            "avx512" => (x86::avx512(ROUNDS), 8),
            #[cfg(target_arch = "x86_64")]
            "avx2" => (x86::avx2(ROUNDS), 4),
            _ => (portable(ROUNDS), 1),
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let flops = 2.0 * (ROUNDS * CHAINS * lanes) as f64;
    (flops / seconds, sink)
}

fn portable(rounds: usize) -> f64 {
    let mut acc = [1.0f64; CHAINS];
    let (a, b) = (std::hint::black_box(0.999_999), std::hint::black_box(1e-9));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = v.mul_add(a, b);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn avx512(rounds: usize) -> f64 {
        let a = _mm512_set1_pd(std::hint::black_box(0.999_999));
        let b = _mm512_set1_pd(std::hint::black_box(1e-9));
        let mut acc = [_mm512_set1_pd(1.0); CHAINS];
        for _ in 0..rounds {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_pd(*v, a, b);
            }
        }
        acc.iter().map(|v| _mm512_reduce_add_pd(*v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(rounds: usize) -> f64 {
        let a = _mm256_set1_pd(std::hint::black_box(0.999_999));
        let b = _mm256_set1_pd(std::hint::black_box(1e-9));
        let mut acc = [_mm256_set1_pd(1.0); CHAINS];
        for _ in 0..rounds {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_pd(*v, a, b);
            }
        }
        let mut out = [0.0; 4];
        acc.iter()
            .map(|v| {
                _mm256_storeu_pd(out.as_mut_ptr(), *v);
                out.iter().sum::<f64>()
            })
            .sum()
    }
}

/// The widest level this CPU runs, as `sweep` names them.
fn level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
            return "avx512";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "avx2";
        }
    }
    "portable"
}

fn main() {
    let level = level();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (one, sink) = rate(level);
    let all: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores).map(|_| s.spawn(|| rate(level).0)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a thread"))
            .sum()
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "{{\"cpu\": \"{cpu}\", \"simd\": \"{level}\", \"cores\": {cores}, \"gflops_one_thread\": {:.2}, \
         \"gflops_all_cores\": {:.2}, \"check\": {}}}",
        one / 1e9,
        all / 1e9,
        sink.is_finite()
    );
}
