//! `expo-updates-server codesigning generate`: writes a new Expo
//! code-signing key and certificate, so that setting up signed updates needs
//! nothing but this binary.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file names written, as `npx expo-updates codesigning:generate` names them.
pub const KEY_FILE: &str = "private-key.pem";
pub const CERTIFICATE_FILE: &str = "certificate.pem";

/// What `codesigning generate` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateArgs {
    pub output_dir: PathBuf,
    pub common_name: String,
    pub validity_years: u32,
}

/// Generates and writes the key (mode 0600) and certificate; refuses to
/// overwrite existing files. Returns what to tell the user.
pub fn generate(args: &GenerateArgs) -> Result<String, String> {
    let identity =
        adapter_crypto::generate_code_signing_identity(&args.common_name, args.validity_years)
            .map_err(|error| error.to_string())?;
    std::fs::create_dir_all(&args.output_dir)
        .map_err(|error| format!("cannot create {}: {error}", args.output_dir.display()))?;
    let key_path = args.output_dir.join(KEY_FILE);
    let certificate_path = args.output_dir.join(CERTIFICATE_FILE);
    for path in [&key_path, &certificate_path] {
        if path.exists() {
            return Err(format!("{} exists; not overwriting it", path.display()));
        }
    }
    write_new(&key_path, &identity.private_key_pem, 0o600)?;
    write_new(&certificate_path, &identity.certificate_pem, 0o644)?;
    Ok(format!(
        "Wrote {key} (keep it secret) and {cert}.\n\
         Server: PRIVATE_KEY={key} PRIVATE_KEY_ID=main\n\
         App config: \"updates\": {{\"codeSigningCertificate\": \"./{cert_name}\", \
         \"codeSigningMetadata\": {{\"keyid\": \"main\", \"alg\": \"rsa-v1_5-sha256\"}}}}",
        key = key_path.display(),
        cert = certificate_path.display(),
        cert_name = CERTIFICATE_FILE,
    ))
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}
