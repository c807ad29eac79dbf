//! Keys and certificates read from files for the `smime` and `keyring` commands: PEM
//! blocks, a .p12, a PEM certificate with its PKCS#8 key.

use std::path::Path;

use der::Decode;

use crate::{usage, Failure};

/// Every PEM block with `label` in `bytes` (explanatory text and a byte order mark
/// around the blocks are fine: `certdesk_pki::pem`); DER input is one item.
pub(crate) fn pem_blocks(bytes: &[u8], label: &str, what: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    if !certdesk_pki::pem::is_pem(bytes) {
        return Ok(vec![bytes.to_vec()]);
    }
    certdesk_pki::pem::decode_labelled(bytes, &[label]).map_err(|e| usage(format!("{}: {e}", what.display())))
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = crate::read_file(path, "certificates")?;
    let certs = pem_blocks(&bytes, "CERTIFICATE", path)?;
    for cert in &certs {
        x509_cert::Certificate::from_der(cert)
            .map_err(|e| usage(format!("{} holds something that is not a certificate ({e})", path.display())))?;
    }
    Ok(certs)
}

/// A private key (PKCS#8) with its certificate, and any other certificates that came with it.
pub(crate) struct Identity {
    pub(crate) key_pkcs8: zeroize::Zeroizing<Vec<u8>>,
    pub(crate) cert: Vec<u8>,
    pub(crate) others: Vec<Vec<u8>>,
}

/// Reads a .p12 (every kind our reader knows) with the password in `password_file`;
/// an empty password file opens a .p12 without a password. A wrong password is a
/// refusal (exit 1).
pub(crate) fn read_p12(path: &Path, password_file: &Path) -> Result<Identity, Failure> {
    read_p12_with(path, Some(password_file))
}

/// [`read_p12`]; without a password file, the .p12 is read as one without a password.
pub(crate) fn read_p12_with(path: &Path, password_file: Option<&Path>) -> Result<Identity, Failure> {
    let bytes = crate::read_file(path, ".p12")?;
    p12_identity(&bytes, path, password_file)
}

/// [`read_p12_with`] for the bytes of `path`, read already.
pub(crate) fn p12_identity(bytes: &[u8], path: &Path, password_file: Option<&Path>) -> Result<Identity, Failure> {
    p12_identities(bytes, path, password_file)?
        .into_iter()
        .next()
        .ok_or_else(|| usage(format!("{} holds no private key", path.display())))
}

/// Every key of a .p12 with its certificate (a keyring's export of every key holds
/// several); `others` are the certificates that belong to no key (the CA
/// certificates). At least one; a key without its certificate is an error.
pub(crate) fn p12_identities(
    bytes: &[u8],
    path: &Path,
    password_file: Option<&Path>,
) -> Result<Vec<Identity>, Failure> {
    let password = match password_file {
        Some(file) => read_p12_password(file)?,
        None => zeroize::Zeroizing::new(String::new()),
    };
    let refused = |message: String| Failure { error: None, code: 1, message: format!("{}: {message}", path.display()) };
    let contents = certdesk_pki::pkcs12::read(bytes, &password).map_err(|e| match (e, password_file) {
        (certdesk_pki::pkcs12::Error::WrongPassword { .. }, None) => {
            refused("the .p12 is protected by a password: give it with --password-file".into())
        }
        (certdesk_pki::pkcs12::Error::WrongPassword { .. }, Some(file)) if password.is_empty() => {
            refused(format!("the .p12 is protected by a password, and the password file {} is empty", file.display()))
        }
        (e @ certdesk_pki::pkcs12::Error::WrongPassword { .. }, Some(_)) => refused(e.to_string()),
        (e @ certdesk_pki::pkcs12::Error::FileHasNoPassword, _) => refused(format!("{e}; give an empty password file")),
        (other, _) => usage(format!("{}: {other}", path.display())),
    })?;
    if contents.pairs.is_empty() {
        return Err(usage(format!("{} holds no private key", path.display())));
    }
    let leaves: Vec<Vec<u8>> = contents.pairs.iter().filter_map(|p| p.leaf.clone()).collect();
    let cas: Vec<Vec<u8>> = contents.certificates.into_iter().filter(|c| !leaves.contains(c)).collect();
    let single = contents.pairs.len() == 1;
    contents
        .pairs
        .into_iter()
        .enumerate()
        .map(|(i, pair)| {
            let name = pair.friendly_name.clone().unwrap_or_else(|| format!("key {}", i + 1));
            let cert = pair
                .leaf
                .ok_or_else(|| usage(format!("{} holds no certificate for its key {name:?}", path.display())))?;
            // One key: every other certificate came with it. Several: each key gets the
            // CA certificates on its own issuer path.
            let others = if single { cas.clone() } else { issuer_path(&cert, &cas) };
            Ok(Identity { key_pkcs8: pair.key_pkcs8_der, cert, others })
        })
        .collect()
}

/// The certificates of `pool` on `leaf`'s issuer path (issuer first), by names.
fn issuer_path(leaf: &[u8], pool: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let parse = |der: &[u8]| x509_cert::Certificate::from_der(der).ok();
    let mut path = Vec::new();
    let Some(mut current) = parse(leaf) else { return path };
    while path.len() < 8 {
        let issuer = current.tbs_certificate().issuer().clone();
        if current.tbs_certificate().subject() == &issuer {
            break;
        }
        let next = pool
            .iter()
            .find(|der| !path.contains(*der) && parse(der).is_some_and(|c| c.tbs_certificate().subject() == &issuer));
        let Some(next) = next else { break };
        path.push(next.clone());
        match parse(next) {
            Some(cert) => current = cert,
            None => break,
        }
    }
    path
}

/// The first line of a .p12 password file, which may be empty (a .p12 without a
/// password); a trailing `\n` or `\r\n` is not part of the password.
fn read_p12_password(path: &Path) -> Result<zeroize::Zeroizing<String>, Failure> {
    let bytes = zeroize::Zeroizing::new(crate::read_file(path, "password file")?);
    let text = std::str::from_utf8(&bytes).map_err(|_| usage("the password file is not UTF-8"))?;
    Ok(zeroize::Zeroizing::new(text.lines().next().unwrap_or("").to_string()))
}

/// Reads a PEM certificate and a PEM PKCS#8 key (from one file or two).
pub(crate) fn read_pem_identity(cert_path: &Path, key_path: &Path) -> Result<Identity, Failure> {
    let cert = read_certs(cert_path)?.into_iter().next().ok_or_else(|| usage("no certificate"))?;
    let bytes = zeroize::Zeroizing::new(crate::read_file(key_path, "private key")?);
    pem_key_identity(cert, &bytes, key_path)
}

/// A PEM PKCS#8 key read from `key_path` (its bytes), with its certificate.
pub(crate) fn pem_key_identity(cert: Vec<u8>, bytes: &[u8], key_path: &Path) -> Result<Identity, Failure> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY") {
        return Err(usage(format!(
            "{} is a traditional key; convert it: openssl pkcs8 -topk8 -nocrypt -in KEY -out key.p8.pem",
            key_path.display()
        )));
    }
    let key_pkcs8 =
        zeroize::Zeroizing::new(pem_blocks(bytes, "PRIVATE KEY", key_path)?.into_iter().next().unwrap_or_default());
    Ok(Identity { key_pkcs8, cert, others: Vec::new() })
}
