//! The dashboard's reads that span services, each as one call: the updates
//! timeline (the project, its branches, a page of its history and the
//! insights of that page's updates) and an update's bundle patches.

use domain::id::{ProjectId, PublishId};
use domain::patch::PatchPolicy;
use domain::project::Project;
use domain::user::User;

use crate::access::Caller;
use crate::bundle_diffing::BundlePatches;
use crate::error::AppResult;
use crate::insights::UpdateInsights;
use crate::releases::{BranchSummary, HistoryPage, HistoryRequest};
use crate::services::ServiceSet;

/// One page of the timeline.
pub struct TimelinePage {
    pub project: Project,
    pub branches: Vec<BranchSummary>,
    pub history: HistoryPage,
    /// The insights of `history.updates`, in its order; `None` when they
    /// could not be read (logged): the timeline is still useful without
    /// them, and the page says they are missing.
    pub insights: Option<Vec<UpdateInsights>>,
}

impl ServiceSet {
    /// The timeline page `request` names, for a member of the project.
    pub async fn timeline(
        &self,
        user: &User,
        project_id: &ProjectId,
        request: &HistoryRequest,
    ) -> AppResult<TimelinePage> {
        let project = self.projects.get(user, project_id).await?;
        let caller = Caller::User(user.clone());
        let branches = self.releases.branches(&caller, project_id).await?;
        let history = self.releases.history(&caller, project_id, request).await?;
        let publish_ids: Vec<PublishId> = history
            .updates
            .iter()
            .map(|group| group.publish_id.clone())
            .collect();
        let insights = match self
            .insights
            .insights_of_page(user, project_id, &publish_ids)
            .await
        {
            Ok(insights) => Some(insights),
            Err(error) => {
                tracing::warn!(%error, project = %project_id, "reading the timeline's insights failed");
                None
            }
        };
        Ok(TimelinePage {
            project,
            branches,
            history,
            insights,
        })
    }

    /// The bundle patches of a publish, with the project they are of.
    pub async fn patches_page(
        &self,
        user: &User,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> AppResult<PatchesPage> {
        let project = self.projects.get(user, project_id).await?;
        let caller = Caller::User(user.clone());
        let platforms = self
            .patches
            .of_publish(&caller, project_id, publish_id)
            .await?;
        Ok(PatchesPage {
            project,
            policy: self.patches.policy(),
            platforms,
        })
    }
}

/// An update's bundle patches, for the dashboard.
pub struct PatchesPage {
    pub project: Project,
    pub policy: PatchPolicy,
    pub platforms: Vec<BundlePatches>,
}
