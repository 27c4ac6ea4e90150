//! The other side of the day: ratings at the pads and their 差评 loops, complaints by every
//! channel (the hall's QR code, the 12345 hotline, the portal, Open311) and their handling,
//! the efficiency office's inspections, and at the end of the day the ranking and a bulletin.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::complaint::v1 as kpb;
use xiaoneng_e2e::proto::evaluation::v1 as epb;
use xiaoneng_e2e::{http_request, token};
use xiaoneng_kit::auth::roles;

use crate::day::{ComplaintRec, RatingRec, World};
use crate::rng::Rng;
use crate::stack::{at, CITY, OPEN311_KEY};

impl World {
    /// The citizen at the pad: most rate, the weak window's clerk draws more 差评; now and then
    /// a second press on the same invitation, which must be refused.
    pub async fn rate(&self, county: usize, ticket: &str, weak: bool, rng: &mut Rng) -> anyhow::Result<()> {
        if !rng.chance(0.85) {
            return Ok(());
        }
        let region = self.region(county).to_string();
        let pad = token(&format!("{region}-pad"), &[roles::SYSTEM], &region);
        let e = self.e(&pad);
        let mut inv = None;
        // The invitation comes from the ServiceFinished event, through the broker.
        for _ in 0..600 {
            let req = epb::ListInvitationsRequest { ticket_id: ticket.into(), ..Default::default() };
            let r = self
                .calls
                .call("evaluation.ListInvitations", || {
                    let (mut e, r) = (e.clone(), req.clone());
                    async move { e.list_invitations(r).await }
                })
                .await?;
            if let Some(i) = r.invitations.into_iter().next() {
                inv = Some(i);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let inv = inv.ok_or_else(|| anyhow::anyhow!("no invitation for ticket {ticket} after 2 minutes"))?;
        let weights = if weak { [0.18, 0.17, 0.15, 0.2, 0.3] } else { [0.01, 0.02, 0.07, 0.25, 0.65] };
        let level = rng.pick(&weights) as i32 + 1;
        let comment = match level {
            1 => "窗口人员态度生硬, 材料说了三遍才讲清",
            2 => "等候时间太长, 没人解释",
            _ => "",
        };
        let req = epb::SubmitRatingRequest {
            invitation_id: inv.id.clone(),
            level,
            comment: comment.into(),
            channel: epb::Channel::WindowDevice as i32,
            device: format!("pad-{}-{}", region, inv.window_code),
            ..Default::default()
        };
        let r = self
            .calls
            .call("evaluation.SubmitRating", || {
                let (mut e, r) = (e.clone(), req.clone());
                async move { e.submit_rating(r).await }
            })
            .await;
        let rating = match r {
            Ok(r) => r.rating.unwrap_or_default(),
            // Rated by a retried press that did land before its answer was lost.
            Err(s) if s.code() == tonic::Code::FailedPrecondition || s.code() == tonic::Code::AlreadyExists => {
                return Ok(());
            }
            Err(s) => return Err(anyhow::anyhow!("SubmitRating: {s}")),
        };
        self.progress.ratings.fetch_add(1, Ordering::Relaxed);
        self.ratings.lock().expect("ratings").push(RatingRec {
            county,
            invitation: inv.id.clone(),
            rating: rating.id.clone(),
            level,
        });
        if rng.chance(0.05) {
            let again = self.calls.call("evaluation.SubmitRating(again)", || {
                let (mut e, r) = (e.clone(), req.clone());
                async move { e.submit_rating(r).await }
            });
            let accepted = again.await.is_ok();
            let mut d = self.double_ratings.lock().expect("double");
            if accepted {
                d.1 += 1;
            } else {
                d.0 += 1;
            }
        }
        if level <= 2 && rng.chance(0.8) {
            self.work_loop(county, &rating.id, rng).await?;
        }
        Ok(())
    }

    /// The 差评 loop worked by the hall: callback, rectification, reply, the citizen's answer.
    async fn work_loop(&self, county: usize, rating: &str, rng: &mut Rng) -> anyhow::Result<()> {
        let region = self.region(county).to_string();
        let manager = token(&format!("{region}-manager"), &[roles::HALL_MANAGER], &region);
        let unit = self.e(&manager);
        let steps = [
            (epb::LoopStep::Callback, "已电话回访, 了解情况"),
            (epb::LoopStep::Rectify, "已约谈窗口人员, 完善一次性告知"),
            (epb::LoopStep::Reply, "已向群众答复整改措施"),
        ];
        for (step, text) in steps {
            self.clock.minutes(rng.range(20.0, 120.0)).await;
            let req = epb::AdvanceLoopRequest { rating_id: rating.into(), step: step as i32, text: text.into() };
            self.calls
                .call("evaluation.AdvanceLoop", || {
                    let (mut e, r) = (unit.clone(), req.clone());
                    async move { e.advance_loop(r).await }
                })
                .await?;
        }
        let pad = token(&format!("{region}-pad"), &[roles::SYSTEM], &region);
        let e = self.e(&pad);
        let req = epb::AdvanceLoopRequest {
            rating_id: rating.into(),
            step: epb::LoopStep::Confirm as i32,
            text: if rng.chance(0.8) { "satisfied" } else { "basically_satisfied" }.into(),
        };
        self.calls
            .call("evaluation.AdvanceLoop", || {
                let (mut e, r) = (e.clone(), req.clone());
                async move { e.advance_loop(r).await }
            })
            .await?;
        Ok(())
    }

    /// Complaints through the day, by channel, and the office carrying about half of them to a
    /// conclusion; one report of retaliation goes to discipline inspection.
    pub async fn complaints_arrive(self: &Arc<Self>) -> anyhow::Result<()> {
        let per_county = (self.citizens / 15).max(2);
        let mut tasks = tokio::task::JoinSet::new();
        for county in 0..self.counties.len() {
            for i in 0..per_county {
                let me = self.clone();
                let mut rng = self.rng.fork(90_000 + (county * 1_000 + i) as u64);
                tasks.spawn(async move { me.complain(county, i, &mut rng).await });
            }
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok(())
    }

    async fn complain(&self, county: usize, i: usize, rng: &mut Rng) -> anyhow::Result<()> {
        let region = self.region(county).to_string();
        let when = at(self.date, 9, 0) + chrono::Duration::minutes(rng.range(0.0, 450.0) as i64);
        self.clock.until(when).await;
        let categories = self.categories.lock().expect("categories").clone();
        let category = categories.get(rng.below(categories.len())).cloned().unwrap_or_else(|| "slow_action".into());
        let channel = ["qr_code", "hotline", "web", "open311"][rng.pick(&[0.3, 0.25, 0.2, 0.25])];
        let n = rng.below(2);
        let window = format!("ZH{:02}", 1 + n);
        let clerk = format!("{region}-{}", crate::day::NAMES[n]);
        let description = format!("{window}窗口办理拖沓, 来回跑了两趟 (模拟 {i})");
        let id = if channel == "open311" {
            let form = format!(
                "api_key={OPEN311_KEY}&jurisdiction_id={region}&service_code={category}&description={}&attribute%5Btarget_kind%5D=window&attribute%5Btarget_id%5D={window}",
                urlencode(&description)
            );
            let t = std::time::Instant::now();
            let (status, body) = http_request(&self.open311, "POST", "/open311/v2/requests.json", Some(&form)).await;
            self.calls.record("complaint.Open311.POST", t.elapsed(), status == 201 || status == 200);
            anyhow::ensure!(status == 201 || status == 200, "Open311 POST: {status} {body}");
            let json = body.find(['[', '{']).map_or("", |i| &body[i..]);
            let v: serde_json::Value = serde_json::from_str(json)?;
            v[0]["service_request_id"].as_str().unwrap_or_default().to_string()
        } else {
            let (who, role, ch) = match channel {
                "hotline" => ("12345-agent".to_string(), roles::SYSTEM, kpb::Channel::Hotline),
                "web" => (format!("{region}-c9{i:04}"), roles::CITIZEN, kpb::Channel::Web),
                _ => (format!("{region}-c8{i:04}"), roles::CITIZEN, kpb::Channel::QrCode),
            };
            let t = token(&who, &[role], if channel == "hotline" { CITY } else { &region });
            let k = self.k(&t);
            let complainant = (channel == "hotline").then(|| kpb::Complainant {
                name: "来电群众".into(),
                phone: format!("1390373{:04}", rng.below(10_000)),
                ..Default::default()
            });
            let req = kpb::FileComplaintRequest {
                region_code: region.clone(),
                kind: kpb::Kind::Complaint as i32,
                category: category.clone(),
                channel: ch as i32,
                target: Some(kpb::Target {
                    kind: kpb::TargetKind::Window as i32,
                    id: window.clone(),
                    department: String::new(),
                }),
                description,
                complainant,
                ..Default::default()
            };
            let r = self
                .calls
                .call("complaint.FileComplaint", || {
                    let (mut k, r) = (k.clone(), req.clone());
                    async move { k.file_complaint(r).await }
                })
                .await?;
            r.complaint.map(|c| c.id).unwrap_or_default()
        };
        anyhow::ensure!(!id.is_empty(), "a complaint without an id");
        self.progress.complaints.fetch_add(1, Ordering::Relaxed);
        self.complaints.lock().expect("complaints").push(ComplaintRec { county, id: id.clone(), channel, category });
        if rng.chance(0.5) {
            self.handle_complaint(county, &id, &clerk, rng).await?;
        }
        Ok(())
    }

    async fn handle_complaint(&self, county: usize, id: &str, clerk: &str, rng: &mut Rng) -> anyhow::Result<()> {
        let office = token("xiaoneng-office", &[roles::SUPERVISOR], CITY);
        let k = self.k(&office);
        let unit = format!("{}政务服务中心", self.counties[county].name);
        let substantiated = rng.chance(0.4);
        let base = kpb::AdvanceComplaintRequest { id: id.into(), ..Default::default() };
        let steps = [
            kpb::AdvanceComplaintRequest { step: kpb::Step::Assign as i32, unit: unit.clone(), ..base.clone() },
            kpb::AdvanceComplaintRequest { step: kpb::Step::Investigate as i32, ..base.clone() },
            kpb::AdvanceComplaintRequest {
                step: kpb::Step::Conclude as i32,
                finding: if substantiated { kpb::Finding::Substantiated } else { kpb::Finding::NotSubstantiated }
                    as i32,
                text: if substantiated { "调取录像属实" } else { "经核查不属实" }.into(),
                responsible_unit: if substantiated { unit.clone() } else { String::new() },
                responsible_person: if substantiated { clerk.to_string() } else { String::new() },
                ..base.clone()
            },
            kpb::AdvanceComplaintRequest {
                step: kpb::Step::Reply as i32, text: "已答复投诉人".into(), ..base.clone()
            },
            kpb::AdvanceComplaintRequest {
                step: kpb::Step::Callback as i32,
                satisfaction: "satisfied".into(),
                text: "电话回访, 群众满意".into(),
                ..base.clone()
            },
            kpb::AdvanceComplaintRequest { step: kpb::Step::Close as i32, ..base.clone() },
        ];
        for s in steps {
            self.clock.minutes(rng.range(15.0, 60.0)).await;
            let r = self
                .calls
                .call("complaint.AdvanceComplaint", || {
                    let (mut k, r) = (k.clone(), s.clone());
                    async move { k.advance_complaint(r).await }
                })
                .await;
            if let Err(st) = r {
                // A retried step that had landed meets the state machine: read and go on.
                if st.code() != tonic::Code::FailedPrecondition {
                    return Err(anyhow::anyhow!("AdvanceComplaint: {st}"));
                }
            }
        }
        Ok(())
    }

    /// The city efficiency office's 明查暗访: one covert visit per county at midday.
    pub async fn inspect(self: &Arc<Self>) -> anyhow::Result<()> {
        self.clock.until(at(self.date, 11, 30)).await;
        let office = token("xiaoneng-office", &[roles::SUPERVISOR], CITY);
        let a = self.acc(&office);
        for (i, c) in self.counties.iter().enumerate() {
            let level = if i % 3 == 0 { "warning" } else { "reminder" };
            let req = apb::RecordInspectionRequest {
                region_code: c.code.clone(),
                kind: "covert_visit".into(),
                place: format!("{}政务服务中心", c.name),
                on_date: self.date.to_string(),
                findings: vec![apb::InspectionFinding {
                    unit: format!("{}政务服务中心", c.name),
                    person: String::new(),
                    level: level.into(),
                    title: "暗访: 导办台无人值守".into(),
                }],
                photos: vec![],
            };
            self.calls
                .call("accountability.RecordInspection", || {
                    let (mut a, r) = (a.clone(), req.clone());
                    async move { a.record_inspection(r).await }
                })
                .await?;
        }
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
