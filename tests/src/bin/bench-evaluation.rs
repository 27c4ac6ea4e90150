//! Evaluation benchmark (run by ./scripts/bench), release binaries against the real stack:
//!
//! 1. Single ratings: many concurrent clients, one SubmitRating each call (invitation row lock,
//!    rating, outbox event, the manipulation-signal queries, in one transaction).
//! 2. Batched ratings: SubmitRatings of 100 items per call, as a provincial platform forwards
//!    them (one transaction, a savepoint per item).
//! 3. Statistics freshness: right after the burst, how long until GetStatistics counts every
//!    rating the burst stored, and what a statistics read costs at that volume.
//!
//! The invitations are seeded straight into the service's database (as the consumer would
//! have opened them): the benchmark measures rating, not the queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xiaoneng_e2e::proto::evaluation::v1 as epb;
use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
use xiaoneng_e2e::{channel, load_phase, shared_brokers, token, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

type Client = EvaluationServiceClient<xiaoneng_e2e::Intercepted>;

fn rating(invitation: &uuid::Uuid, n: usize) -> epb::SubmitRatingRequest {
    // One in ten is a 差评 (it opens its loop), as on a real platform's worse days.
    let bad = n % 10 == 0;
    epb::SubmitRatingRequest {
        invitation_id: invitation.to_string(),
        level: if bad { 2 } else { 5 },
        comment: if bad { "等候时间长".into() } else { String::new() },
        channel: epb::Channel::Portal as i32,
        ..Default::default()
    }
}

/// The total of ratings GetStatistics counts for the region today.
async fn counted(c: &mut Client, today: &str) -> anyhow::Result<i64> {
    let req = epb::GetStatisticsRequest {
        region_code: "410702".into(),
        dimension: epb::Dimension::Region as i32,
        from_date: today.into(),
        to_date: today.into(),
        ..Default::default()
    };
    Ok(c.get_statistics(req).await?.into_inner().rows.iter().map(|r| r.ratings).sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 64);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let seeded: i64 = env_or("BENCH_INVITATIONS", 400_000);
    let batch: usize = env_or("BENCH_BATCH", 100);
    let brokers = shared_brokers();
    let eval = ServiceProc::start(ServiceKind::Evaluation, &brokers).await;
    let db = eval.db().await;
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO invitations (id, region_code, occurrence, source_key, ticket_id, case_id, matter_id, matter_name,
            window_code, hall_id, department, staff_id, citizen_id, opened_at, rate_by)
         SELECT gen_random_uuid(), '410702', 'on_site', 'bench:' || n, 'T' || n, '', 'M' || (n % 40), '压测事项',
                'W' || (n % 120), 'H1', '行政审批局', 'staff-' || (n % 500), '', now(), CURRENT_DATE + 30
         FROM generate_series(1, $1) AS n",
    )
    .bind(seeded)
    .execute(&db)
    .await?;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM invitations ORDER BY id").fetch_all(&db).await?;
    println!("evaluation benchmark: {} invitations seeded in {:.1} s", ids.len(), t.elapsed().as_secs_f64());
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let tok = token("bench-platform", &[roles::SYSTEM], "410702");
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(EvaluationServiceClient::new(channel(&eval.addr(), Some(&tok)).await));
    }
    let clients = Arc::new(clients);

    // 1. Single ratings.
    println!("{concurrency} concurrent clients for {seconds} s each phase");
    let (c1, ids1, next1) = (clients.clone(), ids.clone(), next.clone());
    let mut single = load_phase(concurrency, seconds, move |worker, _| {
        let (clients, ids, next) = (c1.clone(), ids1.clone(), next1.clone());
        async move {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(id) = ids.get(n) else { return false };
            let mut c = clients[worker].clone();
            c.submit_rating(rating(id, n)).await.is_ok()
        }
    })
    .await;
    single.print("SubmitRating (one per call)");

    // 2. Batched ratings: fewer clients, each call `batch` ratings.
    let batch_clients = (concurrency / 8).max(2);
    let (c2, ids2, next2) = (clients.clone(), ids.clone(), next.clone());
    let stored_before = next.load(Ordering::Relaxed);
    let mut batched = load_phase(batch_clients, seconds, move |worker, _| {
        let (clients, ids, next) = (c2.clone(), ids2.clone(), next2.clone());
        async move {
            let n = next.fetch_add(batch, Ordering::Relaxed);
            if n + batch > ids.len() {
                return false;
            }
            let ratings = (n..n + batch).map(|k| rating(&ids[k], k)).collect();
            let mut c = clients[worker].clone();
            match c.submit_ratings(epb::SubmitRatingsRequest { ratings }).await {
                Ok(r) => r.into_inner().results.iter().all(|x| x.error_code.is_empty()),
                Err(_) => false,
            }
        }
    })
    .await;
    let burst_end = Instant::now();
    let calls = batched.requests;
    batched.print(&format!("SubmitRatings ({batch} per call)"));
    println!(
        "{:<34} {:>8.0} ratings/s ({} ratings in {:.1} s; single calls gave {:.0} ratings/s)",
        "batched throughput",
        (calls * batch) as f64 / batched.seconds,
        calls * batch,
        batched.seconds,
        single.requests as f64 / single.seconds
    );
    let _ = stored_before;

    // 3. Freshness: statistics are counted from the stored ratings at read time; after the
    //    burst, poll until they count every stored rating.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings").fetch_one(&db).await?;
    let today = chrono::Utc::now().with_timezone(&xiaoneng_kit::clock::cst()).date_naive().to_string();
    let mut office = EvaluationServiceClient::new(
        channel(&eval.addr(), Some(&token("bench-office", &[roles::SUPERVISOR], "410700"))).await,
    );
    let fresh = loop {
        if counted(&mut office, &today).await? >= stored {
            break burst_end.elapsed();
        }
        if burst_end.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("statistics did not reach {stored} ratings in 60 s");
        }
    };
    println!(
        "{:<34} {:>8.1} ms after the burst's last call ({stored} ratings counted)",
        "statistics fresh",
        fresh.as_secs_f64() * 1000.0
    );
    let mut reads = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        counted(&mut office, &today).await?;
        reads.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    reads.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{:<34} p50 {:>7.1} ms  max {:>7.1} ms over {stored} ratings (by region, one day)",
        "GetStatistics",
        reads[reads.len() / 2],
        reads[reads.len() - 1]
    );
    if let Some(kib) = eval.peak_rss_kib() {
        println!("evaluation peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}
