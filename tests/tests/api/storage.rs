//! The storage dimension of the harness: the server starts on local disk and on S3, and the
//! harness sees its blobs from outside.

use e2e::{Storage, all_backends};

all_backends!(server_starts_on_every_storage, |app| async move {
    app.get_anon("/healthz").await.assert_status(200);
    app.get_anon("/readyz").await.assert_status(200);

    match app.storage {
        Storage::Local => {
            assert!(app.s3.is_none());
            assert_eq!(app.blob_root(), app.data_dir().join("updates"));
            assert!(!app.env.contains_key("STORAGE_TYPE"));
        }
        Storage::S3 => {
            let s3 = app.s3.as_ref().expect("an S3 server for Storage::S3");
            assert_eq!(app.env["STORAGE_TYPE"], "s3");
            assert_eq!(app.env["S3_ENDPOINT"], s3.endpoint);
            assert_eq!(app.blob_root(), s3.bucket_dir());
            // The start-up probe went through the S3 server and cleaned up after itself:
            // nothing was written to DATA_DIR/updates.
            assert!(e2e::list_files(&app.data_dir().join("updates")).is_empty());
        }
    }
    // Nothing is stored before anything is published (the probe deletes its object).
    assert!(
        app.stored_objects().is_empty(),
        "{:?}",
        app.stored_objects()
    );
});

all_backends!(restart_keeps_the_storage, |mut app| async move {
    let before = app.blob_root();
    app.restart().await;
    app.get_anon("/readyz").await.assert_status(200);
    assert_eq!(app.blob_root(), before);
    assert!(app.stored_objects().is_empty());
});
