//! The global allocator of both binaries (`bootstrap` and the CLI): mimalloc. musl's own
//! allocator made the static builds 1.4x slower warm and 1.5x slower to load the model than
//! glibc builds of the same code; mimalloc is as fast on both.
//!
//! Each binary declares it (`#[global_allocator] static ALLOCATOR: Allocator = Allocator;`)
//! and calls [`configure`] first thing in `main`.

pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v3 `include/mimalloc.h`; the -sys
/// crate names the options around it but not this one).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed is given back to the system at once rather than after mimalloc's default
/// 10 ms delay: under concurrent large requests (`serve`, the load test) the delay let freed
/// pages pile up, and the peak RSS rose from 248 to 297-317 MiB. Memory is what Lambda bills.
pub fn configure() {
    // SAFETY: sets one of mimalloc's documented options to a documented value (0: purge at
    // once); the option is read whenever memory is purged, so setting it at any time is fine.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}
