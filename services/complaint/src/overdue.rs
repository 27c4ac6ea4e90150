//! The loop of the complaint deadlines: applies calendar notices loaded since the last pass,
//! reminds (催办) the complaints due today and escalates to the efficiency office those past
//! their deadline the day after it, each once per deadline. The transactions and rules are
//! the service's.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::Complaints;

pub async fn run(c: Complaints, every: Duration, batch: i64, stop: CancellationToken) {
    xiaoneng_kit::background::every("complaint_overdue", every, stop, move || {
        let c = c.clone();
        async move {
            c.calendars.refresh(&c.pool).await?;
            while c.remind_due(batch).await? as i64 >= batch {}
            while c.escalate_overdue(batch).await? as i64 >= batch {}
            Ok(())
        }
    })
    .await
}
