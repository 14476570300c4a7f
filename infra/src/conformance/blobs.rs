//! The `Blobs` conformance suite.

use bytes::Bytes;

use super::random_id;
use crate::blobs::Blobs;

/// Run every `Blobs` check.
pub async fn run(blobs: &dyn Blobs) {
    let key = format!("conformance-{}", random_id());
    assert_eq!(
        blobs.get(&key).await.expect("get missing"),
        None,
        "a missing key is None"
    );
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
        Some(&b"second"[..]),
        "put replaces what was there"
    );
    let large = Bytes::from(vec![7u8; 300_000]);
    let large_key = format!("conformance-large-{}", random_id());
    blobs
        .put(&large_key, large.clone())
        .await
        .expect("put large");
    assert_eq!(blobs.get(&large_key).await.expect("get large"), Some(large));
    // Every byte value and the empty blob round-trip unchanged.
    let binary_key = format!("conformance-binary-{}", random_id());
    let binary = Bytes::from((0..=255u8).collect::<Vec<u8>>());
    blobs
        .put(&binary_key, binary.clone())
        .await
        .expect("put binary");
    assert_eq!(
        blobs.get(&binary_key).await.expect("get binary"),
        Some(binary)
    );
    let empty_key = format!("conformance-empty-{}", random_id());
    blobs
        .put(&empty_key, Bytes::new())
        .await
        .expect("put empty");
    assert_eq!(
        blobs.get(&empty_key).await.expect("get empty"),
        Some(Bytes::new()),
        "an empty blob is stored, not missing"
    );
    blobs.delete(&key).await.expect("delete");
    assert_eq!(
        blobs.get(&key).await.expect("get deleted"),
        None,
        "a deleted key is None"
    );
    blobs
        .delete(&key)
        .await
        .expect("deleting a deleted key is fine");
    blobs
        .delete(&format!("conformance-never-{}", random_id()))
        .await
        .expect("deleting a key never put is fine");
    for each in [&large_key, &binary_key, &empty_key] {
        blobs.delete(each).await.expect("delete");
        assert_eq!(blobs.get(each).await.expect("get deleted"), None);
    }
}
