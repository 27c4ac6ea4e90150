//! What the simulation watches while it runs: every call's latency, a department's consumer
//! of all six topics (what a department system integrating over Kafka sees), the outbox
//! backlog of each service, and a progress line.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tonic::{Code, Status};

/// Latencies of each kind of call, in microseconds, and their errors and retries.
#[derive(Default)]
pub struct Calls {
    inner: Mutex<BTreeMap<&'static str, CallFigures>>,
    pub total: AtomicU64,
}

#[derive(Default, Clone)]
pub struct CallFigures {
    pub micros: Vec<u64>,
    pub errors: u64,
    pub retries: u64,
}

impl CallFigures {
    pub fn pct(&self, p: f64) -> f64 {
        let mut v = self.micros.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
    }
}

fn retryable(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded)
        || (s.code() == Code::Internal && s.message().contains("connection"))
}

impl Calls {
    /// Runs a call, timing it; a call that met a stopped service or broker is tried again for
    /// up to two minutes (a service restarting under `--chaos`), as a device would.
    pub async fn call<T, F, Fut>(&self, name: &'static str, mut f: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let t = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(20), f()).await;
            let r = r.unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in 20 s")));
            let us = t.elapsed().as_micros() as u64;
            let retry = match &r {
                Err(s) => retryable(s) && Instant::now() < deadline,
                Ok(_) => false,
            };
            {
                let mut m = self.inner.lock().expect("calls");
                let e = m.entry(name).or_default();
                if retry {
                    e.retries += 1;
                } else {
                    e.micros.push(us);
                    if r.is_err() {
                        e.errors += 1;
                    }
                    self.total.fetch_add(1, Ordering::Relaxed);
                }
            }
            if retry {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            return r.map(tonic::Response::into_inner);
        }
    }

    /// A call timed elsewhere (an HTTP request).
    pub fn record(&self, name: &'static str, took: Duration, ok: bool) {
        let mut m = self.inner.lock().expect("calls");
        let e = m.entry(name).or_default();
        e.micros.push(took.as_micros() as u64);
        if !ok {
            e.errors += 1;
        }
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn figures(&self) -> BTreeMap<&'static str, CallFigures> {
        self.inner.lock().expect("calls").clone()
    }
}

/// One event as the department's consumer received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub event_type: String,
    pub region: String,
    pub payload: Vec<u8>,
}

/// The department's consumer: every event of the six topics, by event id, and how many
/// deliveries there were (a redelivery is allowed; a consumer applies it once).
#[derive(Default)]
pub struct Department {
    pub events: Mutex<HashMap<String, Seen>>,
    pub deliveries: AtomicU64,
    /// The same event id delivered with another payload: never allowed.
    pub conflicts: AtomicU64,
}

impl Department {
    pub fn distinct(&self) -> usize {
        self.events.lock().expect("events").len()
    }

    pub fn of_type(&self, ty: &str) -> Vec<Seen> {
        let t = format!("xiaoneng.{ty}");
        self.events.lock().expect("events").values().filter(|s| s.event_type == t).cloned().collect()
    }

    /// Consumes the six topics from the beginning until `stop`.
    pub fn spawn(self: &Arc<Self>, brokers: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let me = self.clone();
        std::thread::spawn(move || {
            use rdkafka::consumer::{BaseConsumer, Consumer};
            use rdkafka::message::Headers;
            use rdkafka::Message;
            let c: BaseConsumer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", format!("sim-department-{}", uuid::Uuid::new_v4()))
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "true")
                .set("log_level", "0")
                .create()
                .expect("consumer");
            let topics: Vec<String> = ["catalog", "queue", "case", "evaluation", "complaint", "accountability"]
                .iter()
                .map(|s| format!("xiaoneng.{s}.events"))
                .collect();
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            c.subscribe(&names).expect("subscribe");
            while !stop.load(Ordering::Relaxed) {
                let Some(Ok(m)) = c.poll(Duration::from_millis(200)) else { continue };
                let mut h: HashMap<String, String> = HashMap::new();
                if let Some(hs) = m.headers() {
                    for x in hs.iter() {
                        h.insert(x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned());
                    }
                }
                let Some(id) = h.get("ce_id").cloned() else { continue };
                me.deliveries.fetch_add(1, Ordering::Relaxed);
                let seen = Seen {
                    event_type: h.get("ce_type").cloned().unwrap_or_default(),
                    region: h.get("ce_regioncode").cloned().unwrap_or_default(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                };
                let mut ev = me.events.lock().expect("events");
                match ev.get(&id) {
                    Some(old) if old.payload != seen.payload => {
                        me.conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                    None => {
                        ev.insert(id, seen);
                    }
                }
            }
        })
    }
}

/// Counters the actors bump, for the progress line and the report.
#[derive(Default)]
pub struct Progress {
    pub tickets: AtomicU64,
    pub served: AtomicU64,
    pub cases: AtomicU64,
    pub ratings: AtomicU64,
    pub complaints: AtomicU64,
    pub faults: AtomicU64,
}

/// One sample of the system's own state, taken every real second.
#[derive(Debug, Clone)]
pub struct Sample {
    pub biz: DateTime<Utc>,
    pub backlog: BTreeMap<String, i64>,
    pub events: usize,
    pub calls: u64,
}

/// Every real second: the outbox backlog of each service, and a progress line on stderr.
pub async fn sample_loop(
    pools: Vec<(String, sqlx::PgPool)>,
    clock: crate::stack::SimClock,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    progress: Arc<Progress>,
    dept: Arc<Department>,
    calls: Arc<Calls>,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
) {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    let mut last_line = Instant::now() - Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) {
        let mut backlog = BTreeMap::new();
        for (name, pool) in &pools {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(pool)
                .await
                .unwrap_or(-1);
            backlog.insert(name.clone(), n);
        }
        let biz = clock.now();
        let s = Sample { biz, backlog, events: dept.distinct(), calls: calls.total.load(Ordering::Relaxed) };
        let share = ((biz - from).num_seconds() as f64 / (to - from).num_seconds().max(1) as f64).clamp(0.0, 1.0);
        let bar: String = (0..24).map(|i| if (i as f64) < share * 24.0 { '█' } else { '░' }).collect();
        let p = &progress;
        let line = format!(
            "[{} {bar} {:>3.0}%] tickets {} · served {} · cases {} · ratings {} · complaints {} · calls {} · events {} · outbox {}{}",
            biz.with_timezone(&xiaoneng_kit::clock::cst()).format("%m-%d %H:%M"),
            share * 100.0,
            p.tickets.load(Ordering::Relaxed),
            p.served.load(Ordering::Relaxed),
            p.cases.load(Ordering::Relaxed),
            p.ratings.load(Ordering::Relaxed),
            p.complaints.load(Ordering::Relaxed),
            s.calls,
            s.events,
            s.backlog.values().filter(|v| **v > 0).sum::<i64>(),
            match p.faults.load(Ordering::Relaxed) {
                0 => String::new(),
                n => format!(" · faults {n}"),
            }
        );
        if tty {
            eprint!("\r{line}\x1b[K");
            let _ = std::io::stderr().flush();
        } else if last_line.elapsed() >= Duration::from_secs(15) {
            eprintln!("{line}");
            last_line = Instant::now();
        }
        samples.lock().expect("samples").push(s);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if tty {
        eprintln!();
    }
}
