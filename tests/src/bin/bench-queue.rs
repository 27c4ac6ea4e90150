//! Queue benchmark (run by ./scripts/bench), release binaries against the real stack: ticket
//! issue throughput from many kiosks, then call-next (and finish) from 500 windows calling at
//! once in one hall until the queue is empty. Every call is timed.

use std::time::{Duration, Instant};

use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient;
use xiaoneng_e2e::{channel, load_phase, shared_brokers, token, Figures, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kiosks: usize = env_or("BENCH_CONCURRENCY", 64);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let windows: usize = env_or("BENCH_WINDOWS", 500);
    let brokers = shared_brokers();
    let (catalog, matters) = xiaoneng_e2e::starter_catalog(&brokers, 20).await?;
    let catalog_addr = catalog.addr();
    let q = ServiceProc::start_with(
        ServiceKind::Queue,
        &brokers,
        &[("XIAONENG__DOMAIN__CATALOG_ADDR", catalog_addr.as_str()), ("XIAONENG__DATABASE__MAX_CONNECTIONS", "40")],
    )
    .await;
    let manager = token("manager", &[roles::HALL_MANAGER], "410702");
    let mut m = QueueServiceClient::new(channel(&q.addr(), Some(&manager)).await);
    let hall = m
        .create_hall(pb::CreateHallRequest {
            region_code: "410702".into(),
            name: "压测大厅".into(),
            categories: vec![
                pb::Category { code: "A".into(), name: "综合".into(), matter_ids: vec![] },
                pb::Category { code: "B".into(), name: "企业".into(), matter_ids: matters[..5].to_vec() },
            ],
            weekend_service: false,
        })
        .await?
        .into_inner()
        .hall
        .unwrap_or_default();
    let t = Instant::now();
    let codes: Vec<String> = (0..windows).map(|i| format!("W{i:03}")).collect();
    // One window in five a department window, for one matter each.
    let department = |i: usize| if i % 5 == 4 { vec![matters[i % matters.len()].clone()] } else { vec![] };
    let ids = xiaoneng_e2e::open_windows(&mut m, &hall.id, &codes, department, "s").await?;
    println!(
        "queue benchmark: one hall, {} matters, {windows} open windows (set up in {:.1} s)",
        matters.len(),
        t.elapsed().as_secs_f64()
    );

    let kiosk = token("kiosk", &[roles::SYSTEM], "410702");
    let mut clients = Vec::new();
    for _ in 0..kiosks {
        clients.push(QueueServiceClient::new(channel(&q.addr(), Some(&kiosk)).await));
    }
    let (c, hall_id, ms) = (std::sync::Arc::new(clients), hall.id.clone(), std::sync::Arc::new(matters.clone()));
    let mut issued = load_phase(kiosks, seconds, move |w, n| {
        let mut client = c[w].clone();
        let (hall_id, matter) = (hall_id.clone(), ms[(w * 13 + n as usize) % ms.len()].clone());
        let priority = if n % 10 == 0 { pb::Priority::Elderly } else { pb::Priority::Normal };
        async move {
            client
                .issue_ticket(pb::IssueTicketRequest {
                    hall_id,
                    matter_id: matter,
                    priority: priority as i32,
                    ..Default::default()
                })
                .await
                .is_ok()
        }
    })
    .await;
    issued.print(&format!("IssueTicket ({kiosks} kiosks)"));

    // 500 windows call (and finish) at once until nothing is left for them.
    let clerk = token("clerk", &[roles::CLERK], "410702");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids {
        let mut c = QueueServiceClient::new(channel(&q.addr(), Some(&clerk)).await);
        tasks.spawn(async move {
            let (mut calls, mut errors) = (Vec::new(), 0usize);
            loop {
                let t = Instant::now();
                match c.call_next(pb::CallNextRequest { window_id: id.clone() }).await {
                    Ok(r) => {
                        calls.push(t.elapsed().as_micros() as u64);
                        if r.into_inner().ticket.is_none() {
                            return (calls, errors);
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        if errors > 20 {
                            eprintln!("call-next failing: {e}");
                            return (calls, errors);
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
                if c.finish_service(pb::FinishServiceRequest { window_id: id.clone() }).await.is_err() {
                    errors += 1;
                }
            }
        });
    }
    let mut figures = Figures { requests: 0, errors: 0, seconds: 0.0, micros: Vec::new() };
    while let Some(r) = tasks.join_next().await {
        let (m, e) = r?;
        figures.micros.extend(m);
        figures.errors += e;
    }
    figures.seconds = started.elapsed().as_secs_f64();
    figures.requests = figures.micros.len();
    figures.print(&format!("CallNext ({windows} windows)"));
    let db = q.db().await;
    let (finished, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*) FILTER (WHERE state = 'finished'), count(DISTINCT call_seq) FROM tickets")
            .fetch_one(&db)
            .await?;
    println!(
        "served {finished} of {} tickets in {:.1} s ({:.0} tickets/s incl. finish); distinct call sequence numbers: {distinct}",
        issued.requests,
        figures.seconds,
        finished as f64 / figures.seconds
    );
    if let Some(kib) = q.peak_rss_kib() {
        println!("queue peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}
