//! The hot loops of the averaging rules. On wasm32 they use 128-bit SIMD, 16 floats per
//! iteration, so the per-loop-iteration epoch check of the sandbox costs little; natively the
//! plain loops below are auto-vectorised.

/// `out[i] = a * x[i]`.
pub fn scale_into(out: &mut [f32], a: f32, x: &[f32]) {
    let n = out.len().min(x.len());
    let (out, x) = (&mut out[..n], &x[..n]);
    #[cfg(target_arch = "wasm32")]
    {
        use core::arch::wasm32::*;
        let va = f32x4_splat(a);
        let body = n / 16 * 16;
        let (o, xp) = (out.as_mut_ptr(), x.as_ptr());
        let mut i = 0;
        // SAFETY: i + 16 <= body <= n, the length of both slices.
        unsafe {
            while i < body {
                for k in 0..4 {
                    let p = i + 4 * k;
                    v128_store(
                        o.add(p) as *mut v128,
                        f32x4_mul(va, v128_load(xp.add(p) as *const v128)),
                    );
                }
                i += 16;
            }
        }
        for j in body..n {
            out[j] = a * x[j];
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    for (o, v) in out.iter_mut().zip(x) {
        *o = a * v;
    }
}

/// `out[i] += a * x[i] + b * y[i]`.
pub fn add_two(out: &mut [f32], a: f32, x: &[f32], b: f32, y: &[f32]) {
    let n = out.len().min(x.len()).min(y.len());
    let (out, x, y) = (&mut out[..n], &x[..n], &y[..n]);
    #[cfg(target_arch = "wasm32")]
    {
        use core::arch::wasm32::*;
        let (va, vb) = (f32x4_splat(a), f32x4_splat(b));
        let body = n / 16 * 16;
        let (o, xp, yp) = (out.as_mut_ptr(), x.as_ptr(), y.as_ptr());
        let mut i = 0;
        // SAFETY: i + 16 <= body <= n, the length of all three slices.
        unsafe {
            while i < body {
                for k in 0..4 {
                    let p = i + 4 * k;
                    let acc = v128_load(o.add(p) as *const v128);
                    let ax = f32x4_mul(va, v128_load(xp.add(p) as *const v128));
                    let by = f32x4_mul(vb, v128_load(yp.add(p) as *const v128));
                    v128_store(o.add(p) as *mut v128, f32x4_add(acc, f32x4_add(ax, by)));
                }
                i += 16;
            }
        }
        for j in body..n {
            out[j] += a * x[j] + b * y[j];
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    for ((o, u), v) in out.iter_mut().zip(x).zip(y) {
        *o += a * u + b * v;
    }
}

/// `out[i] += a * x[i]`.
pub fn add_one(out: &mut [f32], a: f32, x: &[f32]) {
    add_two(out, a, x, 0.0, x)
}

/// `out = Σ weights[k] * xs[k]`, two updates per pass over `out`.
pub fn weighted_sum(out: &mut [f32], weights: &[f32], xs: &[Vec<f32>]) {
    let Some((first, rest)) = xs.split_first() else {
        return;
    };
    scale_into(out, weights[0], first);
    let mut k = 0;
    while k + 1 < rest.len() {
        add_two(out, weights[k + 1], &rest[k], weights[k + 2], &rest[k + 1]);
        k += 2;
    }
    if k < rest.len() {
        add_one(out, weights[k + 1], &rest[k]);
    }
}
