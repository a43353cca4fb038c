//! Health probes for load balancers and orchestrators.

use poem::handler;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use serde_json::{Value, json};

use crate::state::Services;

/// Alive: the process serves requests.
#[handler]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database answers. 503 otherwise, so traffic goes elsewhere.
#[handler]
pub async fn readyz(services: Data<&Services>) -> (StatusCode, Json<Value>) {
    match services.health.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "Database unavailable." })),
            )
        }
    }
}
