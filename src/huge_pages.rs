//! Transparent huge pages are turned off for the serving process.
//!
//! mimalloc asks for huge pages on its arenas, so the first touch of each 2 MiB region makes
//! the kernel zero all of it at once. While natter's bounded caches and the history store's
//! in-memory tables fill, that zeroing took 4–7% of the core at 5,000 one-to-one messages/s
//! (`clear_page_erms` under `do_huge_pmd_anonymous_page`), and under nested virtualization each
//! such fault is slow enough to show in the tail while memory grows. With 4 KiB pages it fell
//! to 0.05%; CPU per message did not rise, and once the caches were full the two were equal
//! (BENCHMARKS.md, docs/decisions.md).

/// Turns transparent huge pages off for the whole process, threads already running included
/// (the flag belongs to the address space); a kernel that refuses is logged and served as it is.
pub fn turn_off() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
        let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
        if refused {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "could not turn transparent huge pages off; serving with them"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_reports_transparent_huge_pages_off() {
        super::turn_off();
        let status = std::fs::read_to_string("/proc/self/status").expect("reading our status");
        // Linux has printed the flag since 5.0.
        let line = status
            .lines()
            .find(|line| line.starts_with("THP_enabled:"))
            .expect("the kernel reports THP_enabled in /proc/self/status");
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
}
