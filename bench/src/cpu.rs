//! Server CPU time, read from `/proc/<pid>/stat`, so a run can report CPU per message.

/// Clock ticks per second of `/proc` times; 100 on every Linux this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds spent in user space and in the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// In the process's own code.
    pub user: f64,
    /// In the kernel on the process's behalf (system calls, and on loopback the TCP work of
    /// both ends of a connection).
    pub system: f64,
}

impl CpuTimes {
    /// User plus system.
    pub fn total(self) -> f64 {
        self.user + self.system
    }

    /// The time between two readings.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// Total user + system CPU seconds of the given processes (those that are gone count 0).
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    cpu_times(pids).total()
}

/// User and system CPU seconds of the given processes, summed.
pub fn cpu_times(pids: &[u32]) -> CpuTimes {
    pids.iter()
        .filter_map(|pid| process_cpu(*pid))
        .fold(CpuTimes::default(), |sum, times| CpuTimes {
            user: sum.user + times.user,
            system: sum.system + times.system,
        })
}

fn process_cpu(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields count from after it.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some(CpuTimes {
        user: user / TICKS_PER_SECOND,
        system: system / TICKS_PER_SECOND,
    })
}

/// Resident memory of a process in bytes.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        // Burn a little CPU so the figure is above zero.
        let mut sum = 0u64;
        for number in 0..20_000_000u64 {
            sum = sum.wrapping_add(number * number);
        }
        assert!(sum > 0);
        assert!(cpu_seconds(&[std::process::id()]) > 0.0);
        assert!(cpu_times(&[std::process::id()]).user > 0.0);
        assert!(resident_bytes(std::process::id()).is_some_and(|bytes| bytes > 1 << 20));
        assert_eq!(cpu_seconds(&[u32::MAX]), 0.0, "a missing process counts 0");
    }
}
