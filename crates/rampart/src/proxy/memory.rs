//! Handing freed heap memory back to the operating system. glibc keeps what is freed in the
//! middle of its heaps resident, so a burst (large values, thousands of clients) would keep
//! rampart at its peak for good. Once a second each worker asks the allocator how much it holds
//! free (`mallinfo2`); when that grew by [`TRIM_STEP`] since the last trim, or by a quarter of
//! it and stopped growing (a smaller burst is over, such as thousands of sessions parked over a
//! few sweeps), or a large buffer was let go since the last look, `malloc_trim` gives the free
//! pages back, and a free of a large
//! chunk makes glibc shrink the top of the worker's own heap, which `malloc_trim` leaves alone
//! ([`configure`] fixes the threshold above which it does). Nothing here runs per request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The size of a free that makes glibc trim the top of a thread's heap (at least 64 KiB, its
/// `FASTBIN_CONSOLIDATION_THRESHOLD`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TOP_POKE: usize = 128 << 10;
/// Allocations from this size up get a mapping of their own, unmapped when freed: glibc's
/// dynamic threshold goes up to this as large buffers come and go, and fixing the trim
/// threshold would otherwise bring it back down to 128 KiB (a mapping per large buffer).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory at the top of a heap beyond this is returned as soon as it is freed. glibc's
/// dynamic threshold follows the mmap threshold up to 64 MiB: a whole heap of a thread's arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 8 << 20;

/// How much more free heap than just after the last trim calls for another.
const TRIM_STEP: usize = 4 << 20;

/// The free heap just after the last trim, lowered whenever the heap reuses part of it (those
/// pages are resident again). Shared by the workers, as the allocator's figures are the process's.
static FREE_AFTER_TRIM: AtomicUsize = AtomicUsize::new(0);
/// A large buffer was let go since the last look: a burst shorter than the period between
/// looks may have filled free pages and freed them again, leaving the free heap where it was.
static LARGE_RELEASED: AtomicBool = AtomicBool::new(false);
/// The free heap at the last look, to tell a burst still freeing from one that is over.
static FREE_AT_LAST_LOOK: AtomicUsize = AtomicUsize::new(0);

/// Sets the allocator's thresholds; called once, before the workers start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn configure() {
    // SAFETY: mallopt only sets the allocator's tuning parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Other allocators have their own tuning.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure() {}

/// Notes that a large buffer was let go.
pub fn large_buffer_released() {
    LARGE_RELEASED.store(true, Ordering::Relaxed);
}

/// Gives the free heap back to the operating system when a burst freed memory since the last
/// trim. Called once a second by each worker.
pub fn give_back_after_bursts() {
    let Some(free) = free_heap() else {
        return;
    };
    let after_trim = FREE_AFTER_TRIM.load(Ordering::Relaxed);
    let last_look = FREE_AT_LAST_LOOK.swap(free, Ordering::Relaxed);
    let burst_over = free > after_trim.saturating_add(TRIM_STEP / 4) && free <= last_look;
    if LARGE_RELEASED.swap(false, Ordering::Relaxed)
        || free > after_trim.saturating_add(TRIM_STEP)
        || burst_over
    {
        trim();
        FREE_AFTER_TRIM.store(free_heap().unwrap_or(free), Ordering::Relaxed);
    } else if free < after_trim {
        FREE_AFTER_TRIM.store(free, Ordering::Relaxed);
    }
}

/// The bytes the allocator holds free in its heaps.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_heap() -> Option<usize> {
    // SAFETY: mallinfo2 only reads the allocator's own statistics.
    Some(unsafe { libc::mallinfo2() }.fordblks)
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn free_heap() -> Option<usize> {
    None
}

/// Returns the free pages of every heap, then shrinks the top of the calling thread's heap:
/// `malloc_trim` leaves that top alone, and may even grow it as it merges free chunks, while
/// freeing a chunk of [`TOP_POKE`] bytes or more makes glibc trim it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists; the poke is a
    // plain allocation, never read or written, freed at once.
    unsafe {
        libc::malloc_trim(0);
        libc::free(std::hint::black_box(libc::malloc(TOP_POKE)));
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
