//! The hot queue in Redis. Per hall (keys share the `{hall}` hash tag): one sorted set per lane
//! (matter × service kind) scored by [`crate::domain::score`], a set of lanes with their metadata,
//! one direct lane per window (transfers to a named window), the call sequence, and a `ready`
//! marker. Call-next is one Lua script: it finds the best ticket over the lanes the window may
//! serve and removes it in the same atomic step, so no ticket ever goes to two windows.
//!
//! Redis is not the record: PostgreSQL is. When `ready` is missing (Redis restarted or was
//! flushed) the script answers `REBUILD` and the service reloads the hall's waiting tickets.

use redis::aio::ConnectionManager;
use redis::Script;
use uuid::Uuid;
use xiaoneng_kit::{AppError, AppResult};

use crate::domain::{self, Filter};

fn k(hall: Uuid, what: &str) -> String {
    format!("q:{{{hall}}}:{what}")
}

pub fn lane_name(matter: &str, kind: &str) -> String {
    format!("{matter}|{kind}")
}

/// A waiting ticket's place in the hot queue.
#[derive(Debug, Clone)]
pub struct Entry {
    pub ticket: Uuid,
    pub matter: String,
    pub kind: String,
    pub category: String,
    pub window_codes: Vec<String>,
    pub score: i64,
    /// Only this window may call it (a transfer to a named window).
    pub direct_window: Option<Uuid>,
}

const POP: &str = r#"
-- KEYS: lanes set, lane meta hash, ready marker, sequence, direct lane of the window, in-flight set
-- ARGV: lane key prefix, kind, priorities ("1234"), window code, category, now (ms),
--       matters ("*" = all, else "-" then the matter ids)
if redis.call('EXISTS', KEYS[3]) == 0 then return {'REBUILD'} end
local span = 10000000000000
local best, best_score, best_key = nil, nil, nil
local function consider(key, prios)
  if prios == '1234' then
    local r = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if r[1] then
      local s = tonumber(r[2])
      if best_score == nil or s < best_score then best, best_score, best_key = r[1], s, key end
    end
  else
    for p in string.gmatch(prios, '%d') do
      local lo = tonumber(p) * span
      local r = redis.call('ZRANGEBYSCORE', key, string.format('%d', lo), '(' .. string.format('%d', lo + span), 'WITHSCORES', 'LIMIT', 0, 1)
      if r[1] then
        local s = tonumber(r[2])
        if best_score == nil or s < best_score then best, best_score, best_key = r[1], s, key end
      end
    end
  end
end
consider(KEYS[5], '1234')
local all = ARGV[7] == '*'
local allowed = {}
for i = 8, #ARGV do allowed[ARGV[i]] = true end
local lanes = redis.call('SMEMBERS', KEYS[1])
for _, lane in ipairs(lanes) do
  local meta = redis.call('HGET', KEYS[2], lane)
  if meta then
    local matter, kind, cat, codes = string.match(meta, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
    local matter_ok = all or allowed[matter] or (ARGV[4] ~= '' and string.find(',' .. codes .. ',', ',' .. ARGV[4] .. ',', 1, true))
    if kind == ARGV[2] and (ARGV[5] == '' or cat == ARGV[5]) and matter_ok then
      consider(ARGV[1] .. lane, ARGV[3])
    end
  end
end
if best == nil then return {} end
redis.call('ZREM', best_key, best)
redis.call('ZADD', KEYS[6], ARGV[6], best)
local seq = redis.call('INCR', KEYS[4])
return {best, tostring(seq)}
"#;

const TAKE: &str = r#"
-- KEYS: ready marker, sequence, the lane, in-flight set; ARGV: ticket, now (ms)
if redis.call('EXISTS', KEYS[1]) == 0 then return {'REBUILD'} end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return {tostring(redis.call('INCR', KEYS[2]))}
"#;

const SNAPSHOT: &str = r#"
-- KEYS: ready marker, lanes set, in-flight set; ARGV: lane key prefix, direct lane keys ...
-- Answers (key, ticket, score) triples: every queued ticket, then the in-flight ones.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'REBUILD'} end
local out = {}
local function dump(key)
  local r = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 1, #r, 2 do
    out[#out + 1] = key
    out[#out + 1] = r[i]
    out[#out + 1] = r[i + 1]
  end
end
for _, lane in ipairs(redis.call('SMEMBERS', KEYS[2])) do dump(ARGV[1] .. lane) end
for i = 2, #ARGV do dump(ARGV[i]) end
dump(KEYS[3])
return out
"#;

const COUNTS: &str = r#"
-- KEYS: ready marker, lanes set, lane meta hash; ARGV: lane key prefix
if redis.call('EXISTS', KEYS[1]) == 0 then return {'REBUILD'} end
local out = {}
for _, lane in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local meta = redis.call('HGET', KEYS[3], lane)
  if meta then
    local cat = string.match(meta, '^[^|]*|[^|]*|([^|]*)|')
    out[#out + 1] = cat
    out[#out + 1] = tostring(redis.call('ZCARD', ARGV[1] .. lane))
  end
end
return out
"#;

pub struct Hot {
    redis: ConnectionManager,
    pop: Script,
    take: Script,
    counts: Script,
    snapshot: Script,
}

/// What the hot queue of a hall holds: the queued tickets with the key of their lane, and the
/// tickets taken by a call that has not settled yet (with the time they were taken, in ms).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub queued: Vec<(String, Uuid)>,
    pub in_flight: Vec<(Uuid, i64)>,
}

pub enum Popped {
    Ticket { id: Uuid, seq: i64 },
    Empty,
    Rebuild,
}

fn redis_err(e: redis::RedisError) -> AppError {
    AppError::Unavailable(format!("redis: {e}"))
}

impl Hot {
    pub fn new(redis: ConnectionManager) -> Self {
        Hot {
            redis,
            pop: Script::new(POP),
            take: Script::new(TAKE),
            counts: Script::new(COUNTS),
            snapshot: Script::new(SNAPSHOT),
        }
    }

    fn lane_key(hall: Uuid, e: &Entry) -> String {
        match e.direct_window {
            Some(w) => k(hall, &format!("direct:{w}")),
            None => k(hall, &format!("lane:{}", lane_name(&e.matter, &e.kind))),
        }
    }

    /// Puts tickets in the queue (idempotent: the same ticket keeps one place).
    pub async fn enqueue(&self, hall: Uuid, entries: &[Entry]) -> AppResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for e in entries {
            if e.direct_window.is_none() {
                let lane = lane_name(&e.matter, &e.kind);
                let meta = format!(
                    "{}|{}|{}|{}",
                    e.matter,
                    e.kind,
                    e.category,
                    e.window_codes.join(",")
                );
                pipe.sadd(k(hall, "lanes"), &lane).ignore();
                pipe.hset(k(hall, "meta"), &lane, meta).ignore();
            }
            pipe.zadd(Self::lane_key(hall, e), e.ticket.to_string(), e.score)
                .ignore();
        }
        let mut c = self.redis.clone();
        pipe.query_async::<()>(&mut c).await.map_err(redis_err)
    }

    /// Removes a ticket from wherever it waits (hold, transfer, an explicit call).
    pub async fn remove(&self, hall: Uuid, e: &Entry) -> AppResult<()> {
        let mut c = self.redis.clone();
        redis::cmd("ZREM")
            .arg(Self::lane_key(hall, e))
            .arg(e.ticket.to_string())
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_err)
    }

    /// Atomically takes the best ticket `window` may serve.
    /// The ticket is kept in the hall's in-flight set until [`Hot::settle`]: a process that
    /// dies before its call commits leaves it there for the reconciler to put back.
    pub async fn pop(
        &self,
        hall: Uuid,
        window: Uuid,
        f: &Filter,
        now_ms: i64,
    ) -> AppResult<Popped> {
        let prios: String = f.priorities.iter().map(|p| p.rank().to_string()).collect();
        let mut inv = self.pop.prepare_invoke();
        inv.key(k(hall, "lanes"))
            .key(k(hall, "meta"))
            .key(k(hall, "ready"))
            .key(k(hall, "seq"))
            .key(k(hall, &format!("direct:{window}")))
            .key(k(hall, "inflight"))
            .arg(k(hall, "lane:"))
            .arg(f.kind.name())
            .arg(prios)
            .arg(f.window_code.clone().unwrap_or_default())
            .arg(f.category.clone().unwrap_or_default())
            .arg(now_ms);
        match &f.matters {
            None => {
                inv.arg("*");
            }
            Some(m) => {
                inv.arg("-");
                for x in m {
                    inv.arg(x);
                }
            }
        }
        let mut c = self.redis.clone();
        let r: Vec<String> = inv.invoke_async(&mut c).await.map_err(redis_err)?;
        Ok(match r.as_slice() {
            [] => Popped::Empty,
            [flag] if flag == "REBUILD" => Popped::Rebuild,
            [id, seq] => Popped::Ticket {
                id: Uuid::parse_str(id)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("queue entry {id}: {e}")))?,
                seq: seq.parse().unwrap_or(0),
            },
            other => {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "unexpected call-next answer {other:?}"
                )))
            }
        })
    }

    /// Takes one named ticket out of its lane and gives it a call sequence number.
    pub async fn take(&self, hall: Uuid, e: &Entry, now_ms: i64) -> AppResult<Option<i64>> {
        let mut inv = self.take.prepare_invoke();
        inv.key(k(hall, "ready"))
            .key(k(hall, "seq"))
            .key(Self::lane_key(hall, e))
            .key(k(hall, "inflight"))
            .arg(e.ticket.to_string())
            .arg(now_ms);
        let mut c = self.redis.clone();
        let r: Vec<String> = inv.invoke_async(&mut c).await.map_err(redis_err)?;
        Ok(match r.as_slice() {
            [flag] if flag == "REBUILD" => None,
            [seq] => Some(seq.parse().unwrap_or(0)),
            _ => None,
        })
    }

    /// Reloads a hall's waiting tickets (the caller holds the hall's rebuild lock) and marks it ready.
    pub async fn rebuild(&self, hall: Uuid, entries: &[Entry], max_seq: i64) -> AppResult<()> {
        self.enqueue(hall, entries).await?;
        let mut c = self.redis.clone();
        // The sequence never goes back: keep whichever is higher.
        let current: Option<i64> = redis::cmd("GET")
            .arg(k(hall, "seq"))
            .query_async(&mut c)
            .await
            .map_err(redis_err)?;
        if current.unwrap_or(0) < max_seq {
            redis::cmd("SET")
                .arg(k(hall, "seq"))
                .arg(max_seq)
                .query_async::<()>(&mut c)
                .await
                .map_err(redis_err)?;
        }
        redis::cmd("SET")
            .arg(k(hall, "ready"))
            .arg(1)
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_err)
    }

    /// Waiting tickets per category from the hot queue (None: not loaded; ask PostgreSQL).
    /// Tickets transferred to a named window are not in a category's count.
    pub async fn counts(
        &self,
        hall: Uuid,
    ) -> AppResult<Option<std::collections::BTreeMap<String, i64>>> {
        let mut inv = self.counts.prepare_invoke();
        inv.key(k(hall, "ready"))
            .key(k(hall, "lanes"))
            .key(k(hall, "meta"))
            .arg(k(hall, "lane:"));
        let mut c = self.redis.clone();
        let r: Vec<String> = inv.invoke_async(&mut c).await.map_err(redis_err)?;
        if r.first().is_some_and(|f| f == "REBUILD") {
            return Ok(None);
        }
        let mut out = std::collections::BTreeMap::new();
        for pair in r.chunks(2) {
            if let [cat, n] = pair {
                *out.entry(cat.clone()).or_insert(0) += n.parse::<i64>().unwrap_or(0);
            }
        }
        Ok(Some(out))
    }

    /// A call that took `ticket` is over (committed, found stale, or put back).
    pub async fn settle(&self, hall: Uuid, ticket: Uuid) -> AppResult<()> {
        self.zrem(&k(hall, "inflight"), ticket).await
    }

    /// Removes one ticket from one key (a lane, a direct lane or the in-flight set).
    pub async fn zrem(&self, key: &str, ticket: Uuid) -> AppResult<()> {
        let mut c = self.redis.clone();
        redis::cmd("ZREM")
            .arg(key)
            .arg(ticket.to_string())
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_err)
    }

    /// Everything the hall's hot queue holds (None: not loaded, the next call rebuilds it).
    /// `windows` are the hall's windows, whose direct lanes are read too.
    pub async fn snapshot(&self, hall: Uuid, windows: &[Uuid]) -> AppResult<Option<Snapshot>> {
        let mut inv = self.snapshot.prepare_invoke();
        inv.key(k(hall, "ready"))
            .key(k(hall, "lanes"))
            .key(k(hall, "inflight"))
            .arg(k(hall, "lane:"));
        for w in windows {
            inv.arg(k(hall, &format!("direct:{w}")));
        }
        let mut c = self.redis.clone();
        let r: Vec<String> = inv.invoke_async(&mut c).await.map_err(redis_err)?;
        if r.first().is_some_and(|f| f == "REBUILD") {
            return Ok(None);
        }
        let inflight = k(hall, "inflight");
        let mut out = Snapshot::default();
        for t in r.chunks(3) {
            let [key, id, score] = t else { continue };
            let Ok(id) = Uuid::parse_str(id) else {
                continue;
            };
            if *key == inflight {
                out.in_flight
                    .push((id, score.parse::<f64>().unwrap_or(0.0) as i64));
            } else {
                out.queued.push((key.clone(), id));
            }
        }
        Ok(Some(out))
    }

    /// Forgets that the hall is loaded: the next call rebuilds it from PostgreSQL.
    pub async fn invalidate(&self, hall: Uuid) {
        let mut c = self.redis.clone();
        let _ = redis::cmd("DEL")
            .arg(k(hall, "ready"))
            .query_async::<()>(&mut c)
            .await;
    }

    /// Publishes a board update to every replica's watchers.
    pub async fn publish_board(&self, payload: Vec<u8>) -> AppResult<()> {
        let mut c = self.redis.clone();
        redis::cmd("PUBLISH")
            .arg(BOARD_CHANNEL)
            .arg(payload)
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_err)
    }
}

pub const BOARD_CHANNEL: &str = "xiaoneng:queue:board";

/// The lane a ticket waits in, from its stored fields.
pub fn entry(
    ticket: Uuid,
    matter: &str,
    kind: &str,
    category: &str,
    window_codes: &[String],
    priority: domain::Priority,
    arrival_ms: i64,
    direct_window: Option<Uuid>,
) -> Entry {
    Entry {
        ticket,
        matter: matter.to_string(),
        kind: kind.to_string(),
        category: category.to_string(),
        window_codes: window_codes.to_vec(),
        score: domain::score(priority, arrival_ms),
        direct_window,
    }
}
