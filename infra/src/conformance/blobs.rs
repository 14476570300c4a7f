//! The `Blobs` conformance suite.

use bytes::Bytes;

use super::random_id;
use crate::blobs::Blobs;

/// Run every `Blobs` check.
pub async fn run(blobs: &dyn Blobs) {
    let key = format!("conformance-{}", random_id());
    assert_eq!(blobs.get(&key).await.expect("get missing"), None);
    blobs
        .put(&key, Bytes::from_static(b"first"))
        .await
        .expect("put");
    assert_eq!(
        blobs.get(&key).await.expect("get").as_deref(),
        Some(&b"first"[..])
    );
    blobs
        .put(&key, Bytes::from_static(b"second"))
        .await
        .expect("replace");
    assert_eq!(
        blobs.get(&key).await.expect("get").as_deref(),
        Some(&b"second"[..])
    );
    let large = Bytes::from(vec![7u8; 300_000]);
    let large_key = format!("conformance-large-{}", random_id());
    blobs
        .put(&large_key, large.clone())
        .await
        .expect("put large");
    assert_eq!(blobs.get(&large_key).await.expect("get large"), Some(large));
    blobs.delete(&key).await.expect("delete");
    assert_eq!(blobs.get(&key).await.expect("get deleted"), None);
    blobs
        .delete(&key)
        .await
        .expect("deleting a missing key is fine");
    blobs.delete(&large_key).await.expect("delete large");
}
