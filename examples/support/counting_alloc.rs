//! The `callgate` binary's allocator (mimalloc), wrapped to count heap
//! allocations, for the in-process CPU examples. Each example installs it
//! with `#[global_allocator] static GLOBAL: Counting = Counting;` and reads
//! [`allocations`] around the code it measures.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

/// Heap allocations (and reallocations) made so far by the whole process.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Allocations and reallocations so far (one relaxed load).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// mimalloc, counting every allocation and reallocation.
pub struct Counting;

// SAFETY: every call is passed on unchanged to mimalloc's GlobalAlloc.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}
