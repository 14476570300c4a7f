//! How the history store spells its keys: fixed-width big-endian fields, so that byte order is
//! the order queries walk (an object's seqs ascending, a peer's within an object, ids by time).

use natter_proto::ObjectId;

/// Bytes an object takes in a key: its kind, then its id.
pub(super) const OBJECT_LEN: usize = 9;
/// Bytes a message's place takes: its object, then its seq.
pub(super) const PLACE_LEN: usize = OBJECT_LEN + 8;

/// A signed id as bytes that sort as the numbers do.
fn ordered(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

/// The number [`ordered`] spelled.
fn from_ordered(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// An object as key bytes: `g` or `u`, then its id.
pub(super) fn object_key(object: ObjectId) -> [u8; OBJECT_LEN] {
    let (kind, id) = match object {
        ObjectId::Group(id) => (b'g', id),
        ObjectId::User(id) => (b'u', id),
    };
    let mut key = [0; OBJECT_LEN];
    key[0] = kind;
    key[1..].copy_from_slice(&ordered(id));
    key
}

/// The object whose key starts these bytes, if they spell one.
pub(super) fn object_of(bytes: &[u8]) -> Option<ObjectId> {
    let id = from_ordered(bytes.get(1..OBJECT_LEN)?.try_into().ok()?);
    match bytes.first()? {
        b'g' => Some(ObjectId::Group(id)),
        b'u' => Some(ObjectId::User(id)),
        _ => None,
    }
}

/// A message's place: its object, then its seq. The key of the `messages` keyspace.
pub(super) fn place(object: ObjectId, seq: u64) -> [u8; PLACE_LEN] {
    let mut key = [0; PLACE_LEN];
    key[..OBJECT_LEN].copy_from_slice(&object_key(object));
    key[OBJECT_LEN..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The object and seq a place (at the start of `bytes`) names.
pub(super) fn place_of(bytes: &[u8]) -> Option<(ObjectId, u64)> {
    let object = object_of(bytes)?;
    let seq = u64::from_be_bytes(bytes.get(OBJECT_LEN..PLACE_LEN)?.try_into().ok()?);
    Some((object, seq))
}

/// A key of the peer index: the object, the copy's peer, then its seq.
pub(super) fn peer_key(object: ObjectId, peer: i64, seq: u64) -> [u8; PLACE_LEN + 8] {
    let mut key = [0; PLACE_LEN + 8];
    key[..OBJECT_LEN].copy_from_slice(&object_key(object));
    key[OBJECT_LEN..PLACE_LEN].copy_from_slice(&ordered(peer));
    key[PLACE_LEN..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The peer and seq a peer-index key names.
pub(super) fn peer_and_seq_of(key: &[u8]) -> Option<(i64, u64)> {
    let peer = from_ordered(key.get(OBJECT_LEN..PLACE_LEN)?.try_into().ok()?);
    let seq = u64::from_be_bytes(key.get(PLACE_LEN..PLACE_LEN + 8)?.try_into().ok()?);
    Some((peer, seq))
}

/// A key of the id index: the message id, then the copy's place.
pub(super) fn id_key(id: u64, object: ObjectId, seq: u64) -> [u8; 8 + PLACE_LEN] {
    let mut key = [0; 8 + PLACE_LEN];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8..].copy_from_slice(&place(object, seq));
    key
}

/// The start of every key of a sender's client id in the cid index: the sender, the cid's
/// length and the cid. The length keeps one cid from being the start of another's keys.
pub(super) fn cid_prefix(sender: i64, cid: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + 4 + cid.len() + PLACE_LEN);
    key.extend_from_slice(&ordered(sender));
    key.extend_from_slice(&(cid.len() as u32).to_be_bytes());
    key.extend_from_slice(cid.as_bytes());
    key
}

/// A key of the cid index: [`cid_prefix`], then the copy's place.
pub(super) fn cid_key(sender: i64, cid: &str, object: ObjectId, seq: u64) -> Vec<u8> {
    let mut key = cid_prefix(sender, cid);
    key.extend_from_slice(&place(object, seq));
    key
}

/// The place at the end of an index key.
pub(super) fn trailing_place(key: &[u8]) -> Option<(ObjectId, u64)> {
    place_of(key.get(key.len().checked_sub(PLACE_LEN)?..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_their_fields_do() {
        let objects = [
            ObjectId::Group(-3),
            ObjectId::Group(7),
            ObjectId::User(-1),
            ObjectId::User(2),
            ObjectId::User(10),
        ];
        for pair in objects.windows(2) {
            assert!(place(pair[0], u64::MAX) < place(pair[1], 0), "{pair:?}");
        }
        assert!(place(ObjectId::User(2), 9) < place(ObjectId::User(2), 10));
        assert!(peer_key(ObjectId::User(2), -5, 99) < peer_key(ObjectId::User(2), 3, 1));
        assert!(id_key(255, ObjectId::User(9), 1) < id_key(256, ObjectId::User(1), 1));
    }

    #[test]
    fn keys_read_back_as_written() {
        let object = ObjectId::User(-42);
        assert_eq!(place_of(&place(object, 77)), Some((object, 77)));
        assert_eq!(peer_and_seq_of(&peer_key(object, -9, 5)), Some((-9, 5)));
        assert_eq!(trailing_place(&id_key(1, object, 3)), Some((object, 3)));
        assert_eq!(
            trailing_place(&cid_key(4, "abc", object, 8)),
            Some((object, 8))
        );
        assert_eq!(object_of(b"x12345678"), None);
        assert_eq!(place_of(b"u1"), None);
    }

    #[test]
    fn one_cid_is_never_the_start_of_another_ones_keys() {
        let short = cid_prefix(1, "ab");
        let long = cid_key(1, "abc", ObjectId::User(1), 1);
        assert!(!long.starts_with(&short));
    }
}
