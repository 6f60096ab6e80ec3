//! `BENCH_PERF=1`: profiles of pgcache under the hot set, taken with perf.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::opts::Opts;
use crate::pgbench::{field, pgbench_args};
use crate::targets::{find_program, Kind, Proc, Targets};
use crate::workloads::{workloads, Workload};

/// Extra hot-set runs (simple, then prepared) with `perf record` attached
/// to pgcache: a flat profile of each (self time by symbol), and for the
/// prepared run an inclusive one from DWARF call graphs. Written to
/// `perf-hot-<mode>.txt` and `perf-hot-prepared-children.txt` next to the report.
pub fn perf_profile(opts: &Opts, t: &mut Targets) -> Result<()> {
    let perf = find_program("perf", &[])?;
    let wls = workloads(opts, &t.dir)?;
    let base = wls
        .into_iter()
        .find(|w| w.id == "hot-simple")
        .ok_or_else(|| anyhow!("the perf profile needs the hot-simple workload"))?;
    let runs: [(&str, &'static str, &[&str]); 3] = [
        ("perf-hot-simple", "simple", &["-F", "1999"]),
        ("perf-hot-prepared", "prepared", &["-F", "1999"]),
        (
            "perf-hot-prepared-children",
            "prepared",
            &["-F", "499", "--call-graph", "dwarf,16384"],
        ),
    ];
    for (name, mode, rec_args) in runs {
        let w = Workload {
            mode,
            ..base.clone()
        };
        let data = t.dir.join(format!("{name}.data"));
        let rec = Command::new(&perf)
            .args(["record", "-e", "cpu-clock"])
            .args(rec_args)
            .arg("-o")
            .arg(&data)
            .arg("-p")
            .arg(t.pgcache.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut rec = Proc {
            name: "perf".into(),
            child: rec,
            stop_signal: "-INT",
        };
        std::thread::sleep(Duration::from_millis(500));
        let out = Command::new(testkit::bin("pgbench")?)
            .args(pgbench_args(&w, t.addr(Kind::Pgcache), None))
            .output()?;
        rec.stop();
        let children = name.ends_with("children");
        let mut report = Command::new(&perf);
        report.args(["report", "--stdio", "--sort", "dso,symbol", "-g", "none"]);
        if children {
            report.args(["--children", "--percent-limit", "3"]);
        } else {
            report.args(["--no-children", "--percent-limit", "0.5"]);
        }
        let report = report.arg("-i").arg(&data).output()?;
        let path = opts.out.join(format!("{name}.txt"));
        let header = format!(
            "# pgcache, {} (perf record -e cpu-clock {}), pgbench {}\n",
            w.title.replace("simple", mode),
            rec_args.join(" "),
            field(&String::from_utf8_lossy(&out.stdout), "tps =").unwrap_or("?")
        );
        let mut text = header.into_bytes();
        if !children {
            let by_dso = Command::new(&perf)
                .args(["report", "--stdio", "--sort", "dso", "-g", "none", "-i"])
                .arg(&data)
                .output()?;
            text.extend_from_slice(b"# by binary:\n");
            text.extend_from_slice(&by_dso.stdout);
        }
        text.extend_from_slice(&report.stdout);
        std::fs::write(&path, text)?;
        eprintln!("bench: perf profile in {}", path.display());
    }
    Ok(())
}
