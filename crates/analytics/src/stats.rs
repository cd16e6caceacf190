//! The statistics conventions, reproduced exactly (pandas/numpy semantics), since they decide
//! the last digits of every metric (`docs/analytics.md`, Statistics conventions).
//!
//! Undefined values are NaN inside this module and its callers; documents turn them into the
//! 0 or null each field specifies, so NaN is never written.

/// `pct_change(k)`: x_t / x_{t−k} − 1; the first `k` values are undefined.
pub fn pct_change(xs: &[f64], k: usize) -> Vec<f64> {
    (0..xs.len())
        .map(|t| {
            if t < k {
                f64::NAN
            } else {
                xs[t] / xs[t - k] - 1.0
            }
        })
        .collect()
}

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (ddof = 1); NaN with fewer than two values or any non-finite value.
pub fn sample_var(xs: &[f64]) -> f64 {
    if xs.len() < 2 || xs.iter().any(|x| !x.is_finite()) {
        return f64::NAN;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Sample standard deviation (ddof = 1).
pub fn sample_std(xs: &[f64]) -> f64 {
    sample_var(xs).sqrt()
}

/// The last `w` values, or `None` when fewer exist (a rolling window is undefined until full).
pub fn last_window(xs: &[f64], w: usize) -> Option<&[f64]> {
    (w > 0 && xs.len() >= w).then(|| &xs[xs.len() - w..])
}

/// A rolling statistic over windows of `w` at every row: NaN until the window is full and
/// when any value in it is undefined.
pub fn rolling(xs: &[f64], w: usize, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    (0..xs.len())
        .map(|t| {
            if w == 0 || t + 1 < w {
                return f64::NAN;
            }
            let win = &xs[t + 1 - w..=t];
            if win.iter().any(|x| x.is_nan()) {
                f64::NAN
            } else {
                f(win)
            }
        })
        .collect()
}

/// The rolling statistic at the last row only.
pub fn rolling_last(xs: &[f64], w: usize, f: impl Fn(&[f64]) -> f64) -> f64 {
    match last_window(xs, w) {
        Some(win) if !win.iter().any(|x| x.is_nan()) => f(win),
        _ => f64::NAN,
    }
}

/// SMA_k at the last row.
pub fn sma_last(xs: &[f64], k: usize) -> f64 {
    rolling_last(xs, k, mean)
}

/// Adjusted EWMA with span N (α = 2/(N+1)) over the whole history, at the last row, computed
/// with pandas' recursion (`ewm(span, adjust=True).mean()`), which equals the weighted sum
/// Σ (1−α)^j·x_{t−j} / Σ (1−α)^j and agrees with pandas to the last bits.
pub fn ewma_adjusted_last(xs: &[f64], span: usize) -> f64 {
    let Some((&first, rest)) = xs.split_first() else {
        return f64::NAN;
    };
    let alpha = 2.0 / (span as f64 + 1.0);
    let old_wt_factor = 1.0 - alpha;
    let new_wt = 1.0;
    let mut weighted = first;
    let mut old_wt = 1.0;
    for &cur in rest {
        old_wt *= old_wt_factor;
        if weighted.is_nan() {
            weighted = cur;
            old_wt = 1.0;
        } else if !cur.is_nan() {
            if weighted != cur {
                weighted = (old_wt * weighted + new_wt * cur) / (old_wt + new_wt);
            }
            old_wt += new_wt;
        }
    }
    weighted
}

/// WMA_20: Σ j·x_{n−20+j} / 210 (the newest value weighs the most); NaN with fewer than 20.
pub fn wma20_last(xs: &[f64]) -> f64 {
    match last_window(xs, 20) {
        Some(win) => {
            win.iter()
                .enumerate()
                .map(|(i, x)| (i + 1) as f64 * x)
                .sum::<f64>()
                / 210.0
        }
        None => f64::NAN,
    }
}

/// Median; for an even count, the mean of the two middle values. NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len();
    if m % 2 == 1 {
        v[m / 2]
    } else {
        (v[m / 2 - 1] + v[m / 2]) / 2.0
    }
}

/// Sample Pearson correlation, dropping pairs where either value is undefined (numpy's
/// `corrcoef` on the remaining pairs, clipped to [−1, 1]). NaN with fewer than two pairs or a
/// zero variance.
pub fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (*x, *y))
        .collect();
    if pairs.len() < 2 {
        return f64::NAN;
    }
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let r = sxy / (sxx * syy).sqrt();
    if r.is_finite() {
        r.clamp(-1.0, 1.0)
    } else {
        f64::NAN
    }
}

/// Rolling Pearson over the last `w` rows, with pandas' `rolling(w).corr` formula
/// ((mean(xy) − mean(x)·mean(y))·m/(m−1) / √(var x · var y)). NaN until `w` rows exist.
pub fn rolling_pearson_last(xs: &[f64], ys: &[f64], w: usize) -> f64 {
    let (Some(x), Some(y)) = (last_window(xs, w), last_window(ys, w)) else {
        return f64::NAN;
    };
    if w < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let xy: Vec<f64> = x.iter().zip(y).map(|(a, b)| a * b).collect();
    let m = w as f64;
    let numerator = (mean(&xy) - mean(x) * mean(y)) * (m / (m - 1.0));
    let r = numerator / (sample_var(x) * sample_var(y)).sqrt();
    if r.is_finite() { r } else { f64::NAN }
}

/// Lag-1 autocorrelation: Pearson(x_{1..n−1}, x_{0..n−2}).
pub fn autocorr_lag1(xs: &[f64]) -> f64 {
    if xs.len() < 3 {
        return f64::NAN;
    }
    pearson(&xs[1..], &xs[..xs.len() - 1])
}

/// numpy's `histogram(xs, bins)`: equal-width bins over [min, max] (or [x−0.5, x+0.5] when all
/// values are equal), the last bin including max, with numpy's edge corrections.
pub fn histogram(xs: &[f64], bins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    let finite: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() || bins == 0 {
        return counts;
    }
    let mut lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    // np.linspace(lo, hi, bins + 1): i·step + lo, the last edge exactly hi.
    let step = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
    edges[bins] = hi;
    let denom = hi - lo;
    for x in finite {
        let f = ((x - lo) / denom) * bins as f64;
        let mut i = (f as usize).min(bins);
        if i == bins {
            i -= 1;
        }
        if x < edges[i] && i > 0 {
            i -= 1;
        }
        if x >= edges[i + 1] && i != bins - 1 {
            i += 1;
        }
        counts[i] += 1;
    }
    counts
}

/// Shannon entropy (nats) of a histogram: p = counts / n, empty bins dropped.
pub fn entropy(counts: &[u64], n: usize) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            p * p.ln()
        })
        .sum::<f64>()
}

/// |DFT(x)_k|² for k = 0 … m−1 (a plain DFT over a twiddle table; the angle of (k·t mod n)
/// is exact in its index, so long series stay accurate).
pub fn dft_power(xs: &[f64], m: usize) -> Vec<f64> {
    let n = xs.len();
    let tau = std::f64::consts::TAU;
    let table: Vec<(f64, f64)> = (0..n)
        .map(|j| {
            let angle = tau * j as f64 / n as f64;
            (angle.cos(), angle.sin())
        })
        .collect();
    (0..m.min(n))
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            let mut j = 0usize;
            for x in xs {
                let (c, s) = table[j];
                re += x * c;
                im -= x * s;
                j += k;
                if j >= n {
                    j -= n;
                }
            }
            re * re + im * im
        })
        .collect()
}

/// The dominant cycle: trunc(1/f_{k*}) where k* is the first bin with the largest power among
/// bins 1 … ⌊n/2⌋ − 1 and f_k = k × (1/n) (numpy's `fftfreq`). `None` when n < 4.
pub fn dominant_cycle(xs: &[f64]) -> Option<i64> {
    let n = xs.len();
    let half = n / 2;
    if half < 2 || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let power = dft_power(xs, half);
    let mut best = 1;
    for k in 2..half {
        if power[k] > power[best] {
            best = k;
        }
    }
    let val = 1.0 / n as f64;
    let f = best as f64 * val;
    let cycle = (1.0 / f).trunc();
    cycle.is_finite().then_some(cycle as i64)
}

/// numpy `correlate(a, v, "same")` for equal lengths: the lag k ∈ [−⌊n/2⌋, n−1−⌊n/2⌋] of the
/// first maximum of c_k = Σ_i a_{i+k}·v_i. `None` when empty or any value is not finite.
pub fn cross_correlation_lag(a: &[f64], v: &[f64]) -> Option<i64> {
    let n = a.len();
    if n == 0 || v.len() != n || a.iter().chain(v).any(|x| !x.is_finite()) {
        return None;
    }
    let half = (n / 2) as i64;
    let mut best: Option<(i64, f64)> = None;
    for k in -half..(n as i64 - half) {
        let mut c = 0.0;
        for (i, vi) in v.iter().enumerate() {
            let j = i as i64 + k;
            if j >= 0 && (j as usize) < n {
                c += a[j as usize] * vi;
            }
        }
        if best.is_none_or(|(_, b)| c > b) {
            best = Some((k, c));
        }
    }
    best.map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn sample_std_divides_by_m_minus_one() {
        assert!(close(
            sample_std(&[1.0, 2.0, 3.0, 4.0]),
            (5.0f64 / 3.0).sqrt()
        ));
        assert!(sample_std(&[1.0]).is_nan());
    }

    #[test]
    fn rolling_windows_are_undefined_until_full_and_around_undefined_values() {
        let r = rolling(&[f64::NAN, 1.0, 2.0, 3.0], 2, mean);
        assert!(r[0].is_nan() && r[1].is_nan());
        assert_eq!((r[2], r[3]), (1.5, 2.5));
        assert!(sma_last(&[1.0, 2.0], 3).is_nan());
    }

    #[test]
    fn adjusted_ewma_matches_the_weighted_sum() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0];
        let a = 2.0 / (3.0 + 1.0);
        let (mut num, mut den) = (0.0, 0.0);
        for (j, x) in xs.iter().rev().enumerate() {
            let w = (1.0f64 - a).powi(j as i32);
            num += w * x;
            den += w;
        }
        assert!(close(ewma_adjusted_last(&xs, 3), num / den));
    }

    #[test]
    fn wma_weighs_the_newest_value_most() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        // Σ j² / 210 for j = 1..20 = 2870 / 210.
        assert!(close(wma20_last(&xs), 2870.0 / 210.0));
    }

    #[test]
    fn median_of_even_count_is_mean_of_middle_values() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn pearson_drops_undefined_pairs_and_is_nan_for_zero_variance() {
        assert!(close(
            pearson(&[1.0, 2.0, f64::NAN, 3.0], &[2.0, 4.0, 1.0, 6.0]),
            1.0
        ));
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
    }

    #[test]
    fn rolling_pearson_uses_the_last_window() {
        let x = [9.0, 1.0, 2.0, 3.0];
        let y = [0.0, 2.0, 4.0, 7.0];
        assert!(close(
            rolling_pearson_last(&x, &y, 3),
            pearson(&x[1..], &y[1..])
        ));
        assert!(rolling_pearson_last(&x, &y, 5).is_nan());
    }

    #[test]
    fn histogram_includes_max_in_last_bin_and_centres_a_constant_series() {
        let c = histogram(&[0.0, 1.0, 2.0, 3.0, 4.0], 4);
        assert_eq!(c, vec![1, 1, 1, 2]);
        let c = histogram(&[7.0; 3], 50);
        assert_eq!(c[25], 3);
        assert_eq!(entropy(&c, 3), 0.0);
    }

    #[test]
    fn entropy_of_uniform_histogram_is_ln_of_bins() {
        assert!(close(entropy(&[1, 1, 1, 1], 4), 4f64.ln()));
    }

    #[test]
    fn dominant_cycle_finds_a_pure_sine_period() {
        let xs: Vec<f64> = (0..240)
            .map(|t| (std::f64::consts::TAU * t as f64 / 24.0).sin())
            .collect();
        assert_eq!(dominant_cycle(&xs), Some(24));
        assert_eq!(dominant_cycle(&[1.0, 2.0, 3.0]), None);
    }

    #[test]
    fn cross_correlation_lag_is_zero_for_identical_and_signed_for_shifted_series() {
        let a = [0.0, 1.0, 0.0, 0.0, 0.0];
        assert_eq!(cross_correlation_lag(&a, &a), Some(0));
        // a leads v by one: c_k peaks where a_{i+k} aligns with v_i, k = −1.
        let v = [0.0, 0.0, 1.0, 0.0, 0.0];
        assert_eq!(cross_correlation_lag(&a, &v), Some(-1));
        // All zero: the first k (−⌊n/2⌋) wins.
        assert_eq!(cross_correlation_lag(&[0.0; 5], &[0.0; 5]), Some(-2));
    }
}
