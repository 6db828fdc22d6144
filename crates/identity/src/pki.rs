//! Ferrite's certificate authority: created on first start under the data directory (or read back),
//! and the server certificate it signs for the TLS listeners.

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A certificate or key problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no usable {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("creating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The CA: its certificate (PEM and DER) and signing key.
pub struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    ca_key: KeyPair,
}

/// A certificate chain and key for a TLS listener.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Where the files are (created or given).
    pub cert_path: PathBuf,
}

/// What Ferrite knows of a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// AWS IoT's certificate id: hex SHA-256 of the DER.
    pub id: String,
    /// The subject as an RFC 4514 string (`CN=thing1,O=Acme`).
    pub subject: String,
    pub der: Vec<u8>,
}

impl CertFacts {
    /// Reads the facts of a DER certificate (`None` if it does not parse).
    pub fn from_der(der: &[u8]) -> Option<CertFacts> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(CertFacts { id: certificate_id(der), subject: cert.subject().to_string(), der: der.to_vec() })
    }
}

/// AWS IoT's certificate id: the lowercase hex SHA-256 of the DER encoding.
pub fn certificate_id(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read { path: path.into(), source })
}

fn write_private(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    let err = |source| PkiError::Write { path: path.into(), source };
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let text = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(text.as_bytes()).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(PkiError::Pem { path: path.into(), what: "certificate" });
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let text = read(path)?;
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|_| PkiError::Pem { path: path.into(), what: "private key" })
}

impl Pki {
    /// Reads `ca.pem`/`ca.key` from `dir`, or creates them (ECDSA P-256, ten years). The bool
    /// is true when they were created now.
    pub fn load_or_create(dir: &Path) -> Result<(Pki, bool), PkiError> {
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        if cert_path.exists() {
            let ca_pem = read(&cert_path)?;
            let ca_key = KeyPair::from_pem(&read(&key_path)?)?;
            let ca_der = load_certs(&cert_path)?.remove(0);
            return Ok((Pki { ca_pem, ca_der, ca_key }, false));
        }
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Ferrite Root CA");
        dn.push(DnType::OrganizationName, "Ferrite");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let ca_key = KeyPair::generate()?;
        let cert = params.self_signed(&ca_key)?;
        write_private(&key_path, &ca_key.serialize_pem(), 0o600)?;
        write_private(&cert_path, &cert.pem(), 0o600)?;
        Ok((Pki { ca_pem: cert.pem(), ca_der: cert.der().clone(), ca_key }, true))
    }

    pub(crate) fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Ok(Issuer::from_ca_cert_der(&self.ca_der, &self.ca_key)?)
    }

    /// Reads `server.pem`/`server.key` from `dir`, or issues them for `names` (DNS names and
    /// IP addresses) signed by the CA.
    pub fn server_cert(&self, dir: &Path, names: &[String]) -> Result<ServerCert, PkiError> {
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        if !cert_path.exists() {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.subject_alt_names = names
                .iter()
                .map(|n| match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => n.clone().try_into().map(SanType::DnsName),
                })
                .collect::<Result<_, _>>()?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, names.first().cloned().unwrap_or_else(|| "ferrite".into()));
            params.distinguished_name = dn;
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2049, 12, 31);
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &self.issuer()?)?;
            write_private(&key_path, &key.serialize_pem(), 0o600)?;
            write_private(&cert_path, &format!("{}{}", cert.pem(), self.ca_pem), 0o600)?;
        }
        Self::files(&cert_path, &key_path)
    }

    /// A certificate chain and key from given files.
    pub fn files(cert_path: &Path, key_path: &Path) -> Result<ServerCert, PkiError> {
        Ok(ServerCert { chain: load_certs(cert_path)?, key: load_key(key_path)?, cert_path: cert_path.into() })
    }

    /// Issues a client certificate (ECDSA P-256) with this common name; returns (cert PEM,
    /// key PEM). Used by tests and by the admin CLI until the certificate API exists.
    pub fn issue_client(&self, common_name: &str) -> Result<(String, String), PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_and_signs_server_and_client_certs() {
        let dir = std::env::temp_dir().join(format!("ferrite-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (pki, created) = Pki::load_or_create(&dir).unwrap();
        assert!(created);
        let (again, created) = Pki::load_or_create(&dir).unwrap();
        assert!(!created);
        assert_eq!(pki.ca_pem, again.ca_pem);
        let server = again.server_cert(&dir, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(server.chain.len(), 2);
        let (cert, _key) = again.issue_client("thing-1").unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let facts = CertFacts::from_der(&der).unwrap();
        assert_eq!(facts.subject, "CN=thing-1");
        assert_eq!(facts.id.len(), 64);
        assert_eq!(facts.id, certificate_id(&der));
    }
}
