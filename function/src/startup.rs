//! What both binaries (`bootstrap` and the CLI) do first in `main`, before any thread exists:
//! the global allocator's settings and the error-backtrace default. Each binary declares the
//! allocator (`#[global_allocator] static ALLOCATOR: Allocator = Allocator;`) and calls
//! [`configure`] before it starts its async runtime.
//!
//! mimalloc, because musl's own allocator made the static builds 1.4x slower warm and 1.5x
//! slower to load the model than glibc builds of the same code; mimalloc is as fast on both.

pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v3 `include/mimalloc.h`; the -sys
/// crate names the options around it but not this one).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The purge delay while a model loads, in milliseconds: longer than any load, so that what
/// one stage frees (the decoded protobuf, the expanded weights before tract packs them) is
/// reused by the next instead of handed back and faulted in again.
const LOADING_PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// Runs `load` (a model load) with freed memory kept for reuse, then hands back at once what
/// it freed and returns to purging at once (see [`configure`]).
///
/// Most of a load's time was the kernel zeroing fresh pages: with memory given back as soon
/// as it is freed, every stage faulted in new pages for what the stage before had just freed.
/// Measured on the static `bootstrap --self-test` of the default model, one pinned core:
/// 0.26 s → 0.17 s, peak RSS 222 → 256 MB (the warm peak is unchanged: purging at once resumes
/// when the load ends).
pub fn while_loading<T>(load: impl FnOnce() -> T) -> T {
    set_purge_delay(LOADING_PURGE_DELAY_MS);
    let loaded = load();
    set_purge_delay(0);
    // SAFETY: mi_collect may be called at any time from any thread.
    unsafe { libmimalloc_sys::mi_collect(false) }
    loaded
}

/// How long mimalloc keeps freed memory before handing it back (milliseconds; 0: at once).
fn set_purge_delay(ms: std::ffi::c_long) {
    // SAFETY: sets one of mimalloc's documented options to a documented value; the option is
    // read whenever memory is purged, so setting it at any time is fine.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) }
}

/// Call first in `main`, while the process has one thread (it may set an environment
/// variable).
///
/// - Memory freed is given back to the system at once rather than after mimalloc's default
///   10 ms delay: under concurrent large requests (`serve`, the load test) the delay let freed
///   pages pile up, and the peak RSS rose from 248 to 297-317 MiB. Memory is what Lambda bills.
/// - Errors do not capture backtraces unless `RUST_LIB_BACKTRACE` asks for them. With only
///   `RUST_BACKTRACE=1` set (common on developers' machines; it is meant for panics), anyhow
///   captured one for every error tract creates and discards while it optimises a model: the
///   static musl build, whose unwinder walks `.eh_frame` slowly, took 1.29 s instead of 0.24 s
///   for `invoke --local` of one text (glibc build: 0.26 s either way). Panics keep their
///   backtraces.
pub fn configure() {
    set_purge_delay(0);
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // One thread so far (see above): nothing reads the environment concurrently.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}
