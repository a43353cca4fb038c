//! Health probes for load balancers and orchestrators.

use poem::handler;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use serde_json::{Value, json};

use application::Services;

/// A key no blob ever has: asking whether it exists is a cheap round trip
/// (one HEAD on S3) that fails only when the storage is unreachable.
const STORAGE_PROBE_KEY: &str = "staging/readiness-probe";

/// Alive: the process serves requests.
#[handler]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database and the storage answer. 503 otherwise, naming the
/// one that does not, so traffic goes elsewhere until it recovers (the
/// server reconnects by itself; nothing needs a restart).
#[handler]
pub async fn readyz(services: Data<&Services>) -> (StatusCode, Json<Value>) {
    let (database, storage) = tokio::join!(
        services.health.ping(),
        services.blobs.exists(STORAGE_PROBE_KEY)
    );
    let state = |ok: bool| if ok { "ok" } else { "unavailable" };
    if let Err(error) = &database {
        tracing::warn!(%error, "readiness: database unavailable");
    }
    if let Err(error) = &storage {
        tracing::warn!(%error, "readiness: storage unavailable");
    }
    let (database, storage) = (database.is_ok(), storage.is_ok());
    let details = json!({ "database": state(database), "storage": state(storage) });
    if database && storage {
        let mut body = details;
        body["status"] = json!("ready");
        return (StatusCode::OK, Json(body));
    }
    let mut body = details;
    body["error"] = json!(match (database, storage) {
        (false, false) => "Database and storage unavailable.",
        (false, true) => "Database unavailable.",
        _ => "Storage unavailable.",
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}
