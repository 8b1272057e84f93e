//! A linearizability checker: Wing and Gong's search with Lowe's memoization, as porcupine runs it
//! (P-compositionality: the caller checks one key at a time).
//!
//! An operation whose outcome is unknown (it timed out, or the connection broke) returns at the
//! end of time: it may be linearized anywhere after its call, which at the end means it never took
//! effect. A model step may allow several next states (a compare-and-swap whose compared revision is
//! not known); each is tried.

use std::collections::HashSet;
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::splitmix;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash;
    type Op;
    fn init(&self) -> Self::State;
    /// The states `op` may leave behind when applied to `state`; empty if its recorded outcome is
    /// impossible there.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Vec<Self::State>;
}

/// One operation of the history: when it was called, when it returned (None: never, as far as
/// anyone knows), and what it did.
#[derive(Clone)]
pub struct Timed<O> {
    pub call: u64,
    pub ret: Option<u64>,
    pub op: O,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// The most operations the search could put in a valid order, for the report.
    Violation {
        longest: usize,
    },
    /// The search ran out of time.
    Unknown,
}

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    call: bool,
    /// For a call, the index of its return entry.
    partner: usize,
}

pub fn check<M: Model>(model: &M, ops: &[Timed<M::Op>], limit: Duration) -> Verdict {
    let n = ops.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Entries in time order; calls before returns at the same instant (the more permissive reading).
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        events.push((o.call, 0, i));
        events.push((o.ret.unwrap_or(u64::MAX), 1, i));
    }
    events.sort();
    // Slot 0 is the list head; entries live in 1..=2n.
    let mut entries = vec![Entry { op: usize::MAX, call: false, partner: 0 }; 2 * n + 1];
    let mut return_slot = vec![0usize; n];
    for (slot, &(_, kind, op)) in events.iter().enumerate() {
        entries[slot + 1] = Entry { op, call: kind == 0, partner: 0 };
        if kind == 1 {
            return_slot[op] = slot + 1;
        }
    }
    for e in entries.iter_mut().skip(1) {
        if e.call {
            e.partner = return_slot[e.op];
        }
    }
    let len = 2 * n + 1;
    let mut next: Vec<usize> = (1..=len).collect();
    next[len - 1] = usize::MAX;
    let mut prev: Vec<usize> = (0..len).map(|i| i.wrapping_sub(1)).collect();
    prev[0] = usize::MAX;

    // The set of linearized operations enters the cache as a Zobrist hash: the XOR of a random
    // 128-bit value per operation, updated in O(1) (a bitset per entry would make the cache
    // quadratic in the history's length). Two different sets collide with probability 2^-128.
    let zobrist: Vec<u128> = (0..n as u64)
        .map(|i| (u128::from(splitmix(2 * i + 1)) << 64) | u128::from(splitmix(2 * i + 2)))
        .collect();
    let mut linearized: u128 = 0;
    let mut cache: HashSet<(u128, M::State)> = HashSet::new();
    let mut state = model.init();
    // (call slot, state before, alternative taken)
    let mut stack: Vec<(usize, M::State, usize)> = Vec::new();
    let mut longest = 0usize;
    let mut entry = next[0];
    let mut alt_from = 0usize;
    let started = Instant::now();
    let mut steps: u64 = 0;

    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, slot: usize| {
        let (p, nx) = (prev[slot], next[slot]);
        next[p] = nx;
        if nx != usize::MAX {
            prev[nx] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, slot: usize| {
        let (p, nx) = (prev[slot], next[slot]);
        next[p] = slot;
        if nx != usize::MAX {
            prev[nx] = slot;
        }
    };

    while next[0] != usize::MAX {
        steps += 1;
        if steps.is_multiple_of(4096) && started.elapsed() > limit {
            return Verdict::Unknown;
        }
        if entry == usize::MAX {
            // Walked past the end without meeting a return: cannot happen (every call has one).
            return Verdict::Unknown;
        }
        let e = entries[entry];
        if e.call {
            let succs = model.step(&state, &ops[e.op].op);
            let mut taken = None;
            for (k, s) in succs.into_iter().enumerate().skip(alt_from) {
                if cache.insert((linearized ^ zobrist[e.op], s.clone())) {
                    taken = Some((k, s));
                    break;
                }
            }
            alt_from = 0;
            match taken {
                Some((k, s)) => {
                    stack.push((entry, std::mem::replace(&mut state, s), k));
                    linearized ^= zobrist[e.op];
                    unlink(&mut next, &mut prev, entry);
                    unlink(&mut next, &mut prev, e.partner);
                    longest = longest.max(stack.len());
                    entry = next[0];
                }
                None => entry = next[entry],
            }
        } else {
            // A return with its call not linearized: undo the last choice.
            let Some((slot, before, k)) = stack.pop() else {
                return Verdict::Violation { longest };
            };
            let op = entries[slot].op;
            linearized ^= zobrist[op];
            state = before;
            relink(&mut next, &mut prev, entries[slot].partner);
            relink(&mut next, &mut prev, slot);
            entry = slot;
            alt_from = k + 1;
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register holding a number, 0 at first.
    struct Register;
    #[derive(Debug)]
    enum RegOp {
        Write(u32),
        Read(u32),
        /// A write whose outcome is unknown, or a compare-and-set.
        Cas {
            from: u32,
            to: u32,
            ok: bool,
        },
    }
    impl Model for Register {
        type State = u32;
        type Op = RegOp;
        fn init(&self) -> u32 {
            0
        }
        fn step(&self, s: &u32, op: &RegOp) -> Vec<u32> {
            match *op {
                RegOp::Write(v) => vec![v],
                RegOp::Read(v) if v == *s => vec![*s],
                RegOp::Read(_) => vec![],
                RegOp::Cas { from, to, ok } => match (ok, from == *s) {
                    (true, true) => vec![to],
                    (false, false) => vec![*s],
                    _ => vec![],
                },
            }
        }
    }
    fn op(call: u64, ret: Option<u64>, op: RegOp) -> Timed<RegOp> {
        Timed { call, ret, op }
    }

    #[test]
    fn overlapping_operations_may_take_effect_in_either_order() {
        // A write overlapping two reads that see the old and then the new value.
        let h = vec![
            op(0, Some(10), RegOp::Write(1)),
            op(1, Some(2), RegOp::Read(0)),
            op(3, Some(4), RegOp::Read(1)),
        ];
        assert_eq!(check(&Register, &h, Duration::from_secs(5)), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_a_violation() {
        let h = vec![op(0, Some(1), RegOp::Write(1)), op(2, Some(3), RegOp::Read(0))];
        assert!(matches!(check(&Register, &h, Duration::from_secs(5)), Verdict::Violation { .. }));
        // Two reads that disagree about the order of two writes.
        let h = vec![
            op(0, Some(10), RegOp::Write(1)),
            op(0, Some(10), RegOp::Write(2)),
            op(11, Some(12), RegOp::Read(1)),
            op(13, Some(14), RegOp::Read(2)),
        ];
        assert!(matches!(check(&Register, &h, Duration::from_secs(5)), Verdict::Violation { .. }));
    }

    #[test]
    fn an_operation_with_an_unknown_outcome_may_or_may_not_have_happened() {
        // Seen by a later read: it happened.
        let h = vec![op(0, None, RegOp::Write(7)), op(5, Some(6), RegOp::Read(7))];
        assert_eq!(check(&Register, &h, Duration::from_secs(5)), Verdict::Linearizable);
        // Never seen: it did not (or not yet).
        let h = vec![op(0, None, RegOp::Write(7)), op(5, Some(6), RegOp::Read(0))];
        assert_eq!(check(&Register, &h, Duration::from_secs(5)), Verdict::Linearizable);
        // Seen and then unseen, with nothing else writing: a violation.
        let h = vec![
            op(0, None, RegOp::Write(7)),
            op(5, Some(6), RegOp::Read(7)),
            op(7, Some(8), RegOp::Read(0)),
        ];
        assert!(matches!(check(&Register, &h, Duration::from_secs(5)), Verdict::Violation { .. }));
    }

    #[test]
    fn backtracking_finds_the_one_order_that_works() {
        // Three concurrent CASes chain 0 -> 1 -> 2 -> 3 only in one order, and a read sees 3.
        let h = vec![
            op(0, Some(10), RegOp::Cas { from: 2, to: 3, ok: true }),
            op(0, Some(10), RegOp::Cas { from: 1, to: 2, ok: true }),
            op(0, Some(10), RegOp::Cas { from: 0, to: 1, ok: true }),
            op(0, Some(10), RegOp::Cas { from: 5, to: 6, ok: false }),
            op(11, Some(12), RegOp::Read(3)),
        ];
        assert_eq!(check(&Register, &h, Duration::from_secs(5)), Verdict::Linearizable);
        // The same with the read seeing 2: impossible, since all three CASes finished before it.
        let mut h = h;
        h[4] = op(11, Some(12), RegOp::Read(2));
        assert!(matches!(check(&Register, &h, Duration::from_secs(5)), Verdict::Violation { .. }));
    }

    #[test]
    fn a_long_history_with_unknown_writes_is_decided() {
        // 20 000 operations from 4 clients, one in flight each; every tenth write never returns.
        let mut h = Vec::new();
        let mut value = 0;
        for round in 0..5_000u64 {
            let t = round * 10;
            for c in 0..4u64 {
                if c == 0 {
                    value += 1;
                    let ret = if round % 10 == 0 { None } else { Some(t + 5) };
                    h.push(op(t + c, ret, RegOp::Write(value)));
                } else {
                    h.push(op(t + 6 + c, Some(t + 9), RegOp::Read(value)));
                }
            }
        }
        assert_eq!(check(&Register, &h, Duration::from_secs(60)), Verdict::Linearizable);
    }
}
