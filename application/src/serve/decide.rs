//! The serving rules: which branch a channel sends a device to, which update
//! of it the device is in the rollout of, and what the protocol lets the
//! server say about it. Decided from memory, per request.

use domain::ports::ManifestSigner;
use domain::release::{ChannelName, pick_for_device};
use domain::update::UpdateKind;

use super::answer::ManifestAnswer;
use super::cache::{BranchView, PreparedUpdate, StreamView};
use super::request::{ManifestRequest, ProtocolVersion};
use super::signed::SignedOnce;
use crate::error::{AppError, AppResult};

/// What a branch has for a device.
pub(crate) enum Resolution<'a> {
    Update(&'a PreparedUpdate),
    /// The branch has updates, but none this device is in the rollout of.
    OutsideRollout,
    /// The branch has no update for this runtime version and platform; the
    /// 404 message says which runtime versions have.
    Nothing(&'a str),
}

/// The branch a channel sends this device to, and what that branch has for
/// it.
pub(crate) fn resolve<'a>(
    stream: &'a StreamView,
    channel: &ChannelName,
    client_id: Option<&str>,
) -> AppResult<(&'a BranchView, Resolution<'a>)> {
    let StreamView::Found { mapping, branches } = stream else {
        return Err(AppError::NotFound("Project not found.".to_owned()));
    };
    let view = match mapping {
        Some(mapping) => {
            let branch = mapping.branch_for(client_id);
            branches.iter().find(|view| view.branch == *branch)
        }
        None => branches
            .iter()
            .find(|view| view.branch.as_str() == channel.as_str()),
    }
    .ok_or_else(|| AppError::Internal("the device's branch was not loaded".to_owned()))?;
    let resolution = match pick_for_device(&view.candidates, client_id) {
        Some(chosen) => match view.updates.get(&chosen.id) {
            Some(prepared) => Resolution::Update(prepared),
            // Deleted between the two reads: as if it had never been there.
            None => Resolution::OutsideRollout,
        },
        None => match &view.no_update {
            Some(message) => Resolution::Nothing(message),
            None => Resolution::OutsideRollout,
        },
    };
    Ok((view, resolution))
}

/// What the device is told, given what its branch has for it.
pub(crate) fn answer(
    request: &ManifestRequest,
    resolution: Resolution<'_>,
    signer: Option<&dyn ManifestSigner>,
    no_update_available: &SignedOnce,
) -> AppResult<ManifestAnswer> {
    let can_say_no_update = request.protocol == ProtocolVersion::V1 && request.directives_allowed;
    let no_update = || {
        no_update_available
            .body(signer)
            .map(ManifestAnswer::NoUpdateAvailable)
    };
    // Protocol 1 says "nothing for you" without an error: a directive, or
    // 204 to a client that takes only JSON. (The Android client reports a
    // 404 as a failed update check on every launch of a fresh build whose
    // runtime version has no update yet.) Protocol 0 cannot say it.
    let nothing_for_this_device = || match request.directives_allowed {
        true => no_update(),
        false => Ok(ManifestAnswer::NoContent),
    };
    let speaks_no_update = request.protocol == ProtocolVersion::V1;
    match resolution {
        Resolution::Nothing(_) if speaks_no_update => nothing_for_this_device(),
        Resolution::Nothing(message) => Err(AppError::NotFound(message.to_owned())),
        // A device outside every rollout of a branch with nothing older to
        // fall back on: "no update" where the protocol can say it.
        Resolution::OutsideRollout if speaks_no_update => nothing_for_this_device(),
        Resolution::OutsideRollout => Err(AppError::NotFound(
            "No update for this device yet: the only updates for its runtime version are in a partial rollout that does not include it.".to_owned(),
        )),
        Resolution::Update(prepared) => match prepared.update.kind {
            UpdateKind::Update => {
                let already_running = request.current_update_id.as_deref()
                    == Some(prepared.update.manifest_id.as_str());
                if can_say_no_update && already_running {
                    return no_update();
                }
                prepared.body.body(signer).map(ManifestAnswer::Update)
            }
            UpdateKind::Rollback => {
                if request.protocol == ProtocolVersion::V0 {
                    return Err(AppError::NotFound(
                        "The latest update for this runtime version is a rollback, which protocol version 0 cannot express.".to_owned(),
                    ));
                }
                if !request.directives_allowed {
                    return Err(AppError::NotAcceptable(
                        "The latest update for this runtime version is a rollback, which only a multipart/mixed response can carry.".to_owned(),
                    ));
                }
                let embedded = request.embedded_update_id.as_deref();
                if embedded.is_some() && embedded == request.current_update_id.as_deref() {
                    return no_update();
                }
                prepared
                    .body
                    .body(signer)
                    .map(ManifestAnswer::RollBackToEmbedded)
            }
        },
    }
}
