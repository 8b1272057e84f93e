//! Request ids. Every request the console sends carries one, and its answer is taken only while
//! the state still waits for that id: an answer to a request the user has since moved away from is
//! stale and dropped. One allocator, owned by State, serves every feature, so no two requests in
//! flight share an id, whichever features sent them.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIds {
    last: u64,
}

impl RequestIds {
    /// A new id, never given before (ids start at 1; 0 is never one).
    pub fn next_id(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// The id the next call to `next_id` returns, without taking it.
    pub fn peek(&self) -> u64 {
        self.last + 1
    }

    /// The id given last (0 before the first).
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_new_each_time_and_never_zero() {
        let mut ids = RequestIds::default();
        assert_eq!((ids.last(), ids.peek()), (0, 1));
        let first = ids.next_id();
        let second = ids.next_id();
        assert_eq!((first, second, ids.last(), ids.peek()), (1, 2, 2, 3));
    }
}
