//! The loop that reports 差评 loop steps past their working-day deadline, the day after it,
//! once per deadline; the transaction and the rule are the service's.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::Evaluation;

pub async fn run(eval: Evaluation, every: Duration, batch: i64, stop: CancellationToken) {
    xiaoneng_kit::background::every("evaluation_overdue", every, stop, move || {
        let eval = eval.clone();
        async move {
            while eval.report_overdue(batch).await? as i64 >= batch {}
            Ok(())
        }
    })
    .await
}
