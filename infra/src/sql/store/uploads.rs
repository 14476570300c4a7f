//! Uploaded images: who owns them and who may fetch them in SQL: the statements and the
//! `UploadStore` implementation.

use super::*;

/// The uploads statements, in the store's dialect.
#[derive(Debug)]
pub(super) struct UploadStatements {
    put_upload: SqlStr,
    upload: SqlStr,
    share_upload: SqlStr,
    upload_audiences: SqlStr,
}

impl UploadStatements {
    pub(super) fn new(dialect: Dialect) -> Self {
        let sql = |text: &str| dialect_sql(dialect, text);
        UploadStatements {
            put_upload: sql(
                "INSERT INTO uploads (id, owner, content_type, width, height, size, thumbnail, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            upload: sql(
                "SELECT id, owner, content_type, width, height, size, thumbnail, created_at \
             FROM uploads WHERE id = ?",
            ),
            share_upload: sql(&dialect.insert_unless_present(
                "INTO upload_audiences (upload_id, audience) VALUES (?, ?)",
                "upload_id, audience",
            )),
            upload_audiences: sql(
                "SELECT audience FROM upload_audiences WHERE upload_id = ? ORDER BY audience",
            ),
        }
    }
}

#[async_trait]
impl UploadStore for SqlStore {
    async fn put_upload(&self, upload: &Upload) -> InfraResult<()> {
        statement(&self.statements.uploads.put_upload)
            .bind(upload.id)
            .bind(upload.owner)
            .bind(&upload.content_type)
            .bind(i64::from(upload.width))
            .bind(i64::from(upload.height))
            .bind(stored_seq(upload.size))
            .bind(i64::from(upload.thumbnail))
            .bind(upload.created_at)
            .execute(&self.database.pool)
            .await
            .map_err(|error| conflict_or(error, "upload id"))?;
        Ok(())
    }

    async fn upload(&self, id: i64) -> InfraResult<Option<Upload>> {
        let row: Option<(i64, i64, String, i64, i64, i64, i64, i64)> =
            rows(&self.statements.uploads.upload)
                .bind(id)
                .fetch_optional(&self.database.pool)
                .await?;
        Ok(row.map(
            |(id, owner, content_type, width, height, size, thumbnail, created_at)| Upload {
                id,
                owner,
                content_type,
                width: u32::try_from(width).unwrap_or(0),
                height: u32::try_from(height).unwrap_or(0),
                size: u64::try_from(size).unwrap_or(0),
                thumbnail: thumbnail != 0,
                created_at,
            },
        ))
    }

    async fn share_upload(&self, id: i64, audience: &str) -> InfraResult<()> {
        statement(&self.statements.uploads.share_upload)
            .bind(id)
            .bind(audience)
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }

    async fn upload_audiences(&self, id: i64) -> InfraResult<Vec<String>> {
        let found: Vec<(String,)> = rows(&self.statements.uploads.upload_audiences)
            .bind(id)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(|(audience,)| audience).collect())
    }
}
