//! `/api/projects/{id}/audit` and `/api/projects/{id}/storage/gc`: what
//! owners use to see who changed what, and to reclaim storage.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::schema::{AuditPageBody, GcReportBody};
use crate::security::UserAuth;
use application::Services;

#[derive(Default)]
pub struct AuditApi;

error_responses!(AuditError {
    /// An invalid limit or cursor.
    BadRequest = 400,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
});

error_responses!(GcError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
});

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Projects")]
impl AuditApi {
    /// The project's audit log, newest first, cursor-paginated (owners)
    #[oai(path = "/projects/:id/audit", method = "get")]
    async fn audit(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        cursor: Query<Option<String>>,
        /// 1 to 200; default 20.
        limit: Query<Option<u64>>,
    ) -> Result<Json<AuditPageBody>, AuditError> {
        let page = services
            .audit
            .list(&auth.0, &ids::project(&id)?, cursor.0.as_deref(), limit.0)
            .await?;
        Ok(Json(page.into()))
    }

    /// Delete stored files no update references any more (owners)
    ///
    /// Also runs in the background. Files younger than `GC_GRACE_SECONDS`
    /// are kept.
    #[oai(path = "/projects/:id/storage/gc", method = "post")]
    async fn collect_garbage(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<GcReportBody>, GcError> {
        let report = services
            .gc
            .collect_project(&auth.0, &ids::project(&id)?)
            .await?;
        Ok(Json(report.into()))
    }
}
