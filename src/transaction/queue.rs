//! A tiny fixed-capacity FIFO for a machine's pending outputs (transmissions, events).
//!
//! The driver drains outputs after every input, so a handful of slots is plenty and nothing is
//! allocated per call. If a driver does not drain, the queue stays bounded: see `push`.

/// Ring buffer of at most `N` items.
#[derive(Clone, Debug)]
pub(crate) struct Queue<T, const N: usize> {
    items: [Option<T>; N],
    /// Slot of the oldest item.
    head: usize,
    len: usize,
}

impl<T, const N: usize> Default for Queue<T, N> {
    fn default() -> Self {
        Self {
            items: [const { None }; N],
            head: 0,
            len: 0,
        }
    }
}

impl<T, const N: usize> Queue<T, N> {
    /// Appends `item`; when full, the oldest item is dropped to make room, because the newest
    /// output (a new response, the ACK) is the one the peer has not seen yet.
    pub(crate) fn push(&mut self, item: T) {
        if self.len == N {
            let _ = self.pop();
        }
        let Some(slot) = (self.head + self.len)
            .checked_rem(N)
            .and_then(|i| self.items.get_mut(i))
        else {
            return;
        };
        *slot = Some(item);
        self.len += 1;
    }

    /// Appends `item` only if there is room: for retransmissions, which are redundant with
    /// whatever is already queued.
    pub(crate) fn push_if_room(&mut self, item: T) {
        if self.len < N {
            self.push(item);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let item = self.items.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1).checked_rem(N).unwrap_or(0);
        self.len -= 1;
        item
    }
}

#[cfg(test)]
mod tests {
    use super::Queue;

    #[test]
    fn fifo_order_and_wraparound() {
        let mut q: Queue<u8, 2> = Queue::default();
        q.push(1);
        q.push(2);
        assert_eq!(q.pop(), Some(1));
        q.push(3);
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn full_queue_drops_oldest_on_push_and_newest_on_push_if_room() {
        let mut q: Queue<u8, 2> = Queue::default();
        q.push(1);
        q.push(2);
        q.push_if_room(9);
        q.push(3);
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), None);
    }
}
