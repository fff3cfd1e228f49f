//! A heap for `alloc` (Box, Vec, String, format!): the simplest allocator there is.
//!
//! A bump allocator hands out memory from a fixed 64 KiB array by moving a pointer forward and
//! never reuses anything: `dealloc` does nothing. Enough for a kernel that runs for a second.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

const HEAP_SIZE: usize = 64 * 1024;

struct BumpAllocator {
    memory: UnsafeCell<[u8; HEAP_SIZE]>,
    next: UnsafeCell<usize>, // offset of the first free byte
}

// SAFETY: one CPU and no preemption (interrupts stay off): nobody can interrupt an allocation.
unsafe impl Sync for BumpAllocator {}

unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the Sync impl; only this function touches `next`.
        unsafe {
            let base = self.memory.get() as usize;
            let start = (base + *self.next.get()).next_multiple_of(layout.align());
            let end = start + layout.size();
            if end > base + HEAP_SIZE {
                return ptr::null_mut(); // out of memory: alloc turns this into a panic
            }
            *self.next.get() = end - base;
            start as *mut u8
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static HEAP: BumpAllocator = BumpAllocator {
    memory: UnsafeCell::new([0; HEAP_SIZE]),
    next: UnsafeCell::new(0),
};
