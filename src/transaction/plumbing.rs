//! The plumbing the four machines share, written once: firing due timers, the earliest
//! deadline, draining the output queues, and a transport failure. Each machine brings its own
//! `timers`, `transmits` and `events` fields and its `on_timer`, `terminate` and
//! `is_terminated`; this macro gives it the driver-facing methods (the loop in the module
//! documentation) as inherent methods, so callers need no trait in scope.

macro_rules! machine_plumbing {
    ($machine:ident) => {
        impl $machine {
            /// The transport failed to carry one of this transaction's messages: the
            /// transaction terminates and the TU learns of it once.
            pub fn on_transport_error(&mut self) {
                if self.is_terminated() {
                    return;
                }
                self.terminate();
                self.events.push(Event::TransportError);
            }

            /// Fires every timer due at `now`.
            pub fn handle_timeout(&mut self, now: Instant) {
                let mut fired = 0;
                while let Some(timer) = self.timers.pop_due(now, &mut fired) {
                    self.on_timer(now, timer);
                }
            }

            #[doc = concat!("The earliest armed timer: call [`", stringify!($machine), "::handle_timeout`] then.")]
            pub fn poll_timeout(&self) -> Option<Instant> {
                self.timers.earliest()
            }

            /// The next message to send on the transaction's transport.
            pub fn poll_transmit(&mut self) -> Option<Bytes> {
                self.transmits.pop()
            }

            /// The next event for the TU.
            pub fn poll_event(&mut self) -> Option<Event> {
                self.events.pop()
            }
        }
    };
}

pub(super) use machine_plumbing;
