//! CPU time from /proc: of a process tree, of this process's reaped
//! children, and of the whole machine.

use std::process::Command;

/// CPU seconds (user + system, including reaped children) of a process and
/// all its live descendants.
pub fn tree_cpu(root: u32, clk_tck: f64) -> f64 {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest starts at field 3 (state): ppid is field 4, utime 14 .. cstime 17.
            if f.len() < 15 {
                continue;
            }
            let ppid: u32 = f[1].parse().unwrap_or(0);
            let ticks: u64 = f[11..15]
                .iter()
                .map(|x| x.parse::<u64>().unwrap_or(0))
                .sum();
            procs.push((pid, ppid, ticks));
        }
    }
    let mut in_tree = std::collections::HashSet::new();
    in_tree.insert(root);
    loop {
        let before = in_tree.len();
        for (pid, ppid, _) in &procs {
            if in_tree.contains(ppid) {
                in_tree.insert(*pid);
            }
        }
        if in_tree.len() == before {
            break;
        }
    }
    procs
        .iter()
        .filter(|(pid, _, _)| in_tree.contains(pid))
        .map(|(_, _, t)| *t as f64)
        .sum::<f64>()
        / clk_tck
}

/// CPU seconds of this process's reaped children (pgbench, once waited for).
pub fn children_cpu(clk_tck: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17; rest starts at field 3.
    f.get(13..15)
        .map(|v| v.iter().map(|x| x.parse::<u64>().unwrap_or(0)).sum::<u64>())
        .unwrap_or(0) as f64
        / clk_tck
}

/// CPU seconds of the whole machine so far (all CPUs, /proc/stat): time
/// charged to processes (user, nice, system, steal), and irq + softirq time.
pub fn machine_busy(clk_tck: f64) -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    (
        (get(0) + get(1) + get(2) + get(7)) as f64 / clk_tck,
        (get(5) + get(6)) as f64 / clk_tck,
    )
}

pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
