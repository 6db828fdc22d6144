//! The TLS client certificate verifier of the MQTT listeners, over the current sets of the
//! certificate service: a certificate that is registered and ACTIVE is accepted as it is (also
//! one registered without a CA: the client proves it holds the key in the handshake); any
//! other must chain to Ferrite's CA, a `tls.ca_files` CA or an ACTIVE registered CA
//! certificate. Whether it may then connect is decided on CONNECT ([`crate::connect`]): an
//! unregistered certificate cannot.

use crate::Authz;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The verifier; its chain verifier is rebuilt when the ACTIVE CA certificates change.
pub struct DynamicClientVerifier {
    authz: Arc<Authz>,
    static_roots: Vec<CertificateDer<'static>>,
    mandatory: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: Mutex<(u64, Arc<dyn ClientCertVerifier>)>,
}

impl std::fmt::Debug for DynamicClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicClientVerifier").field("static_roots", &self.static_roots.len()).field("mandatory", &self.mandatory).finish()
    }
}

impl DynamicClientVerifier {
    /// The handshake signature of an X.509 v1 certificate (as AWS's documented `openssl x509
    /// -req` flow makes them), which webpki refuses to read: checked with the certificate's key
    /// directly. Only a registered ACTIVE v1 certificate gets this far ([`Self::verify_client_cert`]
    /// accepts v1 certificates only when registered); any other keeps webpki's error.
    fn verify_v1(&self, webpki: rustls::Error, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !identity::x509::is_v1(cert) || !self.authz.is_registered_active(&identity::certificate_id(cert)) {
            return Err(webpki);
        }
        let algorithms = self.provider.signature_verification_algorithms.mapping.iter().find(|(s, _)| *s == dss.scheme).map(|(_, a)| *a).unwrap_or(&[]);
        if identity::x509::verify_signature_with_cert_key(cert, algorithms, message, dss.signature()) {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
        }
    }

    /// A verifier trusting `static_roots` (Ferrite's CA and configured CA files) plus the ACTIVE
    /// registered CA certificates; `mandatory`: connections without a certificate fail the
    /// handshake.
    pub fn new(authz: Arc<Authz>, static_roots: Vec<CertificateDer<'static>>, mandatory: bool) -> Result<DynamicClientVerifier, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let generation = authz.trust_generation();
        let inner = build(&authz, &static_roots, &provider)?;
        Ok(DynamicClientVerifier { authz, static_roots, mandatory, provider, current: Mutex::new((generation, inner)) })
    }

    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        // Taken on Tokio workers during handshakes; a rebuild reads the CAs, which may wait
        // for the database.
        let mut cur = store::state::lock_waiting(&self.current);
        let generation = self.authz.trust_generation();
        if cur.0 != generation {
            match build(&self.authz, &self.static_roots, &self.provider) {
                Ok(v) => *cur = (generation, v),
                Err(e) => tracing::error!(error = %e, "rebuilding the client certificate verifier failed; keeping the previous one"),
            }
        }
        cur.1.clone()
    }
}

fn build(
    authz: &Authz,
    static_roots: &[CertificateDer<'static>],
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    for c in static_roots {
        roots.add(c.clone())?;
    }
    for der in authz.active_ca_ders() {
        if let Err(e) = roots.add(CertificateDer::from(der)) {
            tracing::warn!(error = %e, "a registered CA certificate cannot be a trust anchor");
        }
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| rustls::Error::General(format!("client certificate verifier: {e}")))
}

impl ClientCertVerifier for DynamicClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The set changes at run time; an empty list tells clients to send whatever they have.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.authz.is_registered_active(&identity::certificate_id(end_entity)) {
            return Ok(ClientCertVerified::assertion());
        }
        self.inner().verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
            .or_else(|e| self.verify_v1(e, message, cert, dss))
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
            .or_else(|e| self.verify_v1(e, message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixture;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn registered_certificates_and_known_chains_pass() {
        let f = fixture();
        let a = &f.authz;
        let v = DynamicClientVerifier::new(a.clone(), vec![a.pki.ca_der.clone()], true).unwrap();
        let now = UnixTime::now();
        // Chains to Ferrite's CA: accepted at the handshake (CONNECT decides on registration).
        let (pem, _) = a.pki.issue_client("d1").unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert!(v.verify_client_cert(&der, &[], now).is_ok());
        // Another CA: refused until registered without a CA, then accepted while ACTIVE.
        let dir = f.dir.join("other");
        std::fs::create_dir_all(&dir).unwrap();
        let (other, _) = identity::Pki::load_or_create(&dir).unwrap();
        let (stranger, _) = other.issue_client("stranger").unwrap();
        let sder = CertificateDer::from_pem_slice(stranger.as_bytes()).unwrap();
        assert!(v.verify_client_cert(&sder, &[], now).is_err());
        let c = a.register_certificate_without_ca(&stranger, Some("ACTIVE")).unwrap();
        assert!(v.verify_client_cert(&sder, &[], now).is_ok());
        a.update_certificate(&c.id, "INACTIVE").unwrap();
        assert!(v.verify_client_cert(&sder, &[], now).is_err());
        assert!(v.client_auth_mandatory());
    }
}
