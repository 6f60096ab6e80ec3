//! `pgcache demo`: a throwaway PostgreSQL, the proxy in front of it, a small
//! schema and a workload, then a report, and a write made straight on the
//! server (with psql, around the proxy) reaching the cache through the
//! change feed. Everything is removed at the end.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use testkit::{Cluster, ClusterOptions};
use tokio_postgres::{Client, NoTls};

use crate::bypass::Bypass;
use crate::feed::ChangeFeedMode;
use crate::{Proxy, ProxyConfig, ProxyHandle};

/// The database the demo works in.
const DB: &str = "postgres";
/// How long the demo waits for the change feed to stream, and then for a
/// direct write to show through the proxy, before saying it did not.
const FEED_PATIENCE: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Queries each client runs through the proxy (and again directly).
    #[arg(long, default_value_t = 2000)]
    pub queries: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
}

const SCHEMA: &str = "
    CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
    CREATE TABLE orders (id bigserial PRIMARY KEY, product_id int NOT NULL REFERENCES products(id),
                         quantity int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO products SELECT i, 'product ' || i, (i % 97) + 0.99 FROM generate_series(1, 1000) i;
";

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    println!("pgcache demo: starting a throwaway PostgreSQL from the system's binaries...");
    // wal_level = logical lets the change feed decode the server's WAL;
    // synchronous_commit = on (PostgreSQL's default, which the throwaway
    // cluster otherwise turns off for speed) makes a COMMIT return only once
    // its WAL is flushed, so the feed can see it at once.
    let options = ClusterOptions::default()
        .setting("wal_level", "logical")
        .setting("synchronous_commit", "on");
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(options))
        .await?
        .context("could not start PostgreSQL")?;
    println!("  PostgreSQL is listening on {}", cluster.addr());

    let upstream = cluster
        .url(cluster.superuser(), Some(cluster.superuser_password()), DB)
        .parse()?;
    let mut config = ProxyConfig::new("127.0.0.1:0".parse()?, upstream);
    config.change_feed = ChangeFeedMode::Auto;
    let proxy = Proxy::bind(config).await?;
    let proxy = proxy.spawn();
    println!(
        "  pgcache is listening on {} in front of it, with the change feed on (--change-feed auto)\n",
        proxy.addr
    );

    let via_proxy = connect(&cluster, proxy.addr).await?;
    via_proxy.batch_execute(SCHEMA).await?;
    println!("loaded the schema through the proxy: 1000 products, an orders table\n");

    let total = (args.queries * args.clients) as u64;
    let direct = workload(&cluster, cluster.addr(), &args, "directly    ", total).await?;
    let proxied = workload(&cluster, proxy.addr, &args, "through pgcache", total).await?;

    let orders: i64 = via_proxy
        .query_one("SELECT count(*) FROM orders", &[])
        .await?
        .get(0);
    let stats = &proxy.shared.stats;
    let (hits, misses, bypasses) = (
        stats.queries("hit"),
        stats.queries("miss"),
        stats.queries("bypass"),
    );
    println!("\nwhat happened:");
    for (label, r) in [("directly", &direct), ("through pgcache", &proxied)] {
        println!(
            "  {label:<16} {:>7} queries in {:>6.2}s = {:>8.0} q/s, latency p50 {:>6.0}µs p99 {:>6.0}µs",
            r.queries,
            r.elapsed.as_secs_f64(),
            r.queries as f64 / r.elapsed.as_secs_f64(),
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6,
        );
    }
    println!(
        "  throughput through pgcache: {:.2}x the server's",
        direct.elapsed.as_secs_f64() / proxied.elapsed.as_secs_f64()
    );
    println!("  orders written by both runs: {orders}");
    println!(
        "  through pgcache: {hits} hits, {misses} misses, {bypasses} bypasses; hit ratio {:.1}%",
        100.0 * hits as f64 / (hits + misses).max(1) as f64
    );
    let mut reasons: Vec<(u64, &str)> = Bypass::ALL
        .iter()
        .map(|r| (stats.bypasses(r.as_str()), r.as_str()))
        .filter(|(n, _)| *n > 0)
        .collect();
    reasons.sort_by(|a, b| b.cmp(a));
    let reasons: Vec<String> = reasons.iter().map(|(n, r)| format!("{r} {n}")).collect();
    println!(
        "  bypasses by reason: {} (dashboards/README.md explains each reason)",
        reasons.join(", ")
    );

    println!("\nfreshness:");
    let price = "SELECT price::text FROM products WHERE id = 1";
    let before: String = via_proxy.query_one(price, &[]).await?.get(0);
    via_proxy
        .batch_execute("UPDATE products SET price = price + 1 WHERE id = 1")
        .await?;
    let after: String = via_proxy.query_one(price, &[]).await?.get(0);
    println!("  price of product 1 was {before}; an UPDATE through pgcache; the next read says {after} (invalidated at once)");
    around_the_proxy(&cluster, &proxy, &via_proxy, price).await?;

    drop(via_proxy);
    proxy.shutdown().await?;
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    println!("\ncleaned up: the proxy is stopped, the PostgreSQL cluster and its files are gone");
    Ok(())
}

/// A write made with psql on the server, as an administrator or a job would,
/// reaching the cache through the change feed: the cached value before (a
/// hit), the UPDATE, and the first read through the proxy that sees it.
async fn around_the_proxy(
    cluster: &Cluster,
    proxy: &ProxyHandle,
    via_proxy: &Client,
    price: &str,
) -> anyhow::Result<()> {
    let stats = &proxy.shared.stats;
    let up = stats.feed.up.with_label_values(&[DB]);
    let waiting = Instant::now();
    while up.get() != 1 {
        if waiting.elapsed() > FEED_PATIENCE {
            let why = proxy
                .shared
                .engine
                .feed_board
                .databases()
                .into_iter()
                .find(|(name, _)| name == DB)
                .and_then(|(_, feed)| feed.last_error)
                .unwrap_or_else(|| "no error recorded".into());
            println!("  the change feed is not streaming ({why}): writes made around pgcache would show only after the table's TTL");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The feed bumps the earlier UPDATE through the proxy once more when it
    // decodes it: read until the value is served from the cache.
    let mut before = String::new();
    let mut hit = false;
    for _ in 0..50 {
        let hits = stats.queries("hit");
        before = via_proxy.query_one(price, &[]).await?.get(0);
        if stats.queries("hit") > hits {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hit = if hit {
        "a hit: the server was not asked"
    } else {
        "not a hit"
    };
    println!("\na write around pgcache, with psql on the server:");
    println!("  through pgcache, the price of product 1 is {before} ({hit})");
    let update = "UPDATE products SET price = 42 WHERE id = 1";
    // psql is a blocking child process; the proxy and its feed keep running
    // on the runtime's other threads meanwhile.
    tokio::task::block_in_place(|| cluster.psql(DB, update)).context("psql on the server")?;
    let committed = Instant::now();
    let target = "42.00";
    println!("  psql on the server (not through pgcache): {update}");
    let mut stale_reads = 0u32;
    loop {
        let now: String = via_proxy.query_one(price, &[]).await?.get(0);
        if now == target {
            let took = committed.elapsed().as_secs_f64() * 1e3;
            let stale = match stale_reads {
                0 => "the first read after the COMMIT already saw it".to_string(),
                1 => format!("one read before it still saw {before}"),
                n => format!("{n} reads before it still saw {before}"),
            };
            println!("  through pgcache {took:.1} ms after psql's COMMIT returned: {now} (the change feed invalidated the entry; {stale})");
            break;
        }
        stale_reads += 1;
        if committed.elapsed() > FEED_PATIENCE {
            println!("  through pgcache {FEED_PATIENCE:?} later: still {now}; the change feed did not deliver the write");
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn connect(cluster: &Cluster, addr: SocketAddr) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::Config::new()
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(cluster.superuser())
        .password(cluster.superuser_password())
        .dbname(DB)
        .connect(NoTls)
        .await
        .with_context(|| format!("could not connect to {addr}"))?;
    tokio::spawn(connection);
    Ok(client)
}

struct RunReport {
    queries: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// Each client: mostly product look-ups from a small hot set, some orders.
async fn workload(
    cluster: &Cluster,
    addr: SocketAddr,
    args: &DemoArgs,
    label: &str,
    total: u64,
) -> anyhow::Result<RunReport> {
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("  {prefix} [{bar:40}] {pos}/{len} queries")?
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = connect(cluster, addr).await?;
        let bar = bar.clone();
        let n = args.queries;
        tasks.push(tokio::spawn(async move {
            let lookup = client
                .prepare("SELECT id, name, price FROM products WHERE id = $1")
                .await?;
            let mut latencies = Vec::with_capacity(n);
            for i in 0..n {
                let id = ((i * 7 + c * 13) % 50 + 1) as i32;
                let t = Instant::now();
                if i % 20 == 0 {
                    client
                        .execute(
                            "INSERT INTO orders (product_id, quantity) VALUES ($1, $2)",
                            &[&id, &1i32],
                        )
                        .await?;
                } else {
                    client.query(&lookup, &[&id]).await?;
                }
                latencies.push(t.elapsed());
                bar.inc(1);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    bar.finish();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(RunReport {
        queries: latencies.len(),
        elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
    })
}
