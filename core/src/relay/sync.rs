//! The relay's synchronization primitives, in one place so loom can replace them.
//!
//! Normal builds use `parking_lot` and `std`. Under `--cfg telemetron_loom` (see
//! `make test-loom`) the atomics, locks, condition variable, `Arc` and the spin hint are
//! loom's, so the models in `core/tests/relay_loom.rs` explore the interleavings of the
//! shipping relay code, not of a copy.
//!
//! ## Time under loom
//! Loom has no clock. Under `telemetron_loom`, [`now`] returns one fixed instant, so a
//! deadline in the future never passes: a timed condvar wait is a plain wait and a bounded
//! spin ([`crate::relay::spin_until`]) spins until its condition holds. A lost wake-up then
//! shows as a thread blocked or spinning forever, which loom reports, where the real
//! bounded waits would only have cost time.
//!
//! The tokio `Notify` that wakes async receivers is not replaced: the models drive the
//! blocking receives.

#[cfg(not(telemetron_loom))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex, RwLock};
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

    /// The current time.
    pub(crate) fn now() -> std::time::Instant {
        std::time::Instant::now()
    }
}

#[cfg(telemetron_loom)]
mod imp {
    //! Loom's primitives behind the `parking_lot` API the relay uses.

    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    pub(crate) use loom::hint::spin_loop;
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

    /// The one instant of a loom model (see the module docs).
    pub(crate) fn now() -> Instant {
        static FROZEN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *FROZEN.get_or_init(Instant::now)
    }

    /// `parking_lot::Mutex` over loom's mutex.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// Its guard; the inner guard is only ever absent inside [`Condvar::wait_until`].
    #[derive(Debug)]
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().expect("a relay lock holder panicked")))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present outside a wait")
        }
    }

    /// `parking_lot::Condvar` over loom's condition variable.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Condvar {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        /// A plain wait: the deadline never comes in a model (see the module docs).
        pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, _deadline: Instant) {
            let inner = guard.0.take().expect("guard present before a wait");
            guard.0 = Some(self.0.wait(inner).expect("a relay lock holder panicked"));
        }
    }

    /// `parking_lot::RwLock` over loom's.
    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().expect("a relay lock holder panicked")
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().expect("a relay lock holder panicked")
        }
    }
}

pub(crate) use imp::*;

/// A deliberate protocol break, so the loom models can show that they catch one. Only
/// `--cfg telemetron_loom` builds can select one (through `relay::loom_model`); in other
/// builds every check of a fault is a constant `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// The shipping protocol.
    #[default]
    None,
    /// A push wakes the receiver (checks `waiting`) *before* queuing the frame.
    WakeBeforePush,
    /// A spinning receive reads `events` *after* looking at the queue.
    ReadEventsLate,
}
