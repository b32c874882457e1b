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
    // SAFETY: sets one of mimalloc's documented options to a documented value (0: purge at
    // once); the option is read whenever memory is purged, so setting it at any time is fine.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // One thread so far (see above): nothing reads the environment concurrently.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}
