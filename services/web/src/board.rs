//! One `WatchBoard` stream per hall inside the web process, fanned out to every browser of
//! that hall: the hall's board state (what the screen shows) and a broadcast of each change.
//! The watcher reconnects by itself (the queue restarted, the network dropped) and the state
//! says meanwhile that it is reconnecting; the queue's snapshot on each connection replaces
//! the state, so nothing a browser shows is older than the last connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use xiaoneng_proto::queue::v1 as qpb;
use xiaoneng_proto::queue::v1::queue_service_client::QueueServiceClient;
use xiaoneng_proto::queue::v1::watch_board_response::Kind;

/// One call on the board.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Call {
    pub number: String,
    pub window: String,
    /// HH:MM in China Standard Time.
    pub time: String,
}

/// What a hall's screen shows.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BoardState {
    pub hall: String,
    /// The watcher holds a live stream from the queue service.
    pub connected: bool,
    pub waiting: BTreeMap<String, i32>,
    pub wait_minutes: BTreeMap<String, i32>,
    /// Newest first, at most [`RECENT`].
    pub recent: Vec<Call>,
    /// 过号: called and not come.
    pub missed: Vec<String>,
    /// Grows with every change: a browser announces a call once.
    pub seq: u64,
}

/// One message to the browsers: the state after a change, and what the change was.
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    /// `state`, `called`, `recalled`, `no_show`, `counts`, `offline`.
    pub kind: &'static str,
    pub announcement: String,
    pub state: BoardState,
}

pub const RECENT: usize = 10;

fn hhmm(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| {
            t.with_timezone(&xiaoneng_kit::clock::cst())
                .format("%H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

impl BoardState {
    /// Applies one message of the stream; what kind of change it was.
    pub fn apply(&mut self, u: &qpb::WatchBoardResponse) -> &'static str {
        self.seq += 1;
        self.connected = true;
        if !u.waiting.is_empty() || u.kind == Kind::Snapshot as i32 || u.kind == Kind::Counts as i32
        {
            self.waiting = u.waiting.iter().map(|(k, v)| (k.clone(), *v)).collect();
        }
        if !u.estimated_wait_minutes.is_empty() {
            self.wait_minutes = u
                .estimated_wait_minutes
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
        }
        match Kind::try_from(u.kind).unwrap_or(Kind::Unspecified) {
            Kind::Snapshot => {
                self.recent = u
                    .recent
                    .iter()
                    .map(|c| Call {
                        number: c.number.clone(),
                        window: c.window_code.clone(),
                        time: hhmm(c.time.as_ref()),
                    })
                    .collect();
                self.missed = u.missed.clone();
                "state"
            }
            k @ (Kind::Called | Kind::Recalled) => {
                self.recent.retain(|c| c.number != u.number);
                self.recent.insert(
                    0,
                    Call {
                        number: u.number.clone(),
                        window: u.window_code.clone(),
                        time: hhmm(u.time.as_ref()),
                    },
                );
                self.recent.truncate(RECENT);
                self.missed.retain(|m| *m != u.number);
                if k == Kind::Called {
                    "called"
                } else {
                    "recalled"
                }
            }
            Kind::NoShow => {
                self.recent.retain(|c| c.number != u.number);
                if !self.missed.contains(&u.number) {
                    self.missed.push(u.number.clone());
                    self.missed.sort();
                }
                "no_show"
            }
            _ => "counts",
        }
    }
}

/// A hall's state and the channel of its changes.
pub struct Hub {
    pub state: Mutex<BoardState>,
    pub tx: broadcast::Sender<Update>,
}

/// Every hall a browser watches in this process, each with one watcher.
#[derive(Clone, Default)]
pub struct Boards {
    halls: Arc<Mutex<HashMap<String, Arc<Hub>>>>,
}

impl Boards {
    /// The hub of `hall`, its watcher started on first use.
    pub fn hub(&self, hall: &str, app: &crate::App) -> Arc<Hub> {
        let mut halls = self.halls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = halls.get(hall) {
            return h.clone();
        }
        let (tx, _) = broadcast::channel(256);
        let hub = Arc::new(Hub {
            state: Mutex::new(BoardState {
                hall: hall.to_string(),
                ..Default::default()
            }),
            tx,
        });
        halls.insert(hall.to_string(), hub.clone());
        tokio::spawn(watch(hall.to_string(), hub.clone(), app.clone()));
        hub
    }
}

/// How often a live board reads its hall's estimated waits again.
pub const ESTIMATES_EVERY: Duration = Duration::from_secs(30);

/// The hall's estimated wait per category now (`EstimateWait`); None when the queue does not
/// answer (the board keeps what it has).
async fn estimated_waits(app: &crate::App, hall: &str) -> Option<BTreeMap<String, i32>> {
    let mut client = QueueServiceClient::new(app.queue.clone());
    let req = qpb::EstimateWaitRequest {
        hall_id: hall.to_string(),
    };
    let r = client.estimate_wait(app.request(req, "")).await.ok()?;
    Some(
        r.into_inner()
            .categories
            .into_iter()
            .map(|c| (c.category, c.estimated_wait_minutes))
            .collect(),
    )
}

/// Holds the hall's `WatchBoard` stream, forever: on an end or an error the state goes
/// offline (told to every browser) and the stream is opened again, 0.5 s to 5 s apart.
async fn watch(hall: String, hub: Arc<Hub>, app: crate::App) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let token = app.system_token("screen");
        let mut req = app.request(
            qpb::WatchBoardRequest {
                hall_id: hall.clone(),
            },
            &token,
        );
        // A stream lives long: no deadline on it.
        req.metadata_mut().remove("grpc-timeout");
        let mut client = QueueServiceClient::new(app.queue.clone());
        match client.watch_board(req).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                // The estimated waits come with the snapshot; while the stream lives they are
                // read again every so often (a wait changes as windows serve, not only on a call).
                let mut estimates = tokio::time::interval(ESTIMATES_EVERY);
                estimates.tick().await;
                loop {
                    let u = tokio::select! {
                        m = stream.message() => m,
                        _ = estimates.tick() => {
                            if let Some(minutes) = estimated_waits(&app, &hall).await {
                                let update = {
                                    let mut s = hub.state.lock().unwrap_or_else(|e| e.into_inner());
                                    if s.wait_minutes == minutes {
                                        continue;
                                    }
                                    s.wait_minutes = minutes;
                                    s.seq += 1;
                                    Update { kind: "counts", announcement: String::new(), state: s.clone() }
                                };
                                let _ = hub.tx.send(update);
                            }
                            continue;
                        }
                    };
                    match u {
                        Ok(Some(u)) => {
                            backoff = Duration::from_millis(500);
                            let update = {
                                let mut s = hub.state.lock().unwrap_or_else(|e| e.into_inner());
                                let kind = s.apply(&u);
                                Update {
                                    kind,
                                    announcement: u.announcement.clone(),
                                    state: s.clone(),
                                }
                            };
                            let _ = hub.tx.send(update);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(hall = %hall, error = %e, "board stream lost");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(hall = %hall, error = %e, "board stream not opened"),
        }
        let update = {
            let mut s = hub.state.lock().unwrap_or_else(|e| e.into_inner());
            s.connected = false;
            s.seq += 1;
            Update {
                kind: "offline",
                announcement: String::new(),
                state: s.clone(),
            }
        };
        let _ = hub.tx.send(update);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(kind: Kind, number: &str, window: &str) -> qpb::WatchBoardResponse {
        qpb::WatchBoardResponse {
            kind: kind as i32,
            number: number.into(),
            window_code: window.into(),
            announcement: format!("请 {number} 号到 {window} 窗口办理"),
            waiting: [("A".to_string(), 3)].into_iter().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn calls_recalls_and_no_shows_move_the_board() {
        let mut s = BoardState::default();
        let snap = qpb::WatchBoardResponse {
            kind: Kind::Snapshot as i32,
            missed: vec!["A002".into()],
            recent: vec![qpb::BoardCall {
                number: "A001".into(),
                window_code: "ZH01".into(),
                time: None,
            }],
            ..Default::default()
        };
        assert_eq!(s.apply(&snap), "state");
        assert_eq!(s.apply(&call(Kind::Called, "A003", "ZH02")), "called");
        assert_eq!(
            s.recent
                .iter()
                .map(|c| c.number.as_str())
                .collect::<Vec<_>>(),
            ["A003", "A001"]
        );
        assert_eq!(s.apply(&call(Kind::Recalled, "A001", "ZH01")), "recalled");
        assert_eq!(
            s.recent[0].number, "A001",
            "a recall moves to the top, once"
        );
        assert_eq!(s.recent.len(), 2);
        assert_eq!(s.apply(&call(Kind::NoShow, "A003", "ZH02")), "no_show");
        assert_eq!(s.missed, ["A002", "A003"]);
        assert_eq!(s.apply(&call(Kind::Called, "A002", "ZH03")), "called");
        assert_eq!(
            s.missed,
            ["A003"],
            "a missed number called again leaves 过号"
        );
        assert_eq!(s.waiting.get("A"), Some(&3));
        assert_eq!(
            s.seq, 5,
            "five messages: the snapshot, two calls, a recall, a no-show"
        );
        for i in 0..20 {
            s.apply(&call(Kind::Called, &format!("B{i:03}"), "ZH01"));
        }
        assert_eq!(s.recent.len(), RECENT);
    }
}
