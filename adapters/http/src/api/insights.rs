//! `/api/projects/{id}/updates/{updateId}/insights`: how an update does in
//! the field, by day and platform.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::security::UserAuth;
use application::Services;

#[derive(Default)]
pub struct InsightsApi;

/// Counts for one platform, on one day or in total.
#[derive(Debug, Object)]
pub struct InsightCountsBody {
    /// `YYYY-MM-DD` (UTC); absent in totals.
    pub day: Option<String>,
    pub platform: String,
    /// Update checks answered with this update, or from devices running it.
    pub checks: u64,
    /// Distinct `EAS-Client-ID`s among those checks (estimated, ±3%).
    #[oai(rename = "uniqueDevices")]
    pub unique_devices: u64,
    /// Downloads of the update's launch asset (its bundle): whole, or as
    /// a patch (`patchDownloads` of them).
    #[oai(rename = "launchAssetDownloads")]
    pub launch_asset_downloads: u64,
    /// Of the launch-asset downloads, those that were bundle patches.
    #[oai(rename = "patchDownloads")]
    pub patch_downloads: u64,
    /// Of the launch-asset downloads, those of the whole bundle.
    #[oai(rename = "fullDownloads")]
    pub full_downloads: u64,
    /// The bytes those downloads sent (compressed copies and patches as
    /// sent).
    #[oai(rename = "bytesSent")]
    pub bytes_sent: u64,
    /// The bytes patches saved against the full downloads the same
    /// clients would have got.
    #[oai(rename = "bytesSaved")]
    pub bytes_saved: u64,
    /// Reports of the update failing: `Expo-Recent-Failed-Update-IDs`
    /// naming it, or `Expo-Fatal-Error` from a device running it.
    #[oai(rename = "failureReports")]
    pub failure_reports: u64,
    /// Distinct devices among those reports (estimated).
    #[oai(rename = "failedDevices")]
    pub failed_devices: u64,
}

impl From<application::InsightSummary> for InsightCountsBody {
    fn from(summary: application::InsightSummary) -> Self {
        Self {
            day: summary.day.map(|day| day.format("%Y-%m-%d").to_string()),
            platform: summary.platform.as_str().to_owned(),
            checks: summary.checks,
            unique_devices: summary.unique_devices,
            launch_asset_downloads: summary.launch_asset_downloads,
            patch_downloads: summary.patch_downloads,
            full_downloads: summary
                .launch_asset_downloads
                .saturating_sub(summary.patch_downloads),
            bytes_sent: summary.bytes_sent,
            bytes_saved: summary.bytes_saved,
            failure_reports: summary.failure_reports,
            failed_devices: summary.failed_devices,
        }
    }
}

/// An update's insights.
#[derive(Debug, Object)]
pub struct InsightsBody {
    #[oai(rename = "updateId")]
    pub update_id: String,
    /// Oldest day first, then by platform.
    pub days: Vec<InsightCountsBody>,
    /// Per platform, over every day.
    pub totals: Vec<InsightCountsBody>,
}

error_responses!(InsightsError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project).
    Forbidden = 403,
    /// No such update in this project.
    NotFound = 404,
});

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Releases")]
impl InsightsApi {
    /// An update's checks, unique devices, launch-asset downloads and reported failures, by day and platform (members)
    #[oai(path = "/projects/:id/updates/:updateId/insights", method = "get")]
    async fn insights(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Json<InsightsBody>, InsightsError> {
        let (project, update) = (ids::project(&id)?, ids::update(&update_id)?);
        let insights = services
            .insights
            .insights(&auth.0, &project, &update)
            .await?;
        Ok(Json(InsightsBody {
            update_id: update.into_string(),
            days: insights.days.into_iter().map(Into::into).collect(),
            totals: insights.totals.into_iter().map(Into::into).collect(),
        }))
    }
}
