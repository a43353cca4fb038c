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

/// Parses `--output-dir D [--common-name N] [--validity-years Y]`.
pub fn parse_generate_args(args: &[String]) -> Result<GenerateArgs, String> {
    let mut output_dir = None;
    let mut common_name = "Expo Updates".to_owned();
    let mut validity_years = 10;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--output-dir" => output_dir = Some(PathBuf::from(value()?)),
            "--common-name" => common_name = value()?,
            "--validity-years" => {
                let raw = value()?;
                validity_years = raw
                    .parse()
                    .map_err(|_| format!("--validity-years {raw:?} is not a whole number"))?;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(GenerateArgs {
        output_dir: output_dir.ok_or("--output-dir is required")?,
        common_name,
        validity_years,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_are_parsed_and_checked() {
        assert_eq!(
            parse_generate_args(&args(&["--output-dir", "keys", "--common-name", "App"])),
            Ok(GenerateArgs {
                output_dir: PathBuf::from("keys"),
                common_name: "App".to_owned(),
                validity_years: 10,
            })
        );
        assert!(parse_generate_args(&args(&[])).is_err());
        assert!(parse_generate_args(&args(&["--output-dir"])).is_err());
        assert!(
            parse_generate_args(&args(&["--output-dir", "k", "--validity-years", "x"])).is_err()
        );
        assert!(parse_generate_args(&args(&["--output-dir", "k", "--bogus"])).is_err());
    }
}
