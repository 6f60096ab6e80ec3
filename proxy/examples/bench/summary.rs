//! Medians over the rounds of one workload on one target, per query where
//! it is a cost.

use crate::measure::RunResult;
use crate::workloads::Workload;

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub struct Summary {
    pub tps: f64,
    pub rounds: Vec<f64>,
    pub p50: f64,
    pub p99: f64,
    pub hit_ratio: Option<f64>,
    pub proxy_us: Option<f64>,
    pub server_us: f64,
    pub client_us: f64,
    pub softirq_us: f64,
    pub other_cores: f64,
    pub all_ok: bool,
    pub notes: Vec<String>,
}

pub fn summarize(w: &Workload, runs: &[RunResult]) -> Summary {
    let per_query = |cpu: f64, r: &RunResult| {
        if r.txns == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / (r.txns as f64 * w.statements)
        }
    };
    let hits: Vec<(u64, u64)> = runs.iter().filter_map(|r| r.hits).collect();
    Summary {
        tps: median(runs.iter().map(|r| r.tps).collect()),
        rounds: runs.iter().map(|r| r.tps).collect(),
        p50: median(runs.iter().map(|r| r.p50_ms).collect()),
        p99: median(runs.iter().map(|r| r.p99_ms).collect()),
        hit_ratio: if hits.is_empty() {
            None
        } else {
            let (h, m) = hits
                .iter()
                .fold((0u64, 0u64), |(a, b), (h, m)| (a + h, b + m));
            if h + m == 0 {
                None
            } else {
                Some(h as f64 / (h + m) as f64)
            }
        },
        proxy_us: runs.iter().any(|r| r.proxy_cpu_s.is_some()).then(|| {
            median(
                runs.iter()
                    .filter_map(|r| Some(per_query(r.proxy_cpu_s?, r)))
                    .collect(),
            )
        }),
        server_us: median(runs.iter().map(|r| per_query(r.server_cpu_s, r)).collect()),
        client_us: median(runs.iter().map(|r| per_query(r.client_cpu_s, r)).collect()),
        softirq_us: median(runs.iter().map(|r| per_query(r.softirq_s, r)).collect()),
        other_cores: median(runs.iter().map(|r| r.other_cores).collect()),
        all_ok: runs.iter().all(|r| r.ok),
        notes: runs
            .iter()
            .filter(|r| !r.note.is_empty())
            .map(|r| r.note.clone())
            .collect(),
    }
}
