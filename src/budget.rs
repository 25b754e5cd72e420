//! The copy path's memory budget (`COPY_MEMORY_MIB`): every part buffer and small-file
//! buffer of every copy in the container draws its bytes from one budget, so memory stays
//! bounded whatever the mix of files. Small images then all go at once; large files share
//! what is left, two part buffers each at most (one filling, one uploading).
//!
//! A reservation is released when it is dropped. Nothing here waits while holding a
//! reservation it cannot give back: a copy that holds one buffer and wants a second only
//! *tries* ([`CopyBudget::try_reserve`]); if the budget is spent it waits for its own upload
//! to finish instead, which frees a buffer. So copies can never wait on each other in a
//! circle.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget granularity: 1 KiB.
const UNIT: usize = 1024;

/// Bytes of copy buffers that may exist at once, shared by every clone.
#[derive(Debug, Clone)]
pub struct CopyBudget {
    units: Arc<Semaphore>,
    total_units: u32,
}

/// Bytes drawn from a [`CopyBudget`]; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
    budget: CopyBudget,
}

impl Reservation {
    /// The bytes reserved.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The budget the bytes were drawn from (where further buffers come from).
    pub fn budget(&self) -> &CopyBudget {
        &self.budget
    }
}

impl CopyBudget {
    /// A budget of `bytes` (rounded up to whole KiB).
    pub fn new(bytes: usize) -> CopyBudget {
        let total_units = bytes
            .div_ceil(UNIT)
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
            as u32;
        CopyBudget {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> usize {
        self.total_units as usize * UNIT
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.units.available_permits() * UNIT
    }

    fn units_for(&self, bytes: usize) -> u32 {
        // A buffer larger than the whole budget takes the whole budget (config checks keep
        // PART_SIZE_MIB within COPY_MEMORY_MIB; this only guards against waiting forever).
        (bytes.div_ceil(UNIT).max(1) as u32).min(self.total_units)
    }

    /// Waits until `bytes` are free, then reserves them. Call it only while holding no
    /// other reservation of this budget.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let permit = self
            .units
            .clone()
            .acquire_many_owned(self.units_for(bytes))
            .await
            .ok();
        Reservation {
            _permit: permit,
            bytes,
            budget: self.clone(),
        }
    }

    /// Reserves `bytes` if they are free now.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let permit = self
            .units
            .clone()
            .try_acquire_many_owned(self.units_for(bytes))
            .ok()?;
        Some(Reservation {
            _permit: Some(permit),
            bytes,
            budget: self.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_draw_from_one_budget_and_give_back_on_drop() {
        let budget = CopyBudget::new(10 * 1024);
        assert_eq!(budget.total(), 10 * 1024);
        let a = budget.reserve(6 * 1024).await;
        assert_eq!(a.bytes(), 6 * 1024);
        assert_eq!(budget.available(), 4 * 1024);
        assert!(budget.try_reserve(5 * 1024).is_none(), "over budget");
        let b = budget
            .clone()
            .try_reserve(4 * 1024)
            .expect("exactly what is left");
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 6 * 1024);
        // A waiter gets its bytes as soon as they are given back.
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(8 * 1024).await.bytes() })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        assert_eq!(waiter.await.unwrap(), 8 * 1024);
        // Partial KiB round up; more than the whole budget takes the whole budget.
        assert_eq!(budget.available(), 10 * 1024);
        let _c = budget.try_reserve(1).unwrap();
        assert_eq!(budget.available(), 9 * 1024);
        let d = budget.try_reserve(100 * 1024);
        assert!(
            d.is_none(),
            "1 KiB is taken: the capped 10 KiB does not fit"
        );
    }
}
