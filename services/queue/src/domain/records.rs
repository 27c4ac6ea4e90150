//! The queue's records as the domain sees them: a hall, its windows, a ticket, a slot, an
//! appointment, a tidal event. The store reads and writes them; the rules in [`super`] change
//! them in memory.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use super::{
    AppointmentState, Category, StaffOnDuty, TicketState, TidalAction, TidalPolicy, WindowState,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HallRow {
    pub id: Uuid,
    pub region_code: String,
    pub name: String,
    pub categories: sqlx::types::Json<Vec<Category>>,
    pub staff: sqlx::types::Json<Vec<StaffOnDuty>>,
    pub tidal: sqlx::types::Json<Vec<TidalPolicy>>,
    pub weekend_service: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WindowRow {
    pub id: Uuid,
    pub hall_id: Uuid,
    pub code: String,
    pub kind: String,
    pub matter_ids: Vec<String>,
    pub state: WindowState,
    pub staff_id: String,
    pub tidal: bool,
    pub tidal_category: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketRow {
    pub id: Uuid,
    pub hall_id: Uuid,
    pub region_code: String,
    pub day: NaiveDate,
    pub number: String,
    pub category: String,
    pub matter_id: String,
    pub matter_name: String,
    /// The matter's department (the catalog's name of it).
    pub department: String,
    pub window_codes: Vec<String>,
    pub priority: i16,
    pub service_kind: String,
    pub state: TicketState,
    pub arrival_at: DateTime<Utc>,
    pub arrival_ms: i64,
    pub window_id: Option<Uuid>,
    pub window_code: String,
    pub staff_id: String,
    pub called_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub no_shows: i32,
    pub recalls: i32,
    pub call_seq: Option<i64>,
    pub case_id: String,
    pub citizen_id: String,
    pub appointment_id: Option<Uuid>,
    pub direct_window: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SlotRow {
    pub id: Uuid,
    pub hall_id: Uuid,
    pub matter_id: String,
    pub day: NaiveDate,
    pub start_time: NaiveTime,
    pub end_time: NaiveTime,
    pub capacity: i32,
    pub booked: i32,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    pub id: Uuid,
    pub slot_id: Uuid,
    pub hall_id: Uuid,
    pub matter_id: String,
    pub citizen_id: String,
    pub citizen_name: String,
    pub state: AppointmentState,
    pub ticket_id: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TidalRow {
    pub id: Uuid,
    pub hall_id: Uuid,
    pub category: String,
    pub action: TidalAction,
    pub window_id: Option<Uuid>,
    pub window_code: String,
    pub staff_id: String,
    pub waiting: i32,
    pub estimated_wait: i32,
    pub reason: String,
    pub at: DateTime<Utc>,
}
