//! A big data set's preparation split over threads (the generator's QR and fit, the reference's
//! refinement and spectrum, the whitening product) gives the same bits at 1, 2, 3 and 8 threads,
//! with one factorization for the generator and the reference as with two; a big design that is
//! not of full rank (the minimum-norm route) too.

use faer::{Mat, Par};
use sweep::config::{DataConfig, Whiten};
use sweep::data;
use sweep::preprocess::Features;
use sweep::reference::{self, Reference, DD};

/// Every number of a prepared data set that a table or a run reads, as bits, by name.
type Bits = Vec<(&'static str, Vec<u64>)>;

fn bits_of(data: &data::Dataset, reference: &Reference, features: &[Features]) -> Bits {
    let fit = &reference.fit;
    let matrix = |m: &Mat<f64>| -> Vec<f64> {
        (0..m.ncols())
            .flat_map(|j| m.col(j).iter().copied().collect::<Vec<_>>())
            .collect()
    };
    let steps = fit.refinement_steps as f64;
    let mut parts: Vec<(&'static str, Vec<f64>)> = vec![
        ("target", data.y.to_vec()),
        ("coefficients", fit.coefficients.clone()),
        (
            "intercept, sse, r2, cond, steps",
            vec![
                fit.intercept.unwrap(),
                fit.sse,
                fit.r2,
                fit.condition_number,
                steps,
            ],
        ),
        ("eigenvalues", reference.spectrum.eigenvalues.clone()),
        ("eigenvectors", matrix(&reference.spectrum.eigenvectors)),
    ];
    for f in features {
        parts.push(("whitened rows", f.x.to_vec()));
        parts.push((
            "means and row norms",
            f.mean.iter().chain(f.row_norm2.iter()).copied().collect(),
        ));
        parts.push(("whitening", f.whitening.iter().flat_map(matrix).collect()));
        parts.push((
            "its inverse",
            f.whitening_inverse.iter().flat_map(matrix).collect(),
        ));
    }
    parts
        .into_iter()
        .map(|(name, v)| (name, v.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

/// The name of the first part whose bits differ.
fn first_difference(a: &Bits, b: &Bits) -> Option<&'static str> {
    a.iter().zip(b).find(|(x, y)| x.1 != y.1).map(|(x, _)| x.0)
}

/// The generator's data set, its reference from the generator's factorization, and the
/// features under both whitenings.
fn prepared(config: &DataConfig) -> Bits {
    let (data, factored) = data::lagged_levels_factored(config, 5).unwrap();
    let reference = Reference::from_factored(&data, &factored).unwrap();
    let features: Vec<Features> = [Whiten::Zca, Whiten::Pca]
        .map(|w| Features::of(&data, &reference, w, 1e-10).unwrap())
        .into();
    bits_of(&data, &reference, &features)
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(f)
}

#[test]
fn a_big_data_set_has_the_same_bits_at_any_thread_count() {
    // Just above the work from which the preparation splits over threads: 4000 x 520 is factored
    // as one block in parts, 20,000 x 250 in eight row blocks.
    assert_eq!(reference::parallelism(4000, 460), Par::Seq);
    for (n, d) in [(4000, 520), (20_000, 250)] {
        let parts = Par::rayon(reference::PARTS);
        assert_eq!(reference::parallelism(n, d + 1), parts);
        same_bits_at_any_thread_count(n, d);
    }
}

fn same_bits_at_any_thread_count(n: usize, d: usize) {
    let config = DataConfig {
        n_rows: n as u32,
        n_features: d as u32,
        ..DataConfig::default()
    };
    let one = in_pool(1, || prepared(&config));
    // The generator and the reference each factoring the design: the same bits.
    let twice = in_pool(2, || {
        let data = data::lagged_levels(&config, 5).unwrap();
        let reference = Reference::of(&data).unwrap();
        bits_of(&data, &reference, &[])
    });
    assert_eq!(
        first_difference(&twice, &one),
        None,
        "{n} x {d}: one factorization for both"
    );
    for threads in [2, 3, 8] {
        let many = in_pool(threads, || prepared(&config));
        assert_eq!(
            first_difference(&many, &one),
            None,
            "{n} x {d}, {threads} threads"
        );
    }
}

#[test]
fn a_big_rank_deficient_fit_has_the_same_bits_at_any_thread_count() {
    // 3000 x 600 with column 599 = column 3 + column 7: rank 600 of 601 (intercept counted).
    let (n, k) = (3000, 600);
    assert_eq!(
        reference::parallelism(n, k + 1),
        Par::rayon(reference::PARTS)
    );
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut x: Vec<f64> = (0..n * k)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    for row in x.chunks_exact_mut(k) {
        row[k - 1] = row[3] + row[7];
    }
    let y: Vec<DD> = (0..n).map(|i| DD::new((i % 17) as f64 - 8.0)).collect();
    let design = reference::Design::from_rows(&x, n, k, true);
    let fit_bits = || {
        let fit = reference::fit(&design, &y).unwrap();
        assert_eq!(fit.rank, k, "one column depends on two others");
        let mut v = fit.coefficients.clone();
        v.extend([
            fit.intercept.unwrap(),
            fit.sse,
            fit.r2,
            fit.condition_number,
        ]);
        v.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let one = in_pool(1, fit_bits);
    for threads in [2, 3, 8] {
        let many = in_pool(threads, fit_bits);
        assert!(many == one, "{threads} threads: not the one-thread bits");
    }
}
