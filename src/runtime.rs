//! The async runtime every command runs on: one thread for all async work (see
//! ARCHITECTURE.md, "Threads"), and a blocking pool whose threads run
//! [`BLOCKING_NICE_STEPS`] nice steps below the caller's priority.
//!
//! Why one thread: everything that blocks or burns CPU already runs elsewhere (file
//! writes, fsyncs and inflating on the blocking pool, hashing big files on its own thread,
//! SQLite on sqlx's), so more async threads only added hand-offs: on 2 cores the
//! many-reports pass took 5 % less time, a 1 GiB download 8 % less and 3 MiB less memory,
//! an S3 upload no more.
//!
//! Why the pool runs lower: a pass is bound by its requests on the wire. When a response
//! arrives, the async thread must run at once to read it and send the next request; the
//! blocking pool meanwhile inflates, hashes, writes and fsyncs earlier bodies, work that
//! can wait a few milliseconds without slowing anything. On a 2-core machine with 8
//! downloads in flight, that work otherwise competes for the cores with the async thread
//! (and, in the benchmark, with the server on the same machine): the many-reports
//! benchmark ran 2 % faster with the pool niced (median of 5 interleaved rounds, 1.78 s
//! against 1.82 s). Threads started from the pool (a big file's hash thread, a batch's
//! folder fsyncs) inherit its priority. The async thread itself keeps the priority the
//! service was started with.
//!
//! Best effort: under a seccomp filter that denies `setpriority` (the shipped systemd unit
//! denies `@resources`), the pool simply keeps the caller's priority.

use std::io;

/// How many nice steps the blocking pool runs below the process (capped at 19, the lowest).
pub const BLOCKING_NICE_STEPS: i32 = 10;
/// The lowest priority Linux has.
const LOWEST_PRIORITY: i32 = 19;

/// A current-thread runtime with timers and I/O, whose blocking threads are lowered by
/// [`BLOCKING_NICE_STEPS`].
pub fn build() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(lower_this_thread)
        .build()
}

/// Lowers the calling thread's priority by [`BLOCKING_NICE_STEPS`]; a refusal leaves it as
/// it was. On Linux, a thread id names one thread: the rest of the process is untouched.
#[cfg(target_os = "linux")]
fn lower_this_thread() {
    use rustix::process::{getpriority_process, setpriority_process};
    let me = Some(rustix::thread::gettid());
    if let Ok(now) = getpriority_process(me) {
        let lower = now.saturating_add(BLOCKING_NICE_STEPS).min(LOWEST_PRIORITY);
        if lower > now {
            let _ = setpriority_process(me, lower);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::getpriority_process;

    use super::*;

    fn my_priority() -> i32 {
        getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[test]
    fn blocking_threads_run_lower_and_the_async_thread_does_not() {
        // A thread of its own, so that the test harness's thread is never touched.
        std::thread::spawn(|| {
            let before = my_priority();
            let runtime = build().unwrap();
            let (async_thread, blocking, nested) = runtime.block_on(async {
                let async_thread = my_priority();
                let (blocking, nested) = tokio::task::spawn_blocking(|| {
                    // A thread the pool starts (as `place_all` and `file_sink` do) inherits.
                    let nested = std::thread::spawn(my_priority).join().unwrap();
                    (my_priority(), nested)
                })
                .await
                .unwrap();
                (async_thread, blocking, nested)
            });
            let expected = (before + BLOCKING_NICE_STEPS).min(LOWEST_PRIORITY);
            assert_eq!(async_thread, before, "the async thread keeps its priority");
            assert_eq!(my_priority(), before);
            assert_eq!(blocking, expected, "the blocking pool runs lower");
            assert_eq!(nested, expected, "threads it starts inherit that");
        })
        .join()
        .unwrap();
    }
}
