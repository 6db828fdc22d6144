//! CA certificates: GetRegistrationCode / DeleteRegistrationCode, RegisterCACertificate with
//! AWS's verification-certificate check (signed by the CA's key, common name = the account's
//! registration code), DescribeCACertificate, ListCACertificates, UpdateCACertificate and
//! DeleteCACertificate. Deactivating a CA closes the connections of the certificates it signed.

use crate::certs::{check_id, hex, read_pem};
use crate::error::{AuthzError, Result, invalid, not_found};
use crate::state::{CaCertificate, Change};
use crate::{Authz, Page, now_ms, random_hex};
use identity::x509;

/// At most this many registered CA certificates may share a subject (AWS: 10).
pub const MAX_SAME_SUBJECT: usize = 10;

/// RegisterCACertificate's input.
#[derive(Debug, Clone, Default)]
pub struct NewCa {
    pub ca_pem: String,
    pub verification_pem: Option<String>,
    pub set_as_active: bool,
    pub allow_auto_registration: bool,
    pub registration_config: Option<serde_json::Value>,
    pub tags: Vec<(String, String)>,
    /// `DEFAULT` (absent) or `SNI_ONLY`.
    pub mode: Option<String>,
}

/// UpdateCACertificate's input.
#[derive(Debug, Clone, Default)]
pub struct CaUpdate {
    pub new_status: Option<String>,
    pub new_auto_registration: Option<String>,
    pub registration_config: Option<serde_json::Value>,
    pub remove_auto_registration: bool,
}

impl Authz {
    /// GetRegistrationCode: the account's code, created on first use.
    pub fn registration_code(&self) -> Result<String> {
        let mut st = self.lock()?;
        if let Some(c) = &st.registration_code {
            return Ok(c.clone());
        }
        let code = random_hex(32);
        self.commit(&mut st, vec![Change::RegistrationCode(Some(code.clone()))])?;
        Ok(code)
    }

    /// DeleteRegistrationCode.
    pub fn delete_registration_code(&self) -> Result<()> {
        let mut st = self.lock()?;
        if st.registration_code.is_none() {
            return Err(not_found("There is no registration code."));
        }
        self.commit(&mut st, vec![Change::RegistrationCode(None)])
    }

    /// RegisterCACertificate.
    pub fn register_ca_certificate(&self, req: NewCa) -> Result<CaCertificate> {
        let mode = req.mode.clone().unwrap_or_else(|| "DEFAULT".into());
        if !matches!(mode.as_str(), "DEFAULT" | "SNI_ONLY") {
            return invalid(format!("certificateMode must be DEFAULT or SNI_ONLY, not {mode:?}"));
        }
        let ca = read_pem(&req.ca_pem, "CA certificate")?;
        if !ca.is_ca {
            return Err(AuthzError::CertificateValidation("The certificate is not a CA certificate (basic constraints CA:TRUE).".into()));
        }
        match (&req.verification_pem, mode.as_str()) {
            (Some(_), "SNI_ONLY") => return invalid("verificationCertificate must be empty when certificateMode is SNI_ONLY."),
            (None, "DEFAULT") => return invalid("verificationCertificate is required when certificateMode is DEFAULT."),
            _ => {}
        }
        let mut st = self.lock()?;
        if let Some(v) = &req.verification_pem {
            let verification = read_pem(v, "verification certificate")?;
            if !x509::signed_by(&verification.der, &ca.der) {
                return Err(AuthzError::CertificateValidation("The verification certificate is not signed by the CA certificate's private key.".into()));
            }
            let Some(code) = st.registration_code.clone() else {
                return Err(AuthzError::RegistrationCodeValidation("There is no registration code; call GetRegistrationCode first.".into()));
            };
            if verification.common_name.as_deref() != Some(code.as_str()) {
                return Err(AuthzError::RegistrationCodeValidation("The verification certificate's common name is not the registration code.".into()));
            }
        }
        if st.cas.contains_key(&ca.id) {
            return Err(AuthzError::AlreadyExists {
                message: "The CA certificate is already registered".into(),
                resource_id: ca.id.clone(),
                resource_arn: self.ca_arn(&ca.id),
            });
        }
        let subject_hex = hex(&ca.subject_raw);
        if st.cas.values().filter(|c| c.subject_hex == subject_hex).count() >= MAX_SAME_SUBJECT {
            return Err(AuthzError::LimitExceeded(format!("At most {MAX_SAME_SUBJECT} CA certificates with the same subject can be registered.")));
        }
        crate::attach::check_tags(&req.tags)?;
        let now = now_ms();
        let record = CaCertificate {
            id: ca.id.clone(),
            pem: x509::der_to_pem(&ca.der),
            active: req.set_as_active,
            auto_registration: req.allow_auto_registration,
            mode,
            registration_config: req.registration_config,
            created_ms: now,
            modified_ms: now,
            customer_version: 1,
            generation_id: random_hex(16),
            not_before_ms: ca.not_before_ms,
            not_after_ms: ca.not_after_ms,
            subject_hex,
            tags: req.tags.into_iter().collect(),
        };
        self.commit(&mut st, vec![Change::Ca(record.clone())])?;
        Ok(record)
    }

    /// DescribeCACertificate.
    pub fn describe_ca_certificate(&self, id: &str) -> Result<CaCertificate> {
        check_id(id)?;
        self.read().cas.get(id).cloned().ok_or_else(|| not_found(format!("CA certificate {id} does not exist.")))
    }

    /// ListCACertificates, by creation date; `template` keeps those whose registration
    /// configuration names that provisioning template.
    pub fn list_ca_certificates(&self, template: Option<&str>, ascending: bool, after: Option<&str>, limit: usize) -> Result<Page<CaCertificate>> {
        let st = self.read();
        let items: Vec<CaCertificate> = st
            .cas
            .values()
            .filter(|c| template.is_none_or(|t| c.registration_config.as_ref().and_then(|r| r.get("templateName")).and_then(|v| v.as_str()) == Some(t)))
            .cloned()
            .collect();
        Ok(Page::sorted(items, |c| format!("{:020}/{}", c.created_ms, c.id), ascending, after, limit))
    }

    /// UpdateCACertificate: status, auto-registration, registration configuration.
    pub fn update_ca_certificate(&self, id: &str, req: CaUpdate) -> Result<()> {
        check_id(id)?;
        let active = match req.new_status.as_deref() {
            None => None,
            Some("ACTIVE") => Some(true),
            Some("INACTIVE") => Some(false),
            Some(s) => return invalid(format!("newStatus must be ACTIVE or INACTIVE, not {s:?}")),
        };
        let auto = match req.new_auto_registration.as_deref() {
            None => None,
            Some("ENABLE") => Some(true),
            Some("DISABLE") => Some(false),
            Some(s) => return invalid(format!("newAutoRegistrationStatus must be ENABLE or DISABLE, not {s:?}")),
        };
        let deactivated: Result<()> = {
            let mut st = self.lock()?;
            let mut ca = st.cas.get(id).cloned().ok_or_else(|| not_found(format!("CA certificate {id} does not exist.")))?;
            if let Some(a) = active {
                ca.active = a;
            }
            if let Some(a) = auto {
                ca.auto_registration = a;
            }
            if req.remove_auto_registration {
                ca.registration_config = None;
            } else if let Some(c) = req.registration_config {
                ca.registration_config = Some(c);
            }
            ca.modified_ms = now_ms();
            ca.customer_version += 1;
            ca.generation_id = random_hex(16);
            // A CA going INACTIVE disconnects its certificates' connections on every node
            // (`Reactions::applied`).
            self.commit(&mut st, vec![Change::Ca(ca)])
        };
        deactivated
    }

    /// DeleteCACertificate: only an INACTIVE one.
    pub fn delete_ca_certificate(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let mut st = self.lock()?;
        let ca = st.cas.get(id).ok_or_else(|| not_found(format!("CA certificate {id} does not exist.")))?;
        if ca.active {
            return Err(AuthzError::CertificateState(format!("The CA certificate must be deactivated (INACTIVE) before deletion. Id: {id}")));
        }
        self.commit(&mut st, vec![Change::DropCa(id.to_string())])
    }

    /// The DER of every ACTIVE registered CA certificate (the TLS verifier's extra roots).
    pub fn active_ca_ders(&self) -> Vec<Vec<u8>> {
        self.read().cas.values().filter(|c| c.active).filter_map(|c| x509::pem_to_der(&c.pem).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixture;
    use crate::{AuthzError, CertStatus};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    fn ca() -> (String, rcgen::Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "Acme Root");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).unwrap();
        (cert.pem(), rcgen::Issuer::new(p, key))
    }

    fn leaf(issuer: &rcgen::Issuer<'static, KeyPair>, cn: &str) -> String {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.signed_by(&key, issuer).unwrap().pem()
    }

    #[test]
    fn a_ca_is_registered_with_a_verification_certificate() {
        let f = fixture();
        let a = &f.authz;
        let (ca_pem, issuer) = ca();
        let code = a.registration_code().unwrap();
        assert_eq!(code.len(), 64);
        assert_eq!(a.registration_code().unwrap(), code);
        let req = |v: Option<String>| NewCa { ca_pem: ca_pem.clone(), verification_pem: v, set_as_active: false, ..Default::default() };
        assert!(matches!(a.register_ca_certificate(req(None)), Err(AuthzError::Invalid(_))));
        assert!(matches!(a.register_ca_certificate(req(Some(leaf(&issuer, "wrong")))), Err(AuthzError::RegistrationCodeValidation(_))));
        let (_, other) = ca();
        assert!(matches!(a.register_ca_certificate(req(Some(leaf(&other, &code)))), Err(AuthzError::CertificateValidation(_))));
        let not_ca = NewCa { ca_pem: leaf(&issuer, "x"), verification_pem: Some(leaf(&issuer, &code)), ..Default::default() };
        assert!(matches!(a.register_ca_certificate(not_ca), Err(AuthzError::CertificateValidation(_))));
        let registered = a.register_ca_certificate(req(Some(leaf(&issuer, &code)))).unwrap();
        assert!(!registered.active);
        assert!(matches!(a.register_ca_certificate(req(Some(leaf(&issuer, &code)))), Err(AuthzError::AlreadyExists { .. })));

        // Its certificates register only while it is ACTIVE.
        let device = leaf(&issuer, "device");
        assert!(matches!(a.register_certificate(&device, None, true, None), Err(AuthzError::CertificateState(_))));
        assert!(a.active_ca_ders().is_empty());
        a.update_ca_certificate(&registered.id, CaUpdate { new_status: Some("ACTIVE".into()), ..Default::default() }).unwrap();
        assert_eq!(a.active_ca_ders().len(), 1);
        let c = a.register_certificate(&device, None, false, None).unwrap();
        assert_eq!((c.status, c.ca_id.as_deref()), (CertStatus::Inactive, Some(registered.id.as_str())));
        assert_eq!(a.list_certificates(Some(&registered.id), true, None, 10).unwrap().items.len(), 1);
        assert!(matches!(a.delete_ca_certificate(&registered.id), Err(AuthzError::CertificateState(_))));
        a.update_ca_certificate(&registered.id, CaUpdate { new_status: Some("INACTIVE".into()), ..Default::default() }).unwrap();
        a.delete_ca_certificate(&registered.id).unwrap();
        assert!(a.list_ca_certificates(None, true, None, 10).unwrap().items.is_empty());
    }
}
