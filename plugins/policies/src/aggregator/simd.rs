//! The hot loops of the averaging rules. On wasm32 they use 128-bit SIMD, 16 floats of up to
//! eight updates per iteration: the sandbox checks its deadline at every loop iteration, so
//! doing much work per iteration keeps that check cheap, and the output is read and written
//! once per eight updates. Natively the plain loops below are auto-vectorised.

/// `out[i] = (if accumulate { out[i] } else { 0 }) + Σ w[k] * xs[k][i]`.
fn combine<const K: usize>(out: &mut [f32], accumulate: bool, w: [f32; K], xs: [&[f32]; K]) {
    let n = out.len();
    let xs = xs.map(|x| &x[..n]);
    #[cfg(target_arch = "wasm32")]
    let done = {
        use core::arch::wasm32::*;
        let vw = w.map(|x| f32x4_splat(x));
        let p = xs.map(|x| x.as_ptr());
        let o = out.as_mut_ptr();
        let body = n / 16 * 16;
        let mut i = 0;
        // SAFETY: i + 16 <= body <= n, and `out` and every `xs[k]` hold n values.
        unsafe {
            while i < body {
                let mut acc = [f32x4_splat(0.0); 4];
                if accumulate {
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = v128_load(o.add(i + 4 * j) as *const v128);
                    }
                }
                for k in 0..K {
                    for (j, a) in acc.iter_mut().enumerate() {
                        let x = v128_load(p[k].add(i + 4 * j) as *const v128);
                        *a = f32x4_add(*a, f32x4_mul(vw[k], x));
                    }
                }
                for (j, a) in acc.iter().enumerate() {
                    v128_store(o.add(i + 4 * j) as *mut v128, *a);
                }
                i += 16;
            }
        }
        body
    };
    #[cfg(not(target_arch = "wasm32"))]
    let done = 0;
    for (j, o) in out.iter_mut().enumerate().skip(done) {
        let mut v = if accumulate { *o } else { 0.0 };
        for k in 0..K {
            v += w[k] * xs[k][j];
        }
        *o = v;
    }
}

/// `out = Σ weights[k] * xs[k]`, up to eight updates per pass over `out`.
pub fn weighted_sum(out: &mut [f32], weights: &[f32], xs: &[Vec<f32>]) {
    fn group<const K: usize>(out: &mut [f32], acc: bool, w: &[f32], xs: &[Vec<f32>]) {
        combine::<K>(
            out,
            acc,
            std::array::from_fn(|k| w[k]),
            std::array::from_fn(|k| &xs[k][..]),
        );
    }
    if xs.is_empty() {
        out.fill(0.0);
        return;
    }
    let mut k = 0;
    while k < xs.len() {
        let (w, x, acc) = (&weights[k..], &xs[k..], k > 0);
        k += match xs.len() - k {
            8.. => {
                group::<8>(out, acc, w, x);
                8
            }
            4..=7 => {
                group::<4>(out, acc, w, x);
                4
            }
            2..=3 => {
                group::<2>(out, acc, w, x);
                2
            }
            _ => {
                group::<1>(out, acc, w, x);
                1
            }
        };
    }
}

/// Whether every value is finite, without a branch per value.
pub fn all_finite(v: &[f32]) -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        use core::arch::wasm32::*;
        let body = v.len() / 32 * 32;
        let p = v.as_ptr();
        // x - x is 0 for finite x and NaN for NaN or ±inf; NaN != NaN.
        let mut bad = i32x4_splat(0);
        let mut i = 0;
        // SAFETY: i + 32 <= body <= v.len().
        unsafe {
            while i < body {
                for j in 0..8 {
                    let a = v128_load(p.add(i + 4 * j) as *const v128);
                    let d = f32x4_sub(a, a);
                    bad = v128_or(bad, f32x4_ne(d, d));
                }
                i += 32;
            }
        }
        !v128_any_true(bad) && v[body..].iter().all(|x| x.is_finite())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        !v.iter().fold(false, |bad, x| bad | !x.is_finite())
    }
}

/// Coordinates per block of [`sort_columns`]: every row's block (1 KiB) stays in L1 while the
/// network runs over it.
const SORT_BLOCK: usize = 256;

/// Sorts every column of `rows` (equal-length rows of finite values): afterwards
/// `rows[0][i] <= rows[1][i] <= ...` for each `i`. An odd-even transposition network that
/// swaps two neighbours only when they are strictly out of order, so each column comes out in
/// exactly the order a stable sort gives (signed zeros included), branch-free and vectorised
/// across coordinates. `n` passes of up to `n / 2` compare-exchanges: for the handful of
/// updates of a round far cheaper than sorting each coordinate on its own.
pub fn sort_columns(rows: &mut [Vec<f32>]) {
    let n = rows.len();
    let len = rows.first().map_or(0, |r| r.len());
    for start in (0..len).step_by(SORT_BLOCK) {
        let end = (start + SORT_BLOCK).min(len);
        for pass in 0..n {
            let mut k = pass % 2;
            while k + 1 < n {
                let (low, high) = rows.split_at_mut(k + 1);
                compare_exchange(&mut low[k][start..end], &mut high[0][start..end]);
                k += 2;
            }
        }
    }
}

/// Calls `step(k, j)` for `k = 0, 4, 8, ...` up to the largest multiple of 16 in `n`, with
/// `j = k / 4 % 4`: four vectors of four floats per loop iteration, so the sandbox's deadline
/// check runs once per 16 floats. Returns where the scalar tail starts.
#[inline(always)]
#[cfg(any(target_arch = "wasm32", target_arch = "x86_64"))]
fn by_four_vectors(n: usize, mut step: impl FnMut(usize, usize)) -> usize {
    let body = n / 16 * 16;
    let mut i = 0;
    while i < body {
        for j in 0..4 {
            step(i + 4 * j, j);
        }
        i += 16;
    }
    body
}

/// `(x[i], y[i]) = (y[i], x[i])` where `y[i] < x[i]`.
fn compare_exchange(x: &mut [f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    #[cfg(any(target_arch = "wasm32", target_arch = "x86_64"))]
    let (px, py) = (x.as_mut_ptr(), y.as_mut_ptr());
    // SAFETY (both blocks): `by_four_vectors` gives k + 4 <= n, the length of both slices.
    #[cfg(target_arch = "wasm32")]
    let done = by_four_vectors(n, |k, _| unsafe {
        use core::arch::wasm32::*;
        let a = v128_load(px.add(k) as *const v128);
        let b = v128_load(py.add(k) as *const v128);
        let swap = f32x4_lt(b, a);
        v128_store(px.add(k) as *mut v128, v128_bitselect(b, a, swap));
        v128_store(py.add(k) as *mut v128, v128_bitselect(a, b, swap));
    });
    // Natively (the benchmark's reference) the same with SSE, part of x86_64: `minps v, u` is
    // exactly `v < u ? v : u` and `maxps u, v` exactly `v < u ? u : v` (ties and signed zeros
    // included). LLVM does not vectorise the plain loop below: it turns the store into `y`
    // into a masked, scalar one.
    #[cfg(target_arch = "x86_64")]
    let done = by_four_vectors(n, |k, _| unsafe {
        use std::arch::x86_64::*;
        let a = _mm_loadu_ps(px.add(k));
        let b = _mm_loadu_ps(py.add(k));
        _mm_storeu_ps(px.add(k), _mm_min_ps(b, a));
        _mm_storeu_ps(py.add(k), _mm_max_ps(a, b));
    });
    #[cfg(not(any(target_arch = "wasm32", target_arch = "x86_64")))]
    let done = 0;
    for (a, b) in x[done..n].iter_mut().zip(&mut y[done..n]) {
        let (u, v) = (*a, *b);
        let swap = v < u;
        *a = if swap { v } else { u };
        *b = if swap { u } else { v };
    }
}

/// `Σ ((a[i] - b[i]) as f64)²`: the difference in f32, its square and the sum in f64, with
/// eight partial sums (so the additions do not wait on each other) added up at the end.
pub fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let mut acc = [0f64; 8];
    #[cfg(target_arch = "wasm32")]
    let done = {
        use core::arch::wasm32::*;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut v = [f64x2_splat(0.0); 4];
        // SAFETY: `by_four_vectors` gives k + 4 <= n, the length of both slices.
        let body = by_four_vectors(n, |k, j| unsafe {
            let d = f32x4_sub(
                v128_load(pa.add(k) as *const v128),
                v128_load(pb.add(k) as *const v128),
            );
            let low = f64x2_promote_low_f32x4(d);
            let high = f64x2_promote_low_f32x4(i32x4_shuffle::<2, 3, 0, 1>(d, d));
            v[j] = f64x2_add(v[j], f64x2_add(f64x2_mul(low, low), f64x2_mul(high, high)));
        });
        for (j, x) in v.iter().enumerate() {
            acc[2 * j] = f64x2_extract_lane::<0>(*x);
            acc[2 * j + 1] = f64x2_extract_lane::<1>(*x);
        }
        body
    };
    #[cfg(not(target_arch = "wasm32"))]
    let done = {
        let body = n / 8 * 8;
        for (xa, xb) in a[..body].chunks_exact(8).zip(b[..body].chunks_exact(8)) {
            for j in 0..8 {
                let d = (xa[j] - xb[j]) as f64;
                acc[j] += d * d;
            }
        }
        body
    };
    let tail: f64 = a[done..n]
        .iter()
        .zip(&b[done..n])
        .map(|(x, y)| {
            let d = (x - y) as f64;
            d * d
        })
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// `out[i] = (Σ rows[r][i] as f64, r ascending) as f32 / rows.len() as f32`, for at least
/// one row, each at least `out.len()` long. Each coordinate's sum runs in the same order on
/// every path, so results are the same bits.
pub fn mean_of_rows(out: &mut [f32], rows: &[Vec<f32>]) {
    let n = out.len();
    let count = rows.len() as f32;
    #[cfg(target_arch = "wasm32")]
    let done = {
        use core::arch::wasm32::*;
        let body = n / 4 * 4;
        let vcount = f32x4_splat(count);
        let o = out.as_mut_ptr();
        let mut i = 0;
        // SAFETY: i + 4 <= body <= n, and `out` and every row hold at least n values.
        unsafe {
            while i < body {
                let first = v128_load(rows[0].as_ptr().add(i) as *const v128);
                let mut low = f64x2_promote_low_f32x4(first);
                let mut high = f64x2_promote_low_f32x4(i32x4_shuffle::<2, 3, 0, 1>(first, first));
                for row in &rows[1..] {
                    let x = v128_load(row.as_ptr().add(i) as *const v128);
                    low = f64x2_add(low, f64x2_promote_low_f32x4(x));
                    high = f64x2_add(
                        high,
                        f64x2_promote_low_f32x4(i32x4_shuffle::<2, 3, 0, 1>(x, x)),
                    );
                }
                let sums = i32x4_shuffle::<0, 1, 4, 5>(
                    f32x4_demote_f64x2_zero(low),
                    f32x4_demote_f64x2_zero(high),
                );
                v128_store(o.add(i) as *mut v128, f32x4_div(sums, vcount));
                i += 4;
            }
        }
        body
    };
    #[cfg(not(target_arch = "wasm32"))]
    let done = {
        // Row by row over the whole chunk: the conversions and additions vectorise.
        let mut sum: Vec<f64> = rows[0][..n].iter().map(|&v| v as f64).collect();
        for row in &rows[1..] {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        for (o, s) in out.iter_mut().zip(&sum) {
            *o = *s as f32 / count;
        }
        n
    };
    for (i, o) in out.iter_mut().enumerate().skip(done) {
        let s = rows[1..]
            .iter()
            .fold(rows[0][i] as f64, |s, r| s + r[i] as f64);
        *o = s as f32 / count;
    }
}
