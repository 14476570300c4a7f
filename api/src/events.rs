//! Events the API tells online clients about: hints, since the state itself is stored.

use natter_proto::frame::ServerFrame;
use natter_proto::v1::NotifyRequest;

use crate::state::ApiState;

/// Queues `frame` on the online connections of `users` and of the members of `groups`. A
/// failure to tell is logged, not returned: the change is stored, and clients read it on reload.
pub(crate) async fn notify(
    state: &ApiState,
    users: Vec<i64>,
    groups: Vec<i64>,
    frame: ServerFrame,
) {
    let request = NotifyRequest {
        user_ids: users,
        frame: frame.to_json(),
        group_ids: groups,
    };
    if let Err(error) = state.logic.notify(request).await {
        tracing::warn!(%error, "telling online clients about an event failed");
    }
}
