//! Images in messages and avatars: an upload may be used only by its owner, and using it shares
//! it with whoever may then see it.

use natter_infra::store::{AUDIENCE_EVERYONE, share_own_upload};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::state::{LogicService, status};

impl LogicService {
    /// Checks that `upload` is `owner`'s own, and lets `audience` fetch it.
    pub(crate) async fn share_own(
        &self,
        owner: i64,
        upload: i64,
        audience: &str,
    ) -> Result<(), Status> {
        if share_own_upload(self.store.as_ref(), owner, upload, audience)
            .await
            .map_err(status)?
        {
            Ok(())
        } else {
            Err(ErrorCode::NotFound.status(format!("you have no upload {upload}")))
        }
    }

    /// Checks that `upload` is the sender's own, and lets the target's audience (the
    /// recipient, or the group's members; named by the object) fetch it.
    pub(crate) async fn share_image(
        &self,
        sender: i64,
        upload: i64,
        target: ObjectId,
    ) -> Result<(), Status> {
        self.share_own(sender, upload, &target.to_string()).await
    }

    /// An avatar as given (`""` for none, else an upload id the owner made), shared with
    /// everyone signed in once accepted.
    pub(crate) async fn avatar_of(
        &self,
        owner: i64,
        avatar: &str,
    ) -> Result<Option<String>, Status> {
        if avatar.is_empty() {
            return Ok(None);
        }
        let upload = natter_proto::object::parse_id(avatar)
            .ok_or_else(|| ErrorCode::InvalidInput.status("the avatar is an upload id"))?;
        self.share_own(owner, upload, AUDIENCE_EVERYONE).await?;
        Ok(Some(upload.to_string()))
    }
}
