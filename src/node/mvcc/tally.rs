//! A checksum of everything the store's sled tree holds, written with it: how many (key, value)
//! pairs there are and the wrapping sum of one 64-bit hash per pair. Every batch the store writes
//! carries the tally its changes lead to, so the two reach the disk together or not at all.
//!
//! Why: sled promises that a batch is recovered whole or not at all, and in order. After one of its
//! writes failed (a full disk), sled 0.34 can come back with a later batch's bookkeeping (the
//! applied raft index) but without records of earlier ones: the raft log is then replayed from past
//! them and acknowledged writes are gone without a word. Opening reads every pair anyway; counting
//! them again there turns that, and any other pair lost, added or changed behind the store's back,
//! into a refusal that names the store, instead of a member serving a history with holes.
//!
//! A leaf: hashing and the tally's bytes, no store.

/// The count and hash sum of a tree's pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub pairs: u64,
    pub sum: u64,
}

/// The tally's encoded length: pairs then sum, big-endian.
const LEN: usize = 16;

impl Tally {
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.pairs = self.pairs.wrapping_add(1);
        self.sum = self.sum.wrapping_add(pair_hash(key, value));
    }

    pub fn remove(&mut self, key: &[u8], value: &[u8]) {
        self.pairs = self.pairs.wrapping_sub(1);
        self.sum = self.sum.wrapping_sub(pair_hash(key, value));
    }

    /// Adds the pairs `other` counts (two tallies of disjoint sets make the tally of both).
    pub fn merge(&mut self, other: &Tally) {
        self.pairs = self.pairs.wrapping_add(other.pairs);
        self.sum = self.sum.wrapping_add(other.sum);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(&self.pairs.to_be_bytes());
        out.extend_from_slice(&self.sum.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Tally> {
        if bytes.len() != LEN {
            return None;
        }
        let pairs = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let sum = u64::from_be_bytes(bytes[8..].try_into().ok()?);
        Some(Tally { pairs, sum })
    }
}

/// Two CRC-32s over the pair, in two orders (key's length, key, value; then value, key), as the high
/// and low halves. Not a defence against anyone choosing the data: a check that what was written is
/// what is read.
fn pair_hash(key: &[u8], value: &[u8]) -> u64 {
    let len = (key.len() as u32).to_be_bytes();
    let mut first = crc32fast::Hasher::new();
    first.update(&len);
    first.update(key);
    first.update(value);
    let mut second = crc32fast::Hasher::new();
    second.update(value);
    second.update(key);
    second.update(&len);
    (u64::from(first.finalize()) << 32) | u64::from(second.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_what_is_there_whatever_the_order_and_sees_a_pair_lost_or_changed() {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            (0..100u32).map(|i| (format!("k{i}").into_bytes(), vec![i as u8; i as usize])).collect();
        let mut forward = Tally::default();
        pairs.iter().for_each(|(k, v)| forward.add(k, v));
        let mut backward = Tally::default();
        pairs.iter().rev().for_each(|(k, v)| backward.add(k, v));
        assert_eq!(forward, backward);
        assert_eq!(forward.pairs, 100);

        let mut lost = forward;
        lost.remove(&pairs[42].0, &pairs[42].1);
        assert_ne!(lost, forward);
        assert_eq!(lost.pairs, 99);
        // One pair swapped for another: the count agrees, the sum does not.
        let mut changed = lost;
        changed.add(&pairs[42].0, b"another value");
        assert_eq!(changed.pairs, forward.pairs);
        assert_ne!(changed.sum, forward.sum);
        // A key's bytes moved into its value is another pair.
        let mut moved = Tally::default();
        moved.add(b"ab", b"c");
        let mut other = Tally::default();
        other.add(b"a", b"bc");
        assert_ne!(moved, other);

        assert_eq!(Tally::decode(&forward.encode()), Some(forward));
        assert_eq!(Tally::decode(&[0; 15]), None);
        // Removing what was added leaves nothing.
        let mut gone = forward;
        pairs.iter().for_each(|(k, v)| gone.remove(k, v));
        assert_eq!(gone, Tally::default());
    }
}
