//! glibc's allocator, told to give memory back to the system.
//!
//! By default glibc raises its mmap threshold each time a large block is
//! freed, so after one bundle diff or best-level recompression every later
//! large buffer lands in a heap arena, and freed arena memory is only
//! returned from each arena's top. Measured on this server: RSS stayed at
//! 76 MiB (134 MiB with `BEST_COMPRESSION`) after two fixture publishes,
//! against 32 MiB idle. A fixed threshold keeps large buffers in their own
//! mappings, which `free` unmaps at once, and a periodic `malloc_trim`
//! hands back the free pages left inside the arenas.
//!
//! This is the one module allowed `unsafe`: two FFI calls into glibc with
//! no caller-side invariants. Other targets get no-ops.

use std::time::Duration;

/// Allocations from this size on get their own mapping (glibc's default
/// starting threshold, kept from moving).
const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// How often free memory inside the arenas is returned. A trim walks every
/// arena under its lock: with this server's small heap it takes well
/// under a millisecond, so a request waits at most that, rarely.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Fixes glibc's mmap threshold. Call once, early in `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallopt FFI; it has no caller-side invariants")]
pub fn keep_large_buffers_out_of_the_heap() {
    // SAFETY: mallopt only changes the allocator's tuning parameters, and
    // is safe to call at any time from any thread.
    let applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
    if applied == 0 {
        tracing::warn!("glibc refused the mmap threshold; freed memory may stay resident");
    }
}

/// Returns the free pages inside glibc's arenas to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "malloc_trim FFI; it has no caller-side invariants"
)]
pub fn return_free_memory() {
    // SAFETY: malloc_trim only releases memory the allocator holds free; it
    // takes the arenas' own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_buffers_out_of_the_heap() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn return_free_memory() {}

/// How long after start the first trim runs: once start-up's own garbage
/// (the route table built from the OpenAPI document, the first requests)
/// is freed.
const FIRST_TRIM_AFTER: Duration = Duration::from_secs(1);

/// Trims a second after start, then every [`TRIM_INTERVAL`], on a
/// blocking thread, until the process ends.
pub async fn return_free_memory_periodically() {
    let first = tokio::time::Instant::now() + FIRST_TRIM_AFTER;
    let mut every = tokio::time::interval_at(first, TRIM_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if tokio::task::spawn_blocking(return_free_memory)
            .await
            .is_err()
        {
            return;
        }
    }
}
