//! `xiaoneng-simulate`: a seeded working day of the city 新乡市 (410700) and its counties,
//! driven through the six real services on a private stack whose business clock runs faster
//! (`--rate`), so the day's deadlines, reminders and escalations fire during the run. At the
//! end: every invariant checked and printed as a line that can fail, the ranking and a
//! bulletin, and an HTML report with its pictures drawn as SVG.
//!
//! ```text
//! xiaoneng-simulate [--seed 7] [--date 2026-09-24] [--counties 12] [--citizens 30]
//!                   [--rate 240] [--chaos] [--report PATH] [--keep]
//! ```
//! Exit status 0 when every invariant holds, 1 when one fails, 2 on bad flags.

mod check;
mod day;
mod office;
mod report;
mod rng;
mod stack;
mod watch;
mod workdays;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use prost::Message as _;
use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::token;
use xiaoneng_kit::auth::roles;

use crate::report::{bars, counts, esc, lines, table, Report};
use crate::stack::{at, County, Stack, CITY, COUNTIES};

struct Args {
    seed: u64,
    date: NaiveDate,
    counties: usize,
    citizens: usize,
    rate: f64,
    chaos: bool,
    report: std::path::PathBuf,
    keep: bool,
}

const USAGE: &str = "usage: xiaoneng-simulate [--seed N] [--date YYYY-MM-DD (a 2026 working day)] [--counties 1-12] \
[--citizens N per hall] [--rate 60-2000] [--chaos] [--report PATH] [--keep]";

fn args() -> Result<Args, String> {
    let mut a = Args {
        seed: 7,
        date: NaiveDate::from_ymd_opt(2026, 9, 24).expect("date"),
        counties: COUNTIES.len(),
        citizens: 30,
        rate: 240.0,
        chaos: false,
        report: std::env::temp_dir().join("xiaoneng-simulate").join("report.html"),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--date" => a.date = value()?.parse().map_err(|e| format!("--date: {e}"))?,
            "--counties" => a.counties = value()?.parse().map_err(|e| format!("--counties: {e}"))?,
            "--citizens" => a.citizens = value()?.parse().map_err(|e| format!("--citizens: {e}"))?,
            "--rate" => a.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--report" => a.report = value()?.into(),
            "--chaos" => a.chaos = true,
            "--keep" => a.keep = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if !(1..=COUNTIES.len()).contains(&a.counties) {
        return Err(format!("--counties must be 1 to {}", COUNTIES.len()));
    }
    if !(1..=20_000).contains(&a.citizens) {
        return Err("--citizens must be 1 to 20000 per hall".into());
    }
    if !(60.0..=2000.0).contains(&a.rate) {
        return Err("--rate must be 60 to 2000 (times real time)".into());
    }
    if a.date.format("%Y").to_string() != "2026" || !workdays::is_working_day(a.date) {
        return Err(format!("--date {} must be a working day of 2026 (the calendar the stack carries)", a.date));
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match run(a).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("simulation failed: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn connect(addr: &str) -> anyhow::Result<tonic::transport::Channel> {
    Ok(tonic::transport::Channel::from_shared(addr.to_string())?.connect().await?)
}

async fn run(a: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let counties: Vec<County> =
        COUNTIES.iter().take(a.counties).map(|(c, n)| County { code: c.to_string(), name: n.to_string() }).collect();
    println!(
        "simulating {} in {} counties of 新乡市, {} citizens per hall, seed {}, business clock ×{}{}",
        a.date,
        counties.len(),
        a.citizens,
        a.seed,
        a.rate,
        if a.chaos { ", with faults" } else { "" }
    );
    let stack = Stack::start(at(a.date, 6, 30), a.rate).await?;
    println!("  a private stack: broker {} and six services on fresh databases", stack.broker.brokers());
    stack.load_catalogs(&counties)?;
    let calls = Arc::new(watch::Calls::default());
    let ch = day::Channels {
        catalog: connect(&stack.catalog.addr()).await?,
        queue: connect(&stack.queue.addr()).await?,
        case: connect(&stack.case.addr()).await?,
        evaluation: connect(&stack.evaluation.addr()).await?,
        complaint: connect(&stack.complaint.addr()).await?,
        accountability: connect(&stack.accountability.addr()).await?,
    };
    let matters = day::World::load_matters(&counties, &ch.catalog, &calls).await?;
    let mut pools = Vec::new();
    for p in stack.all() {
        pools.push((p.kind.name().to_string(), p.db().await));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let dept = Arc::new(watch::Department::default());
    let consumer = dept.spawn(stack.broker.brokers(), stop.clone());
    let progress = Arc::new(watch::Progress::default());
    let w = Arc::new(day::World {
        clock: stack.clock,
        date: a.date,
        counties: counties.clone(),
        matters,
        halls: Mutex::new(Vec::new()),
        calls: calls.clone(),
        progress: progress.clone(),
        tickets: Mutex::new(Vec::new()),
        cases: Mutex::new(Vec::new()),
        ratings: Mutex::new(Vec::new()),
        double_ratings: Mutex::new((0, 0)),
        complaints: Mutex::new(Vec::new()),
        categories: Mutex::new(Vec::new()),
        case_errors: Mutex::new(Vec::new()),
        ch,
        open311: stack.open311.clone(),
        rng: rng::Rng::new(a.seed),
        citizens: a.citizens,
    });
    w.open_halls().await?;
    let setup_done = w.clock.now();
    println!(
        "  halls, windows, rosters and appointment slots ready at {} business time ({:.0} s real)",
        setup_done.with_timezone(&xiaoneng_kit::clock::cst()).format("%H:%M"),
        started.elapsed().as_secs_f64()
    );
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(watch::sample_loop(
        pools.clone(),
        w.clock,
        w.open_at(),
        w.close_at(),
        progress.clone(),
        dept.clone(),
        calls.clone(),
        samples.clone(),
        stop.clone(),
    ));
    let stack = Arc::new(tokio::sync::Mutex::new(stack));
    let faults = Arc::new(Mutex::new(Vec::<String>::new()));
    let chaos = a.chaos.then(|| tokio::spawn(chaos(w.clone(), stack.clone(), pools.clone(), faults.clone(), a.seed)));
    let day_started = Instant::now();
    let (arrive, work, complain, inspect) =
        tokio::join!(w.citizens_arrive(), w.windows_work(), w.complaints_arrive(), w.inspect());
    arrive?;
    work?;
    complain?;
    inspect?;
    if let Some(c) = chaos {
        c.await??;
    }
    let day_real = day_started.elapsed();
    let settled = check::settle(&pools, &dept, 240).await;
    // The end of the day: the month's ranking and its bulletin, for the city.
    let office = token("xiaoneng-office", &[roles::SUPERVISOR], CITY);
    let acc = w.acc(&office);
    let period = a.date.format("%Y-%m").to_string();
    let ranking = acc
        .clone()
        .get_ranking(apb::GetRankingRequest { region_code: CITY.into(), period: period.clone(), staff: false })
        .await?
        .into_inner();
    let bulletin = acc
        .clone()
        .publish_bulletin(apb::PublishBulletinRequest { region_code: CITY.into(), period: period.clone() })
        .await?
        .into_inner();
    // The bulletin is an event too: the pipeline settles again before the checks.
    let settled = settled && check::settle(&pools, &dept, 120).await;
    let all_cases = check::fetch_cases(&w).await?;
    let checks = check::run(&w, &pools, &dept, settled, &all_cases).await?;
    let latency = check::pipeline_latency(&pools).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let _ = consumer.join();

    let faults = faults.lock().expect("faults").clone();
    let r = build_report(
        &a,
        &w,
        &dept,
        &all_cases,
        &ranking,
        &bulletin.bulletin_id,
        &checks,
        &latency,
        &samples,
        &faults,
        day_real,
        started.elapsed(),
    )
    .await?;
    if let Some(dir) = a.report.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.report, r.html())?;
    println!("the day's figures:");
    for (k, v) in &r.summary {
        println!("  {k}: {v}");
    }
    println!("invariants:");
    for c in &checks {
        println!("  {} {} — {}", if c.ok { "✓" } else { "✗ FAILS:" }, c.name, c.detail);
    }
    let ok = checks.iter().all(|c| c.ok);
    println!("{} — report: {}", if ok { "every invariant holds" } else { "AN INVARIANT FAILS" }, a.report.display());
    let stack = Arc::try_unwrap(stack).map_err(|_| anyhow::anyhow!("stack still shared"))?.into_inner();
    if a.keep {
        let names: Vec<String> = stack.all().iter().map(|p| p.database.clone()).collect();
        println!("kept databases: {}", names.join(" "));
        drop(stack);
    } else {
        stack.drop_databases().await;
    }
    Ok(ok)
}

/// Faults at seeded moments of the opening hours: a service killed and restarted (a consumer
/// mid-batch among them), the broker killed and restarted, the case service's database
/// connections dropped.
async fn chaos(
    w: Arc<day::World>,
    stack: Arc<tokio::sync::Mutex<Stack>>,
    pools: check::Pools,
    faults: Arc<Mutex<Vec<String>>>,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = rng::Rng::new(seed).fork(424_242);
    let kinds = ["evaluation", "broker", "case", "postgres", "accountability"];
    let span = (w.last_arrival() - w.open_at()).num_seconds() as f64;
    let mut moments: Vec<(f64, &str)> =
        kinds.iter().enumerate().map(|(i, k)| (0.1 + 0.16 * i as f64 + rng.range(0.0, 0.08), *k)).collect();
    moments.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (share, kind) in moments {
        let when = w.open_at() + chrono::Duration::seconds((span * share) as i64);
        w.clock.until(when).await;
        let biz = w.clock.now().with_timezone(&xiaoneng_kit::clock::cst()).format("%H:%M").to_string();
        let t = Instant::now();
        match kind {
            "broker" => {
                let mut s = stack.lock().await;
                s.broker.kill();
                tokio::time::sleep(Duration::from_secs(3)).await;
                s.broker.restart();
            }
            "postgres" => {
                let db = pools.iter().find(|(n, _)| n == "case").map(|(_, p)| p.clone());
                if let Some(p) = db {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
                    )
                    .fetch_one(&p)
                    .await
                    .unwrap_or(0);
                    faults.lock().expect("faults").push(format!("{biz} dropped {n} connections of the case database"));
                    w.progress.faults.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            name => {
                stack.lock().await.crash_and_restart(name, Duration::from_secs(2)).await;
            }
        }
        w.progress.faults.fetch_add(1, Ordering::Relaxed);
        faults.lock().expect("faults").push(format!(
            "{biz} {kind} killed (SIGKILL) and started again, back in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

fn hours(t: &Option<prost_types::Timestamp>) -> Option<f64> {
    let t = t.as_ref()?;
    let d = chrono::DateTime::from_timestamp(t.seconds, 0)?.with_timezone(&xiaoneng_kit::clock::cst());
    use chrono::Timelike;
    Some(d.hour() as f64 + d.minute() as f64 / 60.0)
}

#[allow(clippy::too_many_arguments)]
async fn build_report(
    a: &Args,
    w: &day::World,
    dept: &watch::Department,
    cases: &[(day::CaseRec, cpb::Case)],
    ranking: &apb::GetRankingResponse,
    bulletin: &str,
    checks: &[check::Check],
    latency: &BTreeMap<String, Vec<f64>>,
    samples: &Mutex<Vec<watch::Sample>>,
    faults: &[String],
    day_real: Duration,
    total: Duration,
) -> anyhow::Result<Report> {
    use xiaoneng_e2e::proto::queue::events::v1 as qev;
    let name_of = |code: &str| {
        w.counties.iter().find(|c| code.starts_with(&c.code)).map(|c| c.name.clone()).unwrap_or(code.into())
    };
    let finished: Vec<qev::ServiceFinished> = dept
        .of_type("queue.events.v1.ServiceFinished")
        .iter()
        .filter_map(|s| qev::ServiceFinished::decode(s.payload.as_slice()).ok())
        .collect();
    // Waits through the day: the mean wait of those who arrived in each half hour, per county.
    let mut by_county: BTreeMap<String, BTreeMap<i64, (f64, f64)>> = BTreeMap::new();
    for f in &finished {
        let Some(end) = hours(&f.finish_time) else { continue };
        let arrival = end - (f.wait_seconds + f.service_seconds) as f64 / 3600.0;
        let e =
            by_county.entry(name_of(&f.region_code)).or_default().entry((arrival * 2.0).floor() as i64).or_default();
        e.0 += f.wait_seconds as f64 / 60.0;
        e.1 += 1.0;
    }
    let waits: Vec<(String, Vec<(f64, f64)>)> = by_county
        .into_iter()
        .map(|(c, m)| (c, m.into_iter().map(|(h, (s, n))| (h as f64 / 2.0, s / n)).collect()))
        .collect();
    let per_county_tickets = counts(w.tickets.lock().expect("t").iter().map(|t| w.counties[t.county].name.clone()));
    let events_by_county = counts(dept.events.lock().expect("events").values().map(|e| name_of(&e.region)));
    let per_window = counts(finished.iter().map(|f| format!("{} {}", name_of(&f.region_code), f.window_code)));
    let tidal = dept.of_type("queue.events.v1.TidalWindowChanged").len();
    let mut r = Report {
        title: format!("新乡市 {} 模拟工作日 (seed {})", a.date, a.seed),
        summary: vec![],
        sections: vec![],
        checks: checks.to_vec(),
    };
    let calls = w.calls.figures();
    let ncalls: usize = calls.values().map(|c| c.micros.len()).sum();
    let ticket_recs = w.tickets.lock().expect("t").clone();
    let tickets = ticket_recs.len();
    let booked = ticket_recs.iter().filter(|t| t.appointment).count();
    let ratings = w.ratings.lock().expect("r").clone();
    let complaints = w.complaints.lock().expect("c").clone();
    let day_secs = day_real.as_secs_f64().max(1e-9);
    r.summary = vec![
        ("counties".into(), w.counties.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join("、")),
        (
            "business clock".into(),
            format!(
                "×{} (08:30–17:30 took {:.0} s real; the whole run {:.0} s)",
                a.rate,
                day_real.as_secs_f64(),
                total.as_secs_f64()
            ),
        ),
        (
            "tickets".into(),
            format!(
                "{tickets} issued ({booked} by appointment check-in), {} served, {tidal} tidal-window changes",
                finished.len()
            ),
        ),
        ("cases".into(), format!("{} submitted", cases.len())),
        ("ratings".into(), format!("{} ({} 差评)", ratings.len(), ratings.iter().filter(|r| r.level <= 2).count())),
        ("complaints".into(), complaints.len().to_string()),
        ("calls".into(), format!("{ncalls} ({:.1}/s over the opening hours)", ncalls as f64 / day_secs)),
        (
            "events".into(),
            format!(
                "{} distinct, {} deliveries ({:.1}/s)",
                dept.distinct(),
                dept.deliveries.load(Ordering::Relaxed),
                dept.distinct() as f64 / day_secs
            ),
        ),
        ("faults".into(), if faults.is_empty() { "none (run with --chaos)".into() } else { faults.join("; ") }),
        ("bulletin".into(), format!("{bulletin} (period {})", a.date.format("%Y-%m"))),
    ];
    r.section(
        "The halls",
        vec![
            lines("Mean wait through the day, by arrival half hour (minutes)", &waits, "hour", "min"),
            bars("Tickets by county", &per_county_tickets, ""),
            bars("Citizens served per window", &per_window, ""),
        ],
    );
    // Cases by county: decided on time, and the escalations.
    let mut rows = Vec::new();
    let mut on_time = Vec::new();
    for c in &w.counties {
        let mine: Vec<&cpb::Case> =
            cases.iter().filter(|(r, _)| w.counties[r.county].code == c.code).map(|(_, k)| k).collect();
        let decided: Vec<&&cpb::Case> = mine.iter().filter(|k| !k.decided_date.is_empty()).collect();
        let timely = decided.iter().filter(|k| k.decided_date <= k.promised_deadline).count();
        let level =
            |l: cpb::EscalationLevel| mine.iter().flat_map(|k| &k.escalations).filter(|e| e.level == l as i32).count();
        if !decided.is_empty() {
            on_time.push((c.name.clone(), 100.0 * timely as f64 / decided.len() as f64));
        }
        rows.push(vec![
            c.name.clone(),
            mine.len().to_string(),
            mine.iter().filter(|k| !k.accepted_date.is_empty()).count().to_string(),
            decided.len().to_string(),
            timely.to_string(),
            level(cpb::EscalationLevel::Warning).to_string(),
            level(cpb::EscalationLevel::YellowCard).to_string(),
            level(cpb::EscalationLevel::RedCard).to_string(),
        ]);
    }
    let scenarios = counts(cases.iter().map(|(r, _)| r.scenario.to_string()));
    let mut by_matter = counts(cases.iter().map(|(r, _)| w.matters[r.county][r.matter].name.clone()));
    by_matter.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_matter.truncate(10);
    r.section(
        "Cases under the legal clock",
        vec![
            bars("On-time rate of decided cases, by county (%)", &on_time, "%"),
            table(
                &["county", "cases", "accepted", "decided", "on time", "warnings", "yellow cards", "red cards"],
                &rows,
            ),
            bars("Cases by path (quick, 一次性告知, 容缺, 并联, slow)", &scenarios, ""),
            bars("The ten matters applied for most", &by_matter, ""),
        ],
    );
    let level_names = ["", "非常不满意", "不满意", "基本满意", "满意", "非常满意"];
    let by_level = counts(ratings.iter().map(|r| format!("{} {}", r.level, level_names[r.level.clamp(0, 5) as usize])));
    let loops = counts(ratings.iter().filter(|r| r.level <= 2).map(|r| w.counties[r.county].name.clone()));
    r.section(
        "好差评",
        vec![bars("Ratings by level", &by_level, ""), bars("差评 loops opened, by county", &loops, "")],
    );
    r.section(
        "Complaints",
        vec![
            bars("Complaints by channel", &counts(complaints.iter().map(|c| c.channel.to_string())), ""),
            bars("Complaints by category", &counts(complaints.iter().map(|c| c.category.clone())), ""),
            bars("Complaints by county", &counts(complaints.iter().map(|c| w.counties[c.county].name.clone())), ""),
        ],
    );
    let records = check::all_records(w, CITY).await?;
    r.section(
        "Supervision records and the ranking",
        vec![
            bars("Records by level", &counts(records.iter().map(|x| x.level.clone())), ""),
            bars("Records by county", &counts(records.iter().map(|x| name_of(&x.region_code))), ""),
            table(
                &["rank", "unit", "score", "ratings", "satisfaction", "cases", "on time", "why"],
                &ranking
                    .rows
                    .iter()
                    .map(|x| {
                        vec![
                            x.rank.to_string(),
                            x.key.clone(),
                            format!("{:.1}", x.score),
                            x.ratings.to_string(),
                            format!("{:.1}%", x.satisfaction * 100.0),
                            x.cases.to_string(),
                            x.on_time.to_string(),
                            x.records.join("; "),
                        ]
                    })
                    .collect::<Vec<_>>(),
            ),
        ],
    );
    let call_rows: Vec<Vec<String>> = calls
        .iter()
        .map(|(n, f)| {
            vec![
                n.to_string(),
                f.micros.len().to_string(),
                f.errors.to_string(),
                f.retries.to_string(),
                format!("{:.1}", f.pct(0.5)),
                format!("{:.1}", f.pct(0.99)),
            ]
        })
        .collect();
    let pct = |v: &Vec<f64>, p: f64| if v.is_empty() { 0.0 } else { v[((v.len() - 1) as f64 * p).round() as usize] };
    let lat_rows: Vec<Vec<String>> = latency
        .iter()
        .map(|(n, v)| {
            vec![
                n.clone(),
                v.len().to_string(),
                format!("{:.0}", pct(v, 0.5)),
                format!("{:.0}", pct(v, 0.99)),
                format!("{:.0}", pct(v, 1.0)),
            ]
        })
        .collect();
    let samples = samples.lock().expect("samples").clone();
    let t0 = samples.first().map(|s| s.biz).unwrap_or_else(chrono::Utc::now);
    let mut backlog: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in &samples {
        let x = (s.biz - t0).num_seconds() as f64 / a.rate;
        for (k, v) in &s.backlog {
            backlog.entry(k.clone()).or_default().push((x, (*v).max(0) as f64));
        }
    }
    r.section(
        "The system's own figures",
        vec![
            format!("<p>{}</p>", esc("Each call as the simulation timed it (milliseconds, real time); retries are calls that met a service or broker being restarted.")),
            table(&["call", "n", "errors", "retries", "p50 ms", "p99 ms"], &call_rows),
            format!("<p>{}</p>", esc("Commit → applied: from the outbox row's commit to the consumer's processed row, both stamped by PostgreSQL (milliseconds).")),
            table(&["consumer", "events", "p50 ms", "p99 ms", "max ms"], &lat_rows),
            bars("Events on the broker by region (the city's own under 410700)", &events_by_county, ""),
            lines("Outbox backlog (events not yet on the broker) over the run", &backlog.into_iter().collect::<Vec<_>>(), "s", "events"),
        ],
    );
    Ok(r)
}
