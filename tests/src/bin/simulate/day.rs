//! The day itself: each county's hall opens its windows, citizens arrive along the day's curve
//! (walk-ins and appointments), windows call and serve, cases are submitted at the window and
//! carried through their lifecycle, the pads rate, 差评 loops are worked, complaints arrive by
//! every channel, and the efficiency office inspects. Every actor is seeded.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use tonic::transport::Channel;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::catalog::v1 as catpb;
use xiaoneng_e2e::proto::complaint::v1 as kpb;
use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::{token, token_in, Intercepted};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::telemetry::ClientInterceptor;

use crate::rng::Rng;
use crate::stack::{at, County, SimClock, CITY};
use crate::watch::{Calls, Progress};

type Q = xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient<Intercepted>;
type C = xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient<Intercepted>;
type E = xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient<Intercepted>;
type K = xiaoneng_e2e::proto::complaint::v1::complaint_service_client::ComplaintServiceClient<Intercepted>;
type Cat = xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient<Intercepted>;
pub type Acc =
    xiaoneng_e2e::proto::accountability::v1::accountability_service_client::AccountabilityServiceClient<Intercepted>;

#[derive(Debug, Clone)]
pub struct Matter {
    pub id: String,
    pub name: String,
    pub department: String,
    pub promised: u32,
    pub statutory: u32,
    pub key: Vec<String>,
    pub other: Vec<String>,
    pub company: bool,
    /// The matter's review step (a step with a limit of its own), if it has one.
    pub review_step: String,
}

#[derive(Debug, Clone)]
pub struct Window {
    pub code: String,
    pub id: String,
    pub staff: String,
    /// Staff whose service draws more 差评 (the day's weak spot, for the supervision rules).
    pub weak: bool,
}

#[derive(Debug, Clone)]
pub struct Hall {
    pub county: usize,
    pub id: String,
    pub windows: Vec<Window>,
    /// The day's appointment slots for business registration: (id, start hour).
    pub slots: Vec<(String, u32)>,
}

#[derive(Debug, Clone)]
pub struct TicketRec {
    pub county: usize,
    pub id: String,
    pub appointment: bool,
}

#[derive(Debug, Clone)]
pub struct CaseRec {
    pub county: usize,
    pub id: String,
    pub matter: usize,
    pub scenario: &'static str,
}

#[derive(Debug, Clone)]
pub struct RatingRec {
    pub county: usize,
    pub invitation: String,
    pub rating: String,
    pub level: i32,
}

#[derive(Debug, Clone)]
pub struct ComplaintRec {
    pub county: usize,
    pub id: String,
    pub channel: &'static str,
    pub category: String,
}

#[derive(Clone)]
pub struct Channels {
    pub catalog: Channel,
    pub queue: Channel,
    pub case: Channel,
    pub evaluation: Channel,
    pub complaint: Channel,
    pub accountability: Channel,
}

fn with(ch: &Channel, token: &str) -> Intercepted {
    tonic::service::interceptor::InterceptedService::new(ch.clone(), ClientInterceptor::new(Some(token)))
}

pub struct World {
    pub clock: SimClock,
    pub date: NaiveDate,
    pub counties: Vec<County>,
    pub matters: Vec<Vec<Matter>>,
    pub halls: Mutex<Vec<Hall>>,
    pub calls: Arc<Calls>,
    pub progress: Arc<Progress>,
    pub tickets: Mutex<Vec<TicketRec>>,
    pub cases: Mutex<Vec<CaseRec>>,
    pub ratings: Mutex<Vec<RatingRec>>,
    /// A second press on a rated invitation: (refused, accepted). Accepted must stay 0.
    pub double_ratings: Mutex<(u32, u32)>,
    pub complaints: Mutex<Vec<ComplaintRec>>,
    pub categories: Mutex<Vec<String>>,
    pub case_errors: Mutex<Vec<String>>,
    pub ch: Channels,
    pub open311: String,
    pub rng: Rng,
    /// Citizens per hall in the day.
    pub citizens: usize,
}

pub const NAMES: [&str; 20] = [
    "王芳", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴倩", "徐鹏", "孙丽", "马超", "朱红",
    "胡军", "郭婷", "何平", "高翔", "林琳", "罗斌",
];

impl World {
    pub fn q(&self, t: &str) -> Q {
        Q::new(with(&self.ch.queue, t))
    }
    pub fn c(&self, t: &str) -> C {
        C::new(with(&self.ch.case, t))
    }
    pub fn e(&self, t: &str) -> E {
        E::new(with(&self.ch.evaluation, t))
    }
    pub fn k(&self, t: &str) -> K {
        K::new(with(&self.ch.complaint, t))
    }
    pub fn acc(&self, t: &str) -> Acc {
        Acc::new(with(&self.ch.accountability, t))
    }
    pub fn region(&self, county: usize) -> &str {
        &self.counties[county].code
    }

    fn manager(&self, county: usize) -> String {
        token(&format!("{}-manager", self.region(county)), &[roles::HALL_MANAGER], self.region(county))
    }

    fn clerk(&self, county: usize, staff: &str) -> String {
        token_in(staff, &[roles::CLERK], self.region(county), "综合窗口")
    }

    pub fn open_at(&self) -> DateTime<Utc> {
        at(self.date, 8, 30)
    }
    pub fn last_arrival(&self) -> DateTime<Utc> {
        at(self.date, 17, 0)
    }
    pub fn close_at(&self) -> DateTime<Utc> {
        at(self.date, 17, 30)
    }

    /// Reads each county's matters from the catalog (its published guides).
    pub async fn load_matters(
        counties: &[County],
        catalog: &Channel,
        calls: &Calls,
    ) -> anyhow::Result<Vec<Vec<Matter>>> {
        let c = Cat::new(tonic::service::interceptor::InterceptedService::new(
            catalog.clone(),
            ClientInterceptor::new(None),
        ));
        let mut all = Vec::new();
        for county in counties {
            let req =
                catpb::ListMattersRequest { region_code: county.code.clone(), page_size: 200, ..Default::default() };
            let r = calls
                .call("catalog.ListMatters", || {
                    let (mut c, r) = (c.clone(), req.clone());
                    async move { c.list_matters(r).await }
                })
                .await?;
            let ms: Vec<Matter> = r
                .matters
                .into_iter()
                .filter_map(|m| {
                    let t = m.terms?;
                    (t.promised_limit_days > 0).then(|| Matter {
                        id: m.matter_id,
                        company: t.name.contains("营业执照") || t.name.contains("企业"),
                        review_step: t
                            .steps
                            .iter()
                            .find(|s| s.limit_days > 0 && s.name.contains('审'))
                            .or_else(|| t.steps.iter().find(|s| s.limit_days > 0))
                            .map(|s| s.name.clone())
                            .unwrap_or_default(),
                        name: t.name,
                        department: m.department_name,
                        promised: t.promised_limit_days as u32,
                        statutory: t.statutory_limit_days.max(0) as u32,
                        key: t.materials.iter().filter(|x| x.key).map(|x| x.name.clone()).collect(),
                        other: t.materials.iter().filter(|x| x.required && !x.key).map(|x| x.name.clone()).collect(),
                    })
                })
                .collect();
            anyhow::ensure!(!ms.is_empty(), "no matters with a promised limit in {}", county.name);
            all.push(ms);
        }
        Ok(all)
    }

    /// Each county's hall: categories, windows (one a tidal reserve), the staff roster, the
    /// tidal policy and the day's appointment slots for business registration.
    pub async fn open_halls(self: &Arc<Self>) -> anyhow::Result<()> {
        let windows_per_hall = (self.citizens / 45).clamp(2, 40);
        for county in 0..self.counties.len() {
            let region = self.region(county).to_string();
            let mut m = self.q(&self.manager(county));
            let company: Vec<String> =
                self.matters[county].iter().filter(|x| x.company).map(|x| x.id.clone()).collect();
            let mut categories = vec![qpb::Category { code: "A".into(), name: "综合".into(), matter_ids: vec![] }];
            if !company.is_empty() {
                categories.push(qpb::Category {
                    code: "B".into(),
                    name: "企业开办".into(),
                    matter_ids: company.clone(),
                });
            }
            let req = qpb::CreateHallRequest {
                region_code: region.clone(),
                name: format!("{}政务服务中心", self.counties[county].name),
                categories,
                weekend_service: false,
            };
            let hall = self
                .calls
                .call("queue.CreateHall", || {
                    let (mut m, r) = (m.clone(), req.clone());
                    async move { m.create_hall(r).await }
                })
                .await?
                .hall
                .unwrap_or_default();
            let mut windows = Vec::new();
            let mut specs: Vec<(String, qpb::WindowKind, Vec<String>, bool)> = (1..=windows_per_hall)
                .map(|i| (format!("ZH{i:02}"), qpb::WindowKind::Comprehensive, vec![], false))
                .collect();
            if !company.is_empty() {
                specs.push(("QY01".into(), qpb::WindowKind::Department, company.clone(), false));
            }
            specs.push(("CX01".into(), qpb::WindowKind::Comprehensive, vec![], true));
            for (i, (code, kind, matter_ids, tidal)) in specs.into_iter().enumerate() {
                let w = qpb::Window {
                    hall_id: hall.id.clone(),
                    code: code.clone(),
                    kind: kind as i32,
                    matter_ids,
                    tidal,
                    ..Default::default()
                };
                let w = m
                    .upsert_window(qpb::UpsertWindowRequest { window: Some(w) })
                    .await?
                    .into_inner()
                    .window
                    .unwrap_or_default();
                let staff = format!("{region}-{}", NAMES[i % NAMES.len()]);
                if !tidal {
                    let req = qpb::SetWindowStateRequest {
                        window_id: w.id.clone(),
                        state: qpb::WindowState::Open as i32,
                        staff_id: staff.clone(),
                    };
                    m.set_window_state(req).await?;
                }
                // The second comprehensive window's clerk is the day's weak spot.
                windows.push(Window { code, id: w.id, staff, weak: i == 1 });
            }
            let standby = format!("{region}-{}", NAMES[(windows.len() + 1) % NAMES.len()]);
            let roster = windows
                .iter()
                .map(|w| w.staff.clone())
                .chain([standby])
                .map(|s| qpb::StaffOnDuty { staff_id: s.clone(), name: s, categories: vec![] })
                .collect();
            m.set_staff_roster(qpb::SetStaffRosterRequest { hall_id: hall.id.clone(), staff: roster }).await?;
            let policy =
                qpb::TidalPolicy { category: "A".into(), open_waiting: 6, open_wait_minutes: 0, close_waiting: 1 };
            m.set_tidal_policy(qpb::SetTidalPolicyRequest { hall_id: hall.id.clone(), policy: Some(policy) }).await?;
            let mut slots = Vec::new();
            if let Some(first) = company.first() {
                let req = qpb::CreateSlotsRequest {
                    hall_id: hall.id.clone(),
                    matter_id: first.clone(),
                    date: self.date.to_string(),
                    start_time: "09:00".into(),
                    end_time: "16:00".into(),
                    minutes: 60,
                    capacity: self.citizens as i32,
                };
                for s in m.create_slots(req).await?.into_inner().slots {
                    let hour = s.start_time.get(..2).and_then(|h| h.parse().ok()).unwrap_or(0);
                    slots.push((s.id, hour));
                }
            }
            self.halls.lock().expect("halls").push(Hall { county, id: hall.id, windows, slots });
        }
        let cats = self
            .k(&token("sim", &[roles::SUPERVISOR], CITY))
            .list_categories(kpb::ListCategoriesRequest { region_code: CITY.into() })
            .await?
            .into_inner()
            .categories;
        *self.categories.lock().expect("categories") =
            cats.into_iter().filter(|c| !c.misconduct).map(|c| c.code).collect();
        Ok(())
    }

    /// Arrival times along the day's curve: a morning peak near 9:45 and an afternoon one near
    /// 15:00, none before opening or after the last arrival.
    fn arrivals(&self, rng: &mut Rng, n: usize) -> Vec<DateTime<Utc>> {
        let (open, last) = (self.open_at(), self.last_arrival());
        let mut v: Vec<DateTime<Utc>> = (0..n)
            .map(|_| {
                let centre = if rng.chance(0.55) { at(self.date, 9, 45) } else { at(self.date, 15, 0) };
                let minutes = rng.normal() * 70.0;
                (centre + chrono::Duration::seconds((minutes * 60.0) as i64)).clamp(open, last)
            })
            .collect();
        v.sort();
        v
    }

    /// Books appointments and then lets every citizen of every hall arrive at their moment.
    pub async fn citizens_arrive(self: &Arc<Self>) -> anyhow::Result<()> {
        let halls = self.halls.lock().expect("halls").clone();
        let mut tasks = tokio::task::JoinSet::new();
        for hall in halls {
            let mut rng = self.rng.fork(1_000 + hall.county as u64);
            for (i, when) in self.arrivals(&mut rng, self.citizens).into_iter().enumerate() {
                let me = self.clone();
                let hall = hall.clone();
                let mut r = rng.fork(i as u64);
                tasks.spawn(async move { me.arrive(&hall, i, when, &mut r).await });
            }
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok(())
    }

    async fn arrive(&self, hall: &Hall, i: usize, when: DateTime<Utc>, rng: &mut Rng) -> anyhow::Result<()> {
        let county = hall.county;
        let region = self.region(county).to_string();
        let citizen = format!("{region}-c{i:05}");
        let matters = &self.matters[county];
        let company: Vec<usize> = (0..matters.len()).filter(|m| matters[*m].company).collect();
        use chrono::Timelike;
        let hour = when.with_timezone(&xiaoneng_kit::clock::cst()).hour();
        let slot = hall.slots.iter().find(|(_, h)| *h == hour).map(|(id, _)| id.clone());
        let booked = slot.is_some() && rng.chance(0.25);
        let mut appointment = None;
        if booked {
            let t = token(&citizen, &[roles::CITIZEN], &region);
            let q = self.q(&t);
            let req = qpb::BookAppointmentRequest {
                slot_id: slot.clone().unwrap_or_default(),
                citizen_id: citizen.clone(),
                citizen_name: NAMES[rng.below(NAMES.len())].into(),
            };
            let a = self
                .calls
                .call("queue.BookAppointment", || {
                    let (mut q, r) = (q.clone(), req.clone());
                    async move { q.book_appointment(r).await }
                })
                .await;
            appointment = a.ok().and_then(|a| a.appointment).map(|a| (a.id, t));
        }
        self.clock.until(when).await;
        let ticket = if let Some((id, t)) = appointment {
            let q = self.q(&t);
            let req = qpb::CheckInRequest { appointment_id: id };
            self.calls
                .call("queue.CheckIn", || {
                    let (mut q, r) = (q.clone(), req.clone());
                    async move { q.check_in(r).await }
                })
                .await?
                .ticket
        } else {
            let kiosk = token(&format!("{region}-kiosk"), &[roles::SYSTEM], &region);
            let q = self.q(&kiosk);
            let m = if !company.is_empty() && rng.chance(0.2) {
                company[rng.below(company.len())]
            } else {
                rng.below(matters.len())
            };
            let priority = if rng.chance(0.05) { qpb::Priority::Elderly } else { qpb::Priority::Normal };
            let req = qpb::IssueTicketRequest {
                hall_id: hall.id.clone(),
                matter_id: matters[m].id.clone(),
                priority: priority as i32,
                citizen_id: citizen.clone(),
                request_id: format!("sim-{region}-{i}"),
                ..Default::default()
            };
            self.calls
                .call("queue.IssueTicket", || {
                    let (mut q, r) = (q.clone(), req.clone());
                    async move { q.issue_ticket(r).await }
                })
                .await?
                .ticket
        };
        let t = ticket.ok_or_else(|| anyhow::anyhow!("no ticket for {citizen}"))?;
        self.progress.tickets.fetch_add(1, Ordering::Relaxed);
        self.tickets.lock().expect("tickets").push(TicketRec { county, id: t.id, appointment: booked });
        Ok(())
    }

    /// Every window of every hall calls, serves and finishes until the hall has closed and
    /// nobody waits; a window not open (the tidal reserve before the surge) waits.
    pub async fn windows_work(self: &Arc<Self>) -> anyhow::Result<()> {
        let halls = self.halls.lock().expect("halls").clone();
        let mut tasks = tokio::task::JoinSet::new();
        for hall in halls {
            for (i, w) in hall.windows.iter().enumerate() {
                let me = self.clone();
                let (w, county) = (w.clone(), hall.county);
                let mut rng = self.rng.fork(50_000 + (county * 100 + i) as u64);
                tasks.spawn(async move { me.window(county, &w, &mut rng).await });
            }
        }
        let mut followups = Vec::new();
        while let Some(r) = tasks.join_next().await {
            followups.extend(r??);
        }
        for f in followups {
            if let Err(e) = f.await? {
                self.case_errors.lock().expect("errors").push(e.to_string());
            }
        }
        Ok(())
    }

    async fn window(
        self: &Arc<Self>,
        county: usize,
        w: &Window,
        rng: &mut Rng,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<()>>>> {
        let clerk = self.clerk(county, &w.staff);
        let q = self.q(&clerk);
        let mut followups = Vec::new();
        self.clock.until(self.open_at()).await;
        let mut idle_since_close = 0;
        loop {
            let req = qpb::CallNextRequest { window_id: w.id.clone() };
            let called = self
                .calls
                .call("queue.CallNext", || {
                    let (mut q, r) = (q.clone(), req.clone());
                    async move { q.call_next(r).await }
                })
                .await;
            let ticket = match called {
                Ok(r) => r.ticket,
                Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::FailedPrecondition) => None,
                Err(s) => return Err(anyhow::anyhow!("CallNext at {}: {s}", w.code)),
            };
            let Some(t) = ticket else {
                if self.clock.now() > self.last_arrival() {
                    idle_since_close += 1;
                    // Nobody left: twice empty after the last arrival (the other windows may
                    // still hand back a ticket), then the window closes.
                    if idle_since_close >= 3 {
                        break;
                    }
                }
                self.clock.minutes(3.0).await;
                continue;
            };
            idle_since_close = 0;
            let wid = qpb::StartServiceRequest { window_id: w.id.clone() };
            self.calls
                .call("queue.StartService", || {
                    let (mut q, r) = (q.clone(), wid.clone());
                    async move { q.start_service(r).await }
                })
                .await?;
            let minutes = (8.0 + rng.normal() * 4.0).clamp(2.0, 30.0);
            self.clock.minutes(minutes).await;
            // About four in ten visits lodge an application at the window.
            let matter = self.matters[county].iter().position(|m| m.id == t.matter_id);
            let mut case = None;
            if let (Some(m), true) = (matter, rng.chance(0.4)) {
                case = self.submit_case(county, m, &t, &clerk, rng).await?;
            }
            let fin = qpb::FinishServiceRequest { window_id: w.id.clone() };
            self.calls
                .call("queue.FinishService", || {
                    let (mut q, r) = (q.clone(), fin.clone());
                    async move { q.finish_service(r).await }
                })
                .await?;
            self.progress.served.fetch_add(1, Ordering::Relaxed);
            let me = self.clone();
            let (mut r, weak, tid) = (rng.fork(7), w.weak, t.id.clone());
            followups.push(tokio::spawn(async move { me.rate(county, &tid, weak, &mut r).await }));
            if let Some((id, m)) = case {
                let me = self.clone();
                let (mut r, clerk) = (rng.fork(11), clerk.clone());
                followups.push(tokio::spawn(async move { me.case_life(county, m, id, &clerk, &mut r).await }));
            }
        }
        let close = qpb::SetWindowStateRequest {
            window_id: w.id.clone(),
            state: qpb::WindowState::Closed as i32,
            staff_id: w.staff.clone(),
        };
        let m = self.q(&self.manager(county));
        let _ = self
            .calls
            .call("queue.SetWindowState", || {
                let (mut m, r) = (m.clone(), close.clone());
                async move { m.set_window_state(r).await }
            })
            .await;
        Ok(followups)
    }

    async fn submit_case(
        &self,
        county: usize,
        m: usize,
        t: &qpb::Ticket,
        clerk: &str,
        rng: &mut Rng,
    ) -> anyhow::Result<Option<(String, usize)>> {
        let matter = &self.matters[county][m];
        let scenario =
            ["quick", "correction", "tolerance", "parallel", "slow"][rng.pick(&[0.45, 0.15, 0.15, 0.1, 0.15])];
        let mut supplied = matter.key.clone();
        match scenario {
            "correction" => supplied.extend(matter.other.iter().take(matter.other.len() / 2).cloned()),
            "tolerance" => supplied.extend(matter.other.iter().skip(1).cloned()),
            _ => supplied.extend(matter.other.iter().cloned()),
        }
        let c = self.c(clerk);
        let req = cpb::SubmitCaseRequest {
            region_code: self.region(county).into(),
            matter_id: matter.id.clone(),
            applicant: Some(cpb::Applicant {
                name: NAMES[rng.below(NAMES.len())].into(),
                phone: format!("139{:08}", rng.below(100_000_000)),
                ..Default::default()
            }),
            supplied_materials: supplied,
            request_id: format!("sim-case-{}", t.id),
            ..Default::default()
        };
        let k = self
            .calls
            .call("case.SubmitCase", || {
                let (mut c, r) = (c.clone(), req.clone());
                async move { c.submit_case(r).await }
            })
            .await?
            .case
            .unwrap_or_default();
        let q = self.q(clerk);
        let link = qpb::LinkCaseRequest { ticket_id: t.id.clone(), case_id: k.id.clone() };
        self.calls
            .call("queue.LinkCase", || {
                let (mut q, r) = (q.clone(), link.clone());
                async move { q.link_case(r).await }
            })
            .await?;
        self.progress.cases.fetch_add(1, Ordering::Relaxed);
        self.cases.lock().expect("cases").push(CaseRec { county, id: k.id.clone(), matter: m, scenario });
        Ok(Some((k.id, m)))
    }

    /// A case after submission, by its scenario, as far as the day goes: quick ones are
    /// decided, delivered and closed; others wait on a correction, a tolerated material or a
    /// second department; slow ones sit accepted (their warnings fire).
    async fn case_life(&self, county: usize, m: usize, id: String, clerk: &str, rng: &mut Rng) -> anyhow::Result<()> {
        let scenario =
            self.cases.lock().expect("cases").iter().find(|c| c.id == id).map(|c| c.scenario).unwrap_or("quick");
        let matter = self.matters[county][m].clone();
        let c = self.c(clerk);
        let mut k = self.get_case(&c, &id).await?;
        let step = |k: &cpb::Case| (k.id.clone(), k.version);
        if scenario == "correction" {
            let missing: Vec<String> = matter.other.iter().skip(matter.other.len() / 2).cloned().collect();
            if !missing.is_empty() {
                let (id, v) = step(&k);
                let req = cpb::RequestCorrectionRequest {
                    id,
                    expected_version: v,
                    materials: missing.clone(),
                    reason: "一次性告知: 请补齐所列全部材料".into(),
                };
                k = self
                    .case_call(&c, "case.RequestCorrection", &k, |mut c| async move { c.request_correction(req).await })
                    .await?;
                self.clock.minutes(rng.range(30.0, 120.0)).await;
                let (id, v) = step(&k);
                let req = cpb::SupplyMaterialsRequest { id, expected_version: v, materials: missing };
                k = self
                    .case_call(&c, "case.SupplyMaterials", &k, |mut c| async move { c.supply_materials(req).await })
                    .await?;
            }
        }
        let tolerated = scenario == "tolerance" && !matter.other.is_empty();
        let (id2, v) = step(&k);
        let req = cpb::AcceptCaseRequest {
            id: id2,
            expected_version: v,
            tolerance_due_date: if tolerated {
                crate::workdays::after(self.date, 3).to_string()
            } else {
                String::new()
            },
        };
        k = self.case_call(&c, "case.AcceptCase", &k, |mut c| async move { c.accept_case(req).await }).await?;
        if scenario == "slow" || self.clock.now() > self.close_at() {
            return Ok(());
        }
        if tolerated {
            self.clock.minutes(rng.range(20.0, 90.0)).await;
            let (id, v) = step(&k);
            let req = cpb::SupplyToleratedMaterialsRequest {
                id,
                expected_version: v,
                materials: matter.other.iter().take(1).cloned().collect(),
            };
            k = self
                .case_call(&c, "case.SupplyToleratedMaterials", &k, |mut c| async move {
                    c.supply_tolerated_materials(req).await
                })
                .await?;
        }
        self.clock.minutes(rng.range(20.0, 120.0)).await;
        let mut departments = vec![matter.department.clone()];
        if scenario == "parallel" {
            departments.push(format!("{}公安分局", self.counties[county].name));
        }
        let (id, v) = step(&k);
        let req = cpb::StartReviewRequest {
            id,
            expected_version: v,
            departments: departments.clone(),
            step: matter.review_step.clone(),
        };
        k = self.case_call(&c, "case.StartReview", &k, |mut c| async move { c.start_review(req).await }).await?;
        let approve = rng.chance(0.95);
        for d in &departments {
            self.clock.minutes(rng.range(30.0, 150.0)).await;
            let reviewer = token_in(&format!("{}-审核", d), &[roles::REVIEWER], self.region(county), d);
            let r = self.c(&reviewer);
            let (id, v) = step(&k);
            let req = cpb::ConcludeReviewStepRequest {
                id,
                expected_version: v,
                department: d.clone(),
                approve,
                reason: if approve { String::new() } else { "材料内容与实际不符".into() },
            };
            k = self
                .case_call(&r, "case.ConcludeReviewStep", &k, |mut c| async move { c.conclude_review_step(req).await })
                .await?;
            if !approve {
                return Ok(());
            }
        }
        if self.clock.now() > self.close_at() {
            return Ok(());
        }
        self.clock.minutes(rng.range(10.0, 40.0)).await;
        let (id, v) = step(&k);
        let req = cpb::IssueCertificateRequest {
            id: id.clone(),
            expected_version: v,
            certificate_number: format!("SIM{}", &id[..8]),
        };
        k = self
            .case_call(&c, "case.IssueCertificate", &k, |mut c| async move { c.issue_certificate(req).await })
            .await?;
        self.clock.minutes(rng.range(10.0, 40.0)).await;
        let (id, v) = step(&k);
        let req = cpb::DeliverCaseRequest { id, expected_version: v, method: "窗口领取".into() };
        k = self.case_call(&c, "case.DeliverCase", &k, |mut c| async move { c.deliver_case(req).await }).await?;
        let (id, v) = step(&k);
        let req = cpb::CloseCaseRequest { id, expected_version: v };
        self.case_call(&c, "case.CloseCase", &k, |mut c| async move { c.close_case(req).await }).await?;
        Ok(())
    }

    async fn get_case(&self, c: &C, id: &str) -> anyhow::Result<cpb::Case> {
        let req = cpb::GetCaseRequest { id: id.into() };
        Ok(self
            .calls
            .call("case.GetCase", || {
                let (mut c, r) = (c.clone(), req.clone());
                async move { c.get_case(r).await }
            })
            .await?
            .case
            .unwrap_or_default())
    }

    /// One transition. A call that may have been applied before its answer was lost (a
    /// restart under `--chaos`) is not sent twice blindly: its retry meets the version check,
    /// and the case read again shows whether it moved.
    async fn case_call<T, F, Fut>(
        &self,
        c: &C,
        name: &'static str,
        before: &cpb::Case,
        f: F,
    ) -> anyhow::Result<cpb::Case>
    where
        T: HasCase,
        F: FnOnce(C) -> Fut + Clone,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let r = self
            .calls
            .call(name, || {
                let (f, c) = (f.clone(), c.clone());
                f(c)
            })
            .await;
        match r {
            Ok(r) => Ok(r.into_case()),
            Err(s) if s.code() == tonic::Code::FailedPrecondition || s.code() == tonic::Code::Aborted => {
                let now = self.get_case(c, &before.id).await?;
                if now.version > before.version {
                    Ok(now)
                } else {
                    self.case_errors.lock().expect("errors").push(format!(
                        "{name} {}: {}",
                        &before.id[..8],
                        s.message()
                    ));
                    Err(anyhow::anyhow!("{name}: {}", s.message()))
                }
            }
            Err(s) => Err(anyhow::anyhow!("{name}: {s}")),
        }
    }
}

/// A case service answer that carries the case.
pub trait HasCase {
    fn into_case(self) -> cpb::Case;
}

macro_rules! has_case {
    ($($t:ident),*) => {
        $(impl HasCase for cpb::$t {
            fn into_case(self) -> cpb::Case {
                self.case.unwrap_or_default()
            }
        })*
    };
}

has_case!(
    RequestCorrectionResponse,
    SupplyMaterialsResponse,
    AcceptCaseResponse,
    SupplyToleratedMaterialsResponse,
    StartReviewResponse,
    ConcludeReviewStepResponse,
    IssueCertificateResponse,
    DeliverCaseResponse,
    CloseCaseResponse
);
