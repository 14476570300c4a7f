//! The `Store` conformance suite: uploads and who may fetch them.

use super::super::random_id;
use crate::error::InfraError;
use crate::store::{Store, Upload};

/// Run every check of this part of the `Store` suite.
pub async fn run(store: &dyn Store) {
    uploads(store).await;
}

/// Uploads are recorded once and shared with audiences.
async fn uploads(store: &dyn Store) {
    let upload = Upload {
        id: random_id(),
        owner: random_id(),
        content_type: "image/png".into(),
        width: 1200,
        height: 800,
        size: 123_456,
        thumbnail: true,
        created_at: 5,
    };
    store.put_upload(&upload).await.expect("put");
    assert_eq!(
        store.upload(upload.id).await.expect("read"),
        Some(upload.clone())
    );
    assert!(matches!(
        store.put_upload(&upload).await,
        Err(InfraError::Conflict(_))
    ));
    assert_eq!(store.upload(random_id()).await.expect("read"), None);
    assert!(
        store
            .upload_audiences(upload.id)
            .await
            .expect("none")
            .is_empty()
    );
    store
        .share_upload(upload.id, "user:7")
        .await
        .expect("share");
    store
        .share_upload(upload.id, "everyone")
        .await
        .expect("share");
    store
        .share_upload(upload.id, "user:7")
        .await
        .expect("again");
    assert_eq!(
        store.upload_audiences(upload.id).await.expect("audiences"),
        ["everyone", "user:7"]
    );
}
