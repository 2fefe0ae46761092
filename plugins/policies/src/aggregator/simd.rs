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
