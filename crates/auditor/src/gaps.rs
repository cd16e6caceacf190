//! Grid-based gap detection (`docs/audit-rules.md`, Gaps): which epoch-aligned slots are due,
//! which row fills which slot, and how runs of missing slots become gaps. Streaming: slots are fed
//! in ascending order, so memory does not grow with the window.

use chrono::{DateTime, Utc};

/// The due slots of a window: grid points g with start ≤ g and g + I ≤ end − L.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// I, seconds.
    pub interval: i64,
    /// τ, seconds.
    pub tolerance: i64,
    /// The first due slot (epoch seconds).
    pub first_due: i64,
    /// The last due slot (epoch seconds); `< first_due` when nothing is due.
    pub last_due: i64,
}

impl Grid {
    /// The grid of a window `[start, end)` with allowed lag `max_lag` (all in seconds).
    pub fn new(start: i64, end: i64, interval: i64, tolerance: i64, max_lag: i64) -> Grid {
        let first_due = start.div_euclid(interval) * interval
            + if start.rem_euclid(interval) == 0 {
                0
            } else {
                interval
            };
        // Largest g on the grid with g + I ≤ end − L.
        let last_due = (end - max_lag - interval).div_euclid(interval) * interval;
        Grid {
            interval,
            tolerance,
            first_due,
            last_due,
        }
    }

    /// Number of due slots.
    pub fn due_slots(&self) -> i64 {
        if self.last_due < self.first_due {
            0
        } else {
            (self.last_due - self.first_due) / self.interval + 1
        }
    }

    /// The slot a row opening at `open` (epoch seconds) fills: the nearest grid point, if
    /// within τ.
    pub fn slot_of(&self, open: i64) -> Option<i64> {
        let below = open.div_euclid(self.interval) * self.interval;
        let nearest = if open - below <= self.interval / 2 {
            below
        } else {
            below + self.interval
        };
        ((open - nearest).abs() <= self.tolerance).then_some(nearest)
    }
}

/// A run of missing due slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First missing slot (epoch seconds).
    pub start: i64,
    /// Last missing slot + I (exclusive).
    pub end: i64,
}

/// Walks the due slots in order, counting filled ones and collecting runs of missing ones.
#[derive(Debug, Clone)]
pub struct GapTracker {
    grid: Grid,
    /// The next due slot not yet accounted for.
    cursor: i64,
    filled: i64,
    runs: Vec<Run>,
}

impl GapTracker {
    /// A tracker for `grid`.
    pub fn new(grid: Grid) -> GapTracker {
        GapTracker {
            grid,
            cursor: grid.first_due,
            filled: 0,
            runs: Vec::new(),
        }
    }

    /// Records that `slot` is filled. Slots must arrive in ascending order; a slot at or
    /// behind the cursor (a duplicate) changes nothing, and slots outside the due range are
    /// ignored.
    pub fn fill(&mut self, slot: i64) {
        if slot < self.cursor || slot > self.grid.last_due {
            return;
        }
        if slot > self.cursor {
            self.runs.push(Run {
                start: self.cursor,
                end: slot,
            });
        }
        self.filled += 1;
        self.cursor = slot + self.grid.interval;
    }

    /// Closes the trailing run; returns (filled slots, runs of missing slots).
    pub fn finish(mut self) -> (i64, Vec<Run>) {
        if self.cursor <= self.grid.last_due {
            self.runs.push(Run {
                start: self.cursor,
                end: self.grid.last_due + self.grid.interval,
            });
        }
        (self.filled, self.runs)
    }
}

/// Applies the leading-run rule to `runs`: if the first due slot is missing and a row
/// exists before the window (its slot `prev_slot`), the gap starts at `prev_slot + I` so that
/// its start is stable across cycles; with no earlier row the series starts inside the window
/// and the leading run is not a gap.
pub fn leading_rule(grid: &Grid, mut runs: Vec<Run>, prev_slot: Option<i64>) -> Vec<Run> {
    if let Some(first) = runs.first_mut()
        && first.start == grid.first_due
    {
        match prev_slot {
            Some(p) if p + grid.interval < first.start => first.start = p + grid.interval,
            Some(_) => {}
            None => {
                runs.remove(0);
            }
        }
    }
    runs
}

/// Epoch seconds as an instant.
pub fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    #[test]
    fn due_slots_stop_at_end_minus_lag() {
        // The gap-in-the-middle example: window 00:30 → 00:30 next day, L = 2 h: due 01:00 … 21:00.
        let start = 1_800;
        let g = Grid::new(start, start + 86_400, H, 60, 7_200);
        assert_eq!((g.first_due, g.last_due, g.due_slots()), (H, 21 * H, 21));
        let g0 = Grid::new(start, start + 86_400, H, 60, 0);
        assert_eq!(g0.due_slots(), 23);
    }

    #[test]
    fn a_window_shorter_than_the_lag_has_no_due_slots() {
        let g = Grid::new(0, 86_400, 86_400, 60, 172_800);
        assert_eq!(g.due_slots(), 0);
    }

    #[test]
    fn rows_within_tolerance_fill_the_nearest_slot() {
        let g = Grid::new(0, 10 * H, H, 60, 0);
        assert_eq!(g.slot_of(H + 30), Some(H));
        assert_eq!(g.slot_of(H - 60), Some(H));
        assert_eq!(g.slot_of(H + 61), None);
    }

    #[test]
    fn missing_slots_become_maximal_runs() {
        let g = Grid::new(0, 10 * H, H, 60, 0); // due 0..=9h
        let mut t = GapTracker::new(g);
        for s in [0, 1, 4, 4, 5, 7] {
            t.fill(s * H);
        }
        let (filled, runs) = t.finish();
        assert_eq!(filled, 5);
        assert_eq!(
            runs,
            [
                Run {
                    start: 2 * H,
                    end: 4 * H
                },
                Run {
                    start: 6 * H,
                    end: 7 * H
                },
                Run {
                    start: 8 * H,
                    end: 10 * H
                },
            ]
        );
    }

    #[test]
    fn leading_run_extends_back_to_the_previous_row_or_is_dropped() {
        let g = Grid::new(0, 10 * H, H, 60, 0);
        let runs = vec![Run {
            start: 0,
            end: 3 * H,
        }];
        assert_eq!(
            leading_rule(&g, runs.clone(), Some(-5 * H)),
            [Run {
                start: -4 * H,
                end: 3 * H
            }]
        );
        assert_eq!(leading_rule(&g, runs, None), []);
    }
}
