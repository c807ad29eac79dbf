//! Keys and certificates read from files for the `smime` and `keyring` commands: PEM
//! blocks, a .p12, a PEM certificate with its PKCS#8 key.

use std::path::Path;

use der::Decode;

use crate::{read_secret_file, usage, Failure};

/// Every PEM block with `label` in `text`, as DER; DER input is one item.
pub(crate) fn pem_blocks(bytes: &[u8], label: &str, what: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("-----BEGIN") {
        return Ok(vec![bytes.to_vec()]);
    }
    let mut out = Vec::new();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let after = rest.get(start..).unwrap_or_default();
        let stop = after.find(&end).ok_or_else(|| usage(format!("{}: an unterminated PEM block", what.display())))?;
        let block = after.get(..stop + end.len()).unwrap_or_default();
        let (_, der) =
            der::pem::decode_vec(block.as_bytes()).map_err(|e| usage(format!("{}: bad PEM ({e})", what.display())))?;
        out.push(der);
        rest = after.get(stop + end.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(usage(format!("{} holds no {label}", what.display())));
    }
    Ok(out)
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
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

/// Reads a .p12 (every kind our reader knows); a wrong password is a refusal (exit 1).
pub(crate) fn read_p12(path: &Path, password_file: &Path) -> Result<Identity, Failure> {
    let password = read_secret_file(password_file, "password")?;
    let bytes = std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let contents = certdesk_pki::pkcs12::read(&bytes, &password).map_err(|e| match e {
        certdesk_pki::pkcs12::Error::WrongPassword { .. } => Failure { code: 1, message: e.to_string() },
        other => usage(format!("{}: {other}", path.display())),
    })?;
    let key_pkcs8 = contents.key_pkcs8_der.ok_or_else(|| usage(format!("{} holds no private key", path.display())))?;
    let cert = contents.leaf.ok_or_else(|| usage(format!("{} holds no certificate", path.display())))?;
    let others = contents.certificates.into_iter().filter(|c| *c != cert).collect();
    Ok(Identity { key_pkcs8, cert, others })
}

/// Reads a PEM certificate and a PEM PKCS#8 key (from one file or two).
pub(crate) fn read_pem_identity(cert_path: &Path, key_path: &Path) -> Result<Identity, Failure> {
    let cert = read_certs(cert_path)?.into_iter().next().ok_or_else(|| usage("no certificate"))?;
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(key_path).map_err(|e| usage(format!("cannot read {}: {e}", key_path.display())))?,
    );
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY") {
        return Err(usage(format!(
            "{} is a traditional key; convert it: openssl pkcs8 -topk8 -nocrypt -in KEY -out key.p8.pem",
            key_path.display()
        )));
    }
    let key_pkcs8 =
        zeroize::Zeroizing::new(pem_blocks(&bytes, "PRIVATE KEY", key_path)?.into_iter().next().unwrap_or_default());
    Ok(Identity { key_pkcs8, cert, others: Vec::new() })
}
