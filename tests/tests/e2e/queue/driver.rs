//! A small driver for the queue tests: a hall with its windows, a desk (one window and the
//! clerk at it), a kiosk. Each call unwraps the answer it expects, so a test reads as the steps
//! a hall takes.
#![allow(dead_code)]

use tonic::{Response, Status};
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::ServiceProc;
use xiaoneng_kit::auth::roles;

use super::{category, client, hall, open, window, Queue};

/// The ticket in a queue answer, or a panic naming the call.
pub fn ticket<T: HasTicket>(what: &str, r: Result<Response<T>, Status>) -> pb::Ticket {
    match r {
        Ok(r) => r.into_inner().ticket().unwrap_or_else(|| panic!("{what}: no ticket")),
        Err(e) => panic!("{what}: {e}"),
    }
}

pub trait HasTicket {
    fn ticket(self) -> Option<pb::Ticket>;
}

macro_rules! has_ticket {
    ($($t:ty),*) => {$(impl HasTicket for $t {
        fn ticket(self) -> Option<pb::Ticket> { self.ticket }
    })*};
}
has_ticket!(
    pb::IssueTicketResponse,
    pb::GetTicketResponse,
    pb::CallNextResponse,
    pb::CallTicketResponse,
    pb::MarkNoShowResponse,
    pb::HoldTicketResponse,
    pb::ResumeTicketResponse,
    pb::TransferTicketResponse,
    pb::StartServiceResponse,
    pb::FinishServiceResponse,
    pb::LinkCaseResponse
);

/// One window and the clerk who works it.
#[derive(Clone)]
pub struct Desk {
    pub clerk: Queue,
    pub window: pb::Window,
}

impl Desk {
    fn id(&self) -> String {
        self.window.id.clone()
    }

    /// The next ticket, or None when nobody this window may serve is waiting.
    pub async fn call_next(&mut self) -> Option<pb::Ticket> {
        let r = self.try_call_next().await;
        r.unwrap_or_else(|e| panic!("call next at {}: {e}", self.window.code))
    }

    pub async fn try_call_next(&mut self) -> Result<Option<pb::Ticket>, Status> {
        let r = self.clerk.call_next(pb::CallNextRequest { window_id: self.id() }).await;
        Ok(r?.into_inner().ticket)
    }

    pub async fn call(&mut self, ticket_id: &str) -> Result<pb::Ticket, Status> {
        let (window_id, ticket_id) = (self.id(), ticket_id.to_string());
        let r = self.clerk.call_ticket(pb::CallTicketRequest { window_id, ticket_id, number: String::new() }).await;
        Ok(r?.into_inner().ticket.expect("ticket"))
    }

    pub async fn start(&mut self) -> pb::Ticket {
        let r = self.clerk.start_service(pb::StartServiceRequest { window_id: self.id() });
        ticket("start service", r.await)
    }

    pub async fn finish(&mut self) -> pb::Ticket {
        let r = self.clerk.finish_service(pb::FinishServiceRequest { window_id: self.id() });
        ticket("finish service", r.await)
    }

    pub async fn no_show(&mut self) -> pb::Ticket {
        let r = self.clerk.mark_no_show(pb::MarkNoShowRequest { window_id: self.id() });
        ticket("no-show", r.await)
    }

    pub async fn hold(&mut self) -> pb::Ticket {
        let r = self.clerk.hold_ticket(pb::HoldTicketRequest { window_id: self.id() });
        ticket("hold", r.await)
    }

    pub async fn resume(&mut self, ticket_id: &str) -> pb::Ticket {
        let ticket_id = ticket_id.to_string();
        let r = self.clerk.resume_ticket(pb::ResumeTicketRequest { ticket_id });
        ticket("resume", r.await)
    }

    /// Sends the current ticket on to another matter (any window that serves it).
    pub async fn transfer(&mut self, matter_id: &str) -> pb::Ticket {
        let r = self.clerk.transfer_ticket(pb::TransferTicketRequest {
            window_id: self.id(),
            matter_id: matter_id.into(),
            to_window_id: String::new(),
        });
        ticket("transfer", r.await)
    }

    /// Sends the current ticket on to another matter at one named window (its direct lane).
    pub async fn transfer_to(&mut self, matter_id: &str, window: &pb::Window) -> pb::Ticket {
        let r = self.clerk.transfer_ticket(pb::TransferTicketRequest {
            window_id: self.id(),
            matter_id: matter_id.into(),
            to_window_id: window.id.clone(),
        });
        ticket("transfer to a window", r.await)
    }

    /// Calls and finishes the next ticket; its number, None when nobody waits.
    pub async fn serve_next(&mut self) -> Option<String> {
        let t = self.call_next().await?;
        self.finish().await;
        Some(t.number)
    }
}

/// A hall of 410702 with one category `A` open to every matter, its manager and a kiosk.
pub struct Hall {
    pub hall: pb::Hall,
    pub manager: Queue,
    pub kiosk: Queue,
    pub clerk: Queue,
}

impl Hall {
    pub async fn open(q: &ServiceProc, name: &str) -> Self {
        Self::with_categories(q, name, vec![category("A", &[])]).await
    }

    pub async fn with_categories(q: &ServiceProc, name: &str, cats: Vec<pb::Category>) -> Self {
        let mut manager = client(q, "manager", &[roles::HALL_MANAGER]).await;
        let hall = hall(&mut manager, name, cats).await;
        Hall {
            hall,
            manager,
            kiosk: client(q, "kiosk", &[roles::SYSTEM]).await,
            clerk: client(q, "clerk", &[roles::CLERK]).await,
        }
    }

    /// New clients after the service restarted.
    pub async fn reconnect(&mut self, q: &ServiceProc) {
        self.manager = client(q, "manager", &[roles::HALL_MANAGER]).await;
        self.kiosk = client(q, "kiosk", &[roles::SYSTEM]).await;
        self.clerk = client(q, "clerk", &[roles::CLERK]).await;
    }

    pub fn id(&self) -> String {
        self.hall.id.clone()
    }

    /// A window (closed): comprehensive when `matters` is empty, else a department window.
    pub async fn window(&mut self, code: &str, matters: &[String]) -> pb::Window {
        let kind = match matters {
            [] => pb::WindowKind::Comprehensive,
            _ => pb::WindowKind::Department,
        };
        window(&mut self.manager, &self.hall.id, code, kind, matters, false).await
    }

    /// A window opened with `staff` at it, and its desk.
    pub async fn desk(&mut self, code: &str, matters: &[String], staff: &str) -> Desk {
        let window = self.window(code, matters).await;
        open(&mut self.manager, &window, staff).await;
        Desk { clerk: self.clerk.clone(), window }
    }

    /// A normal walk-in ticket for `matter` from the kiosk.
    pub async fn issue(&mut self, matter: &str) -> pb::Ticket {
        super::issue(&mut self.kiosk, &self.hall.id, matter, pb::Priority::Normal).await
    }

    pub async fn issue_n(&mut self, matter: &str, n: usize) -> Vec<pb::Ticket> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.issue(matter).await);
        }
        out
    }

    /// Waiting tickets of category `A`, as the hot queue counts them.
    pub async fn waiting(&mut self) -> i32 {
        let r = self.kiosk.estimate_wait(pb::EstimateWaitRequest { hall_id: self.id() });
        r.await.expect("estimate wait").into_inner().categories[0].waiting
    }
}
