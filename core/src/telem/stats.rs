//! Statistics over bucketed counts, shared by the layers that estimate from histograms (the
//! OTLP receiver's exponential histograms, `observe`'s summaries).

/// The `q` quantile (0 to 1) of observations counted in `buckets`: `(upper bound,
/// observations at or below it)`, sorted by bound, cumulative; the lowest bucket starts at
/// `start`. The estimate interpolates linearly inside the bucket the rank falls in, as
/// Prometheus's `histogram_quantile` does, so it is exact to that bucket's width. In an
/// unbounded last bucket (`+Inf`) it is the highest finite bound: nothing better is known.
/// `None` without observations or buckets.
pub fn bucket_quantile(q: f64, start: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 || !q.is_finite() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let (mut lower, mut below) = (start, 0.0);
    for &(le, n) in buckets {
        // Cumulative counts read at slightly different moments can dip; never go back.
        let n = n.max(below);
        if n >= rank && n > 0.0 {
            if le.is_infinite() {
                return Some(lower);
            }
            if n == below {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / (n - below));
        }
        (lower, below) = (le, n);
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        // 100 observations: 50 at or below 1 ms, 40 more at or below 2 ms, 10 above 10 ms.
        let b = [(0.001, 50.0), (0.002, 90.0), (0.01, 90.0), (f64::INFINITY, 100.0)];
        assert_eq!(bucket_quantile(0.5, 0.0, &b), Some(0.001));
        let p75 = bucket_quantile(0.75, 0.0, &b).unwrap();
        assert!((p75 - 0.001625).abs() < 1e-12, "{p75}");
        // p99 is in +Inf: the highest finite bound is all that is known.
        assert_eq!(bucket_quantile(0.99, 0.0, &b), Some(0.01));
        assert_eq!(bucket_quantile(0.5, 0.0, &[(0.001, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(bucket_quantile(0.5, 0.0, &[]), None);
        // A first bucket starts at zero.
        assert_eq!(bucket_quantile(0.5, 0.0, &[(0.004, 10.0), (f64::INFINITY, 10.0)]), Some(0.002));
    }

    #[test]
    fn a_lowest_bucket_may_start_below_zero() {
        // 10 observations in [-4, -2), 10 in [-2, 0]: the median is -2.
        let b = [(-2.0, 10.0), (0.0, 20.0)];
        assert_eq!(bucket_quantile(0.5, -4.0, &b), Some(-2.0));
        assert_eq!(bucket_quantile(0.25, -4.0, &b), Some(-3.0));
        assert_eq!(bucket_quantile(1.0, -4.0, &b), Some(0.0));
    }
}
