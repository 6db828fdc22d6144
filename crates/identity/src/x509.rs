//! X.509 for the certificate API: RSA 2048 key pairs (as AWS IoT's CreateKeysAndCertificate
//! makes them), certificates issued by Ferrite's CA for a key or a CSR, reading a certificate
//! (validity, CA flag, issuer/subject), checking who signed it, and the AWS IoT certificate
//! policy variables (`iot:Certificate.Subject.CommonName`, ...).

use crate::Pki;
use rcgen::{CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use std::collections::BTreeMap;
use x509_parser::prelude::*;

/// Why a certificate, key or CSR cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("{0}")]
    Invalid(String),
    #[error("creating a certificate: {0}")]
    Generate(String),
}

/// A key pair in PEM: SubjectPublicKeyInfo and the PKCS#1 RSA private key (what AWS returns).
#[derive(Debug, Clone)]
pub struct KeyPairPem {
    pub public_key: String,
    pub private_key: String,
}

/// A certificate Ferrite issued: its PEM and DER.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    pub der: Vec<u8>,
}

/// What the certificate API needs to know of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub der: Vec<u8>,
    /// Hex SHA-256 of the DER.
    pub id: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// Basic constraints say CA.
    pub is_ca: bool,
    /// The raw DER of the issuer and subject names (to find a certificate's CA).
    pub issuer_raw: Vec<u8>,
    pub subject_raw: Vec<u8>,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
}

impl CertInfo {
    /// Whether the certificate is valid at `now_ms`.
    pub fn valid_at(&self, now_ms: i64) -> bool {
        self.not_before_ms <= now_ms && now_ms <= self.not_after_ms
    }

    /// Whether it is self-signed (issuer = subject).
    pub fn self_issued(&self) -> bool {
        self.issuer_raw == self.subject_raw
    }
}

/// The DER of the first certificate in a PEM text.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, X509Error> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .ok_or_else(|| X509Error::Invalid("The certificate is not a valid PEM-encoded X.509 certificate.".into()))
}

/// Whether `signature` is a valid RSA PKCS#1 v1.5 SHA-256 signature of `data` by the public key
/// in `public_key_pem` (a `PUBLIC KEY` PEM, or a certificate's key). AWS IoT custom authorizers
/// sign tokens this way.
pub fn verify_rsa_sha256(public_key_pem: &str, data: &[u8], signature: &[u8]) -> bool {
    use rustls::pki_types::SubjectPublicKeyInfoDer;
    let spki_der = match SubjectPublicKeyInfoDer::from_pem_slice(public_key_pem.as_bytes()) {
        Ok(d) => d.to_vec(),
        Err(_) => match pem_to_der(public_key_pem).ok().and_then(|c| X509Certificate::from_der(&c).ok().map(|(_, c)| c.public_key().raw.to_vec())) {
            Some(d) => d,
            None => return false,
        },
    };
    let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(&spki_der) else { return false };
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, spki.subject_public_key.data.as_ref());
    key.verify(data, signature).is_ok()
}

/// A DER certificate as PEM.
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn time_ms(t: ASN1Time) -> i64 {
    t.timestamp().saturating_mul(1000)
}

/// Whether a certificate (DER) is an X.509 version 1 certificate (no extensions: what
/// `openssl x509 -req` makes without an extensions file). webpki refuses these outright.
pub fn is_v1(der: &[u8]) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, c)| c.version() == X509Version::V1)
}

/// Checks a TLS handshake signature made with the key of a certificate (DER) that webpki will
/// not read (an X.509 v1 certificate): `algorithms` are the verification algorithms of the
/// negotiated signature scheme; the certificate's subject public key is tried with each.
pub fn verify_signature_with_cert_key(
    der: &[u8],
    algorithms: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else { return false };
    let key = &cert.public_key().subject_public_key.data;
    algorithms.iter().any(|alg| alg.verify_signature(key, message, signature).is_ok())
}

/// Reads a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, X509Error> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| X509Error::Invalid(format!("The certificate cannot be parsed: {e}")))?;
    if !rest.is_empty() {
        return Err(X509Error::Invalid("The certificate has trailing data.".into()));
    }
    Ok(CertInfo {
        der: der.to_vec(),
        id: crate::certificate_id(der),
        not_before_ms: time_ms(cert.validity().not_before),
        not_after_ms: time_ms(cert.validity().not_after),
        is_ca: cert.is_ca(),
        issuer_raw: cert.issuer().as_raw().to_vec(),
        subject_raw: cert.subject().as_raw().to_vec(),
        common_name: cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_string),
    })
}

/// Whether `cert_der` carries a valid signature by the key of `ca_der`.
pub fn signed_by(cert_der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) = (X509Certificate::from_der(cert_der), X509Certificate::from_der(ca_der)) else { return false };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// Generates an RSA 2048 key pair.
pub fn rsa_key_pair() -> Result<(KeyPairPem, KeyPair), X509Error> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let gen_err = |e: &dyn std::fmt::Display| X509Error::Generate(e.to_string());
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).map_err(|e| gen_err(&e))?;
    let private_key = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| gen_err(&e))?.to_string();
    let public_key = key.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| gen_err(&e))?;
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| gen_err(&e))?;
    let pair = KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).map_err(|e| gen_err(&e))?;
    Ok((KeyPairPem { public_key, private_key }, pair))
}

/// AWS IoT's certificates end at the last second of 2049.
fn device_params(dn: DistinguishedName) -> Result<CertificateParams, X509Error> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| X509Error::Generate(e.to_string()))?;
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // A minute back, for clocks a little behind ours.
    params.not_before = ::time::OffsetDateTime::from_unix_timestamp(now.saturating_sub(60) as i64).unwrap_or(rcgen::date_time_ymd(2024, 1, 1));
    params.not_after = rcgen::date_time_ymd(2049, 12, 31) + ::time::Duration::seconds(86_399);
    params.serial_number = Some(random_serial());
    Ok(params)
}

fn random_serial() -> rcgen::SerialNumber {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&b)
}

impl Pki {
    /// Issues a device certificate for `key` with AWS's subject (`CN=AWS IoT Certificate`).
    pub fn issue_for_key(&self, key: &KeyPair) -> Result<Issued, X509Error> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "AWS IoT Certificate");
        let params = device_params(dn)?;
        let issuer = self.issuer().map_err(|e| X509Error::Generate(e.to_string()))?;
        let cert = params.signed_by(key, &issuer).map_err(|e| X509Error::Generate(e.to_string()))?;
        Ok(Issued { pem: cert.pem(), der: cert.der().to_vec() })
    }

    /// Issues a device certificate for a certificate signing request (PEM): its subject and
    /// public key, Ferrite's validity and extensions.
    pub fn issue_from_csr(&self, csr_pem: &str) -> Result<Issued, X509Error> {
        let bad = |what: &str| X509Error::Invalid(format!("The certificate signing request is not valid: {what}"));
        let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes()).map_err(|_| bad("not a PEM-encoded CSR"))?;
        let csr = CertificateSigningRequestParams::from_der(&der).map_err(|e| bad(&e.to_string()))?;
        let params = device_params(csr.params.distinguished_name.clone())?;
        let issuer = self.issuer().map_err(|e| X509Error::Generate(e.to_string()))?;
        let cert = params.signed_by(&csr.public_key, &issuer).map_err(|e| X509Error::Generate(e.to_string()))?;
        Ok(Issued { pem: cert.pem(), der: cert.der().to_vec() })
    }
}

/// The name attributes AWS IoT exposes as policy variables, by OID.
const NAME_ATTRIBUTES: &[(&str, &str)] = &[
    ("2.5.4.3", "CommonName"),
    ("2.5.4.6", "Country"),
    ("2.5.4.10", "Organization"),
    ("2.5.4.11", "OrganizationalUnit"),
    ("2.5.4.8", "State"),
    ("2.5.4.5", "SerialNumber"),
    ("2.5.4.12", "Title"),
    ("2.5.4.4", "Surname"),
    ("2.5.4.42", "GivenName"),
    ("2.5.4.43", "Initials"),
    ("2.5.4.65", "Pseudonym"),
    ("2.5.4.44", "GenerationQualifier"),
    ("2.5.4.46", "DistinguishedNameQualifier"),
];

/// At most this many values of a multi-valued attribute are kept (AWS: five).
const MAX_VALUES: usize = 5;
/// Longer values are not substituted (AWS: 1024 characters).
const MAX_LEN: usize = 1024;

fn add_values(vars: &mut BTreeMap<String, String>, prefix: &str, values: &[String]) {
    let values: Vec<&String> = values.iter().take(MAX_VALUES).collect();
    // A value with wildcard characters, or too long, is not substituted (AWS's rule).
    let usable = |v: &str| v.len() <= MAX_LEN && !v.contains(['*', '?']);
    if let Some(first) = values.first()
        && usable(first)
    {
        vars.insert(prefix.to_string(), first.to_string());
    }
    for (i, v) in values.iter().enumerate() {
        if usable(v) {
            vars.insert(format!("{prefix}.{i}"), v.to_string());
        }
    }
    if values.len() == 1 && usable(values[0]) {
        vars.insert(format!("{prefix}.List"), values[0].to_string());
    }
}

fn name_vars(vars: &mut BTreeMap<String, String>, prefix: &str, name: &X509Name) {
    for (oid, label) in NAME_ATTRIBUTES {
        let values: Vec<String> =
            name.iter_attributes().filter(|a| a.attr_type().to_id_string() == *oid).filter_map(|a| a.as_str().ok().map(str::to_string)).collect();
        add_values(vars, &format!("{prefix}.{label}"), &values);
    }
}

fn alt_name_vars(vars: &mut BTreeMap<String, String>, prefix: &str, names: &[GeneralName]) {
    let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for n in names {
        let (kind, value) = match n {
            GeneralName::RFC822Name(s) => ("RFC822Name", s.to_string()),
            GeneralName::DNSName(s) => ("DNSName", s.to_string()),
            GeneralName::URI(s) => ("UniformResourceIdentifier", s.to_string()),
            GeneralName::DirectoryName(d) => ("DirectoryName", d.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => ("IPAddress", std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    ("IPAddress", std::net::Ipv6Addr::from(a).to_string())
                }
                _ => continue,
            },
            _ => continue,
        };
        by_kind.entry(kind).or_default().push(value);
    }
    for (kind, values) in by_kind {
        add_values(vars, &format!("{prefix}.AlternativeName.{kind}"), &values);
    }
}

/// The certificate policy variables of a DER certificate (`iot:Certificate.Subject.CommonName`,
/// `...Subject.Organization.1`, `...Issuer.*`, `...AlternativeName.*`, `iot:Certificate.SerialNumber`,
/// `iot:Certificate.AvailableKeys`). Empty when it does not parse.
pub fn policy_variables(der: &[u8]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let Ok((_, cert)) = X509Certificate::from_der(der) else { return vars };
    name_vars(&mut vars, "iot:Certificate.Subject", cert.subject());
    name_vars(&mut vars, "iot:Certificate.Issuer", cert.issuer());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        alt_name_vars(&mut vars, "iot:Certificate.Subject", &san.value.general_names);
    }
    for ext in cert.iter_extensions() {
        if let ParsedExtension::IssuerAlternativeName(ian) = ext.parsed_extension() {
            alt_name_vars(&mut vars, "iot:Certificate.Issuer", &ian.general_names);
        }
    }
    vars.insert("iot:Certificate.SerialNumber".into(), cert.serial.to_string());
    let keys: Vec<&str> = vars
        .keys()
        .filter_map(|k| k.strip_prefix("iot:"))
        .filter(|k| !k.ends_with(".List") && k.rsplit('.').next().is_none_or(|l| l.parse::<usize>().is_err()))
        .collect();
    let available = keys.join(",");
    vars.insert("iot:Certificate.AvailableKeys".into(), available);
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pki() -> (std::path::PathBuf, Pki) {
        let dir = std::env::temp_dir().join(format!("ferrite-x509-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (pki, _) = Pki::load_or_create(&dir).unwrap();
        (dir, pki)
    }

    #[test]
    fn rsa_keys_get_certificates_signed_by_the_ca() {
        let (dir, pki) = pki();
        let (pems, key) = rsa_key_pair().unwrap();
        assert!(pems.private_key.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(pems.public_key.starts_with("-----BEGIN PUBLIC KEY-----"));
        let issued = pki.issue_for_key(&key).unwrap();
        assert_eq!(pem_to_der(&issued.pem).unwrap(), issued.der);
        assert_eq!(pem_to_der(&der_to_pem(&issued.der)).unwrap(), issued.der);
        let info = cert_info(&issued.der).unwrap();
        assert!(!info.is_ca);
        assert_eq!(info.common_name.as_deref(), Some("AWS IoT Certificate"));
        assert!(info.valid_at(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64));
        assert_eq!(info.not_after_ms, 2_524_607_999_000);
        assert!(signed_by(&issued.der, &pki.ca_der));
        let ca = cert_info(&pki.ca_der).unwrap();
        assert!(ca.is_ca && ca.self_issued());
        assert_eq!(info.issuer_raw, ca.subject_raw);
        let vars = policy_variables(&issued.der);
        assert_eq!(vars["iot:Certificate.Subject.CommonName"], "AWS IoT Certificate");
        assert_eq!(vars["iot:Certificate.Issuer.Organization"], "Ferrite");
        assert!(vars["iot:Certificate.AvailableKeys"].contains("Certificate.Subject.CommonName"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn csrs_keep_their_subject_and_bad_input_is_refused() {
        let (dir, pki) = pki();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "sensor-*");
        params.distinguished_name.push(DnType::OrganizationName, "Acme");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let issued = pki.issue_from_csr(&csr).unwrap();
        let vars = policy_variables(&issued.der);
        assert_eq!(vars["iot:Certificate.Subject.Organization"], "Acme");
        // A wildcard in a value: not substituted.
        assert!(!vars.contains_key("iot:Certificate.Subject.CommonName"));
        assert!(matches!(pki.issue_from_csr("nonsense"), Err(X509Error::Invalid(_))));
        assert!(pem_to_der("nonsense").is_err());
        let other = KeyPair::generate().unwrap();
        assert!(!signed_by(&issued.der, params.self_signed(&other).unwrap().der()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
