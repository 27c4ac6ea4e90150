//! Accountability benchmark (run by ./scripts/bench), the release binary against the real
//! PostgreSQL and broker:
//!
//! 1. Throughput: a burst of window ratings (one in five a 差评, 2,000 staff in ten counties)
//!    produced onto `xiaoneng.evaluation.events` as the evaluation relay would; events applied
//!    per second until the ledger has every one (each: ledger entry, facts, the rules judged,
//!    records and their outbox events, in one transaction).
//! 2. Lag: the same events at a steady rate below that throughput; per event the time from
//!    publication (`ce_time`) to its ledger entry, and per supervision record the time from its
//!    evidence's publication to the record: p50 and p99.
//! 3. A province-sized month: facts of 18 cities' counties seeded straight into the database
//!    (window ratings and completed cases of 6,000 units and 60,000 staff), then GetRanking for
//!    the province, of units and of staff.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::accountability::v1::accountability_service_client::AccountabilityServiceClient;
use xiaoneng_e2e::proto::evaluation::events::v1::RatingSubmitted;
use xiaoneng_e2e::{channel, shared_brokers, token, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One window rating event: `n` picks its county, staff (of `staff`) and whether it is a 差评.
fn rating(n: usize, tag: &str, staff: usize) -> (uuid::Uuid, String, Vec<u8>) {
    let county = format!("4107{:02}", 2 + n % 10);
    let bad = n.is_multiple_of(5);
    let id = uuid::Uuid::now_v7();
    let m = RatingSubmitted {
        rating_id: id.to_string(),
        invitation_id: uuid::Uuid::new_v4().to_string(),
        region_code: county.clone(),
        level: if bad { 2 } else { 5 },
        bad,
        window_code: format!("ZH{:02}", n % 40),
        department: format!("{tag}-unit-{}", n % 200),
        staff_id: format!("{tag}-staff-{}", n % staff),
        matter_id: format!("M{}", n % 60),
        ..Default::default()
    };
    (id, county, m.encode_to_vec())
}

async fn produce(p: &FutureProducer, id: uuid::Uuid, county: &str, payload: &[u8]) -> anyhow::Result<()> {
    let topic = ServiceKind::Evaluation.topic();
    let headers = xiaoneng_kit::events::headers(
        &id,
        "xiaoneng.evaluation.events.v1.RatingSubmitted",
        &ServiceKind::Evaluation.event_source(),
        &id.to_string(),
        county,
        &chrono::Utc::now(),
        &HashMap::new(),
    );
    let key = id.to_string();
    let rec = FutureRecord::to(&topic).key(&key).payload(payload).headers(headers);
    p.send(rec, Duration::from_secs(10)).await.map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
    Ok(())
}

async fn applied(db: &sqlx::PgPool, tag: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM facts WHERE kind = 'rating' AND person LIKE $1")
        .bind(format!("{tag}-%"))
        .fetch_one(db)
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let burst: usize = env_or("BENCH_EVENTS", 20_000);
    let rate: f64 = env_or("BENCH_RATE", 0.0);
    let steady_secs: u64 = env_or("BENCH_SECONDS", 10);
    let province: i64 = env_or("BENCH_PROVINCE_FACTS", 1_000_000);
    let brokers = shared_brokers();
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("linger.ms", "5").create()?;
    let mut kafka = xiaoneng_e2e::settings().kafka;
    kafka.brokers = brokers.clone();
    let topics: Vec<String> = ServiceKind::ALL.iter().map(|k| k.topic()).collect();
    xiaoneng_kit::kafka::ensure_topics(&kafka, &topics).await?;

    // 1. Throughput: the burst is on the broker before the service starts, so the figure is
    //    the service's own (the broker's produce rate is printed beside it).
    let t = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..burst {
        let (id, county, payload) = rating(n, "burst", 2000);
        let p = producer.clone();
        sends.spawn(async move { produce(&p, id, &county, &payload).await });
        while sends.len() > 2000 {
            sends.join_next().await.transpose()?.transpose()?;
        }
    }
    while let Some(r) = sends.join_next().await {
        r??;
    }
    let produced = t.elapsed().as_secs_f64();
    let acc = ServiceProc::start(ServiceKind::Accountability, &brokers).await;
    let db = acc.db().await;
    let t = Instant::now();
    let mut first: Option<Instant> = None;
    loop {
        let n = applied(&db, "burst").await?;
        if n > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if n >= burst as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let from_first = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(0.0);
    let secs = t.elapsed().as_secs_f64();
    let throughput = burst as f64 / from_first.max(0.001);
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM records").fetch_one(&db).await?;
    println!("accountability benchmark");
    println!(
        "{:<34} {:>8.0} events/s ({burst} ratings waiting on the broker, produced at {:.0}/s; all applied {secs:.1} s \
         after the start, {from_first:.1} s after the first; {records} records)",
        "burst applied",
        throughput,
        burst as f64 / produced
    );

    // 2. Lag at a steady rate (half the measured throughput unless BENCH_RATE says).
    let rate = if rate > 0.0 { rate } else { (throughput / 2.0).max(10.0) };
    let every = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * steady_secs as f64) as usize;
    let start = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = start + every * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let (id, county, payload) = rating(n, "steady", 40);
        let p = producer.clone();
        sends.spawn(async move { produce(&p, id, &county, &payload).await });
    }
    while let Some(r) = sends.join_next().await {
        r??;
    }
    while applied(&db, "steady").await? < total as i64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut lag: Vec<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (l.recorded_at - l.occurred_at))::float8 * 1000
         FROM ledger_entries l JOIN facts f ON f.event_id = l.event_id AND f.kind = 'rating'
         WHERE f.person LIKE 'steady-%'",
    )
    .fetch_all(&db)
    .await?;
    lag.sort_by(f64::total_cmp);
    let mut rec_lag: Vec<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (r.created_at - l.occurred_at))::float8 * 1000
         FROM records r JOIN ledger_entries l ON l.event_id = r.evidence[array_length(r.evidence, 1)]
         WHERE r.person LIKE 'steady-%'",
    )
    .fetch_all(&db)
    .await?;
    rec_lag.sort_by(f64::total_cmp);
    println!(
        "{:<34} {:>8.0} events/s for {steady_secs} s: publication → ledger p50 {:.0} ms, p99 {:.0} ms",
        "steady rate",
        rate,
        pct(&lag, 0.5),
        pct(&lag, 0.99)
    );
    println!(
        "{:<34} {:>8} records: evidence published → record p50 {:.0} ms, p99 {:.0} ms",
        "records made at that rate",
        rec_lag.len(),
        pct(&rec_lag, 0.5),
        pct(&rec_lag, 0.99)
    );

    // 3. A province-sized month, seeded: 18 cities × 10 counties, 6,000 units, 60,000 staff;
    //    four in five facts window ratings (one in ten bad), one in five completed cases.
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO facts (event_id, kind, region_code, unit, person, on_date, attrs, subject)
         SELECT gen_random_uuid(),
                CASE WHEN n % 5 = 0 THEN 'case_completed' ELSE 'rating' END,
                '41' || lpad((1 + n % 18)::text, 2, '0') || lpad((2 + (n / 18) % 10)::text, 2, '0'),
                'unit-' || (n % 6000), 'staff-' || (n % 60000), DATE '2026-10-01' + (n % 31)::int,
                CASE WHEN n % 5 = 0
                     THEN jsonb_build_object('matter', 'M' || (n % 300), 'on_time', ((n / 5) % 9 <> 0)::text)
                     ELSE jsonb_build_object('good', (n % 10 <> 1)::text, 'window', 'ZH01') END,
                'subject-' || n
         FROM generate_series(1, $1) AS n",
    )
    .bind(province)
    .execute(&db)
    .await?;
    println!("{:<34} {:>8} facts in {:.1} s", "province month seeded", province, t.elapsed().as_secs_f64());
    let tok = token("province-office", &[roles::SUPERVISOR], "410000");
    let mut office = AccountabilityServiceClient::new(channel(&acc.addr(), Some(&tok)).await);
    for staff in [false, true] {
        let req = apb::GetRankingRequest { region_code: "410000".into(), period: "2026-10".into(), staff };
        let t = Instant::now();
        let r = office.get_ranking(req).await?.into_inner();
        let ranked = r.rows.iter().filter(|x| x.rank > 0).count();
        println!(
            "{:<34} {:>8.1} s ({} rows, {ranked} ranked)",
            if staff { "GetRanking, province, staff" } else { "GetRanking, province, units" },
            t.elapsed().as_secs_f64(),
            r.rows.len()
        );
    }
    if let Some(kib) = acc.peak_rss_kib() {
        println!("{:<34} {:>8} MiB", "service peak RSS", kib / 1024);
    }
    Ok(())
}
