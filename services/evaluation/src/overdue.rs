//! The loop of the 差评 deadlines: applies calendar notices loaded since the last pass (and
//! recomputes the open steps they move), then reminds (催办) the steps due today and reports
//! the steps past their working-day deadline the day after it, each once per deadline; and
//! expires the invitations whose rating window passed unrated. The transactions and rules are
//! the service's.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::Evaluation;

pub async fn run(eval: Evaluation, every: Duration, batch: i64, stop: CancellationToken) {
    xiaoneng_kit::background::every("evaluation_overdue", every, stop, move || {
        let eval = eval.clone();
        async move {
            eval.calendars.refresh(&eval.pool).await?;
            while eval.recalendar(batch).await? as i64 >= batch {}
            while eval.remind_due(batch).await? as i64 >= batch {}
            while eval.report_overdue(batch).await? as i64 >= batch {}
            while eval.expire_unrated(batch).await? as i64 >= batch {}
            Ok(())
        }
    })
    .await
}
