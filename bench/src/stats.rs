//! Small statistics over measured samples: percentiles (nearest rank) and
//! medians, and the unit conversions the table uses.

use std::time::Duration;

/// The `p`-th percentile (0..=100) of `sorted` by the nearest-rank method:
/// the smallest value with at least `p`% of the samples at or below it.
/// `None` for no samples. `sorted` must be in ascending order.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of `values` (the lower middle one for an even count), after
/// sorting them; `None` when there are none.
pub fn median<T: Copy + PartialOrd>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if sorted.is_empty() {
        None
    } else {
        Some(sorted[(sorted.len() - 1) / 2])
    }
}

/// Milliseconds, as a float.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Bytes in MB (10^6), as a float: the unit of the table.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile(&[7u32], 99.0), Some(7));
        assert_eq!(percentile(&[1u32, 2, 3, 1000], 99.0), Some(1000));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn medians_sort_first() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2));
        assert_eq!(median::<u8>(&[]), None);
    }

    #[test]
    fn units() {
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
        assert_eq!(mb(5_200_000), 5.2);
    }
}
