//! Operations on the setups' scaling groups during a run: a rolling replacement (deploy),
//! a scale-in, and what is in service.

use crate::scaler::ScalerHandle;
use crate::scaler::status::InstanceState;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

/// Ids of every instance in service, of every group.
pub fn in_service(h: &ScalerHandle) -> Vec<String> {
    h.groups()
        .into_iter()
        .flat_map(|g| g.instances)
        .filter(|i| i.state == InstanceState::InService)
        .map(|i| i.id)
        .collect()
}

/// Ids of a group's instances in any state (launched and not terminated yet).
fn ids(h: &ScalerHandle, group: &str) -> BTreeSet<String> {
    h.groups()
        .into_iter()
        .filter(|g| g.name == group)
        .flat_map(|g| g.instances)
        .map(|i| i.id)
        .collect()
}

/// Polls `done` every 100 ms until it holds (true) or `limit` passes (false).
async fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

/// Why an operation did not finish.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The scaler refused a capacity change.
    #[error(transparent)]
    Scaler(#[from] crate::scaler::ScalerError),
    /// An instance did not reach the state waited for.
    #[error("{0}")]
    Timeout(String),
}

/// Replaces every instance of `group`, the way a rolling deploy does: an instance refresh
/// (one at a time; each replacement in service and healthy at the balancer before an old
/// instance drains); waits until every old instance is terminated.
pub async fn deploy(h: &ScalerHandle, group: &str) -> Result<(), OperationError> {
    let old = ids(h, group);
    h.start_refresh(group).await?;
    let done = wait(Duration::from_secs(90), || {
        let refreshing = h
            .groups()
            .iter()
            .any(|g| g.name == group && g.refresh.is_some());
        !refreshing && ids(h, group).intersection(&old).next().is_none()
    })
    .await;
    match done {
        true => Ok(()),
        false => Err(OperationError::Timeout(format!(
            "{group}: old instances still running 90 s after the instance refresh started"
        ))),
    }
}

/// Sets every group's desired capacity to `to` and waits until the removed instances are
/// drained and terminated.
pub async fn scale_in(h: &ScalerHandle, to: u32) -> Result<(), OperationError> {
    let groups: Vec<String> = h.groups().into_iter().map(|g| g.name).collect();
    for g in &groups {
        h.set_desired(g, to).await?;
    }
    let done = wait(Duration::from_secs(60), || {
        h.groups().iter().all(|g| g.instances.len() as u32 <= to)
    })
    .await;
    match done {
        true => Ok(()),
        false => Err(OperationError::Timeout(
            "removed instances still running 60 s after the scale-in".into(),
        )),
    }
}
