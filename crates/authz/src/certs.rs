//! Device certificates: CreateKeysAndCertificate (RSA 2048, signed by Ferrite's CA),
//! CreateCertificateFromCsr, RegisterCertificate (signed by a registered ACTIVE CA or by
//! Ferrite's CA), RegisterCertificateWithoutCA, DescribeCertificate, ListCertificates(ByCA),
//! UpdateCertificate and DeleteCertificate with AWS's status and conflict rules.

use crate::error::{AuthzError, Result, invalid, not_found};
use crate::state::{CertStatus, Certificate, Change};
use crate::{Authz, Page, now_ms, random_hex};
use identity::x509::{self, CertInfo, KeyPairPem, X509Error};

/// What CreateKeysAndCertificate returns: the certificate and its key pair (shown only now).
#[derive(Debug, Clone)]
pub struct CreatedKeys {
    pub certificate: Certificate,
    pub keys: KeyPairPem,
}

fn x509_err(e: X509Error) -> AuthzError {
    match e {
        X509Error::Invalid(m) => AuthzError::Invalid(m),
        X509Error::Generate(m) => AuthzError::Internal(m),
    }
}

/// Reads a PEM certificate for registration: it must parse and be valid now.
pub(crate) fn read_pem(pem: &str, what: &str) -> Result<CertInfo> {
    let der = x509::pem_to_der(pem).map_err(|_| AuthzError::CertificateValidation(format!("The {what} is not a valid PEM-encoded X.509 certificate.")))?;
    let info = x509::cert_info(&der).map_err(|e| AuthzError::CertificateValidation(format!("The {what} cannot be read: {e}")))?;
    let now = now_ms();
    if now > info.not_after_ms {
        return Err(AuthzError::CertificateValidation(format!("The {what} has expired.")));
    }
    if now < info.not_before_ms {
        return Err(AuthzError::CertificateValidation(format!("The {what} is not valid yet.")));
    }
    Ok(info)
}

/// Checks a certificate id from a path (64 hex digits).
pub(crate) fn check_id(id: &str) -> Result<()> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return invalid(format!("certificateId must be 64 hexadecimal characters, not {id:?}"));
    }
    Ok(())
}

impl Authz {
    fn new_cert(&self, info: &CertInfo, status: CertStatus, ca_id: Option<String>, without_ca: bool) -> Certificate {
        let now = now_ms();
        Certificate {
            id: info.id.clone(),
            pem: x509::der_to_pem(&info.der),
            status,
            ca_id,
            without_ca,
            created_ms: now,
            modified_ms: now,
            customer_version: 1,
            generation_id: random_hex(16),
            not_before_ms: info.not_before_ms,
            not_after_ms: info.not_after_ms,
        }
    }

    fn store_new(&self, st: &mut crate::Writer<'_>, cert: Certificate) -> Result<Certificate> {
        if st.certs.contains_key(&cert.id) {
            return Err(AuthzError::AlreadyExists {
                message: "The certificate is already provisioned or registered".into(),
                resource_id: cert.id.clone(),
                resource_arn: self.cert_arn(&cert.id),
            });
        }
        self.commit(st, vec![Change::Cert(cert.clone()), Change::CertPem(cert.id.clone(), Some(cert.pem.clone()))])?;
        Ok(cert)
    }

    fn status(set_as_active: bool) -> CertStatus {
        if set_as_active { CertStatus::Active } else { CertStatus::Inactive }
    }

    /// CreateKeysAndCertificate: an RSA 2048 key pair and a certificate for it from Ferrite's CA.
    pub fn create_keys_and_certificate(&self, set_as_active: bool) -> Result<CreatedKeys> {
        let (keys, pair) = x509::rsa_key_pair().map_err(x509_err)?;
        let issued = self.pki.issue_for_key(&pair).map_err(x509_err)?;
        let info = x509::cert_info(&issued.der).map_err(x509_err)?;
        let cert = self.new_cert(&info, Self::status(set_as_active), None, false);
        let certificate = self.store_new(&mut self.lock()?, cert)?;
        Ok(CreatedKeys { certificate, keys })
    }

    /// CreateCertificateFromCsr: a certificate from Ferrite's CA for the CSR's key and subject.
    pub fn create_certificate_from_csr(&self, csr_pem: &str, set_as_active: bool) -> Result<Certificate> {
        let issued = self.pki.issue_from_csr(csr_pem).map_err(x509_err)?;
        let info = x509::cert_info(&issued.der).map_err(x509_err)?;
        let cert = self.new_cert(&info, Self::status(set_as_active), None, false);
        self.store_new(&mut self.lock()?, cert)
    }

    /// The status a registration asks for (`status`, or the deprecated `setAsActive`).
    fn registration_status(set_as_active: bool, status: Option<&str>) -> Result<CertStatus> {
        if set_as_active {
            return Ok(CertStatus::Active);
        }
        match status.map(|s| (s, CertStatus::parse(s))) {
            None => Ok(CertStatus::Inactive),
            Some((_, Some(s @ (CertStatus::Active | CertStatus::Inactive | CertStatus::Revoked | CertStatus::PendingActivation)))) => Ok(s),
            Some((s, _)) => invalid(format!("status {s:?} cannot be given to a certificate being registered")),
        }
    }

    /// RegisterCertificate: a certificate signed by a registered ACTIVE CA certificate (the given
    /// one, or the one whose subject is the certificate's issuer) or by Ferrite's own CA.
    pub fn register_certificate(&self, pem: &str, ca_pem: Option<&str>, set_as_active: bool, status: Option<&str>) -> Result<Certificate> {
        let status = Self::registration_status(set_as_active, status)?;
        let info = read_pem(pem, "certificate")?;
        let mut st = self.lock()?;
        let ca_id = match ca_pem {
            Some(ca_pem) => {
                let ca = x509::cert_info(&x509::pem_to_der(ca_pem).map_err(|e| AuthzError::CertificateValidation(e.to_string()))?)
                    .map_err(|e| AuthzError::CertificateValidation(e.to_string()))?;
                if !x509::signed_by(&info.der, &ca.der) {
                    return Err(AuthzError::CertificateValidation("The certificate is not signed by the given CA certificate.".into()));
                }
                if ca.der == self.pki.ca_der.as_ref() {
                    None
                } else {
                    let Some(registered) = st.cas.get(&ca.id) else {
                        return Err(AuthzError::CertificateValidation(format!("The CA certificate {} is not registered.", ca.id)));
                    };
                    Some(registered.id.clone())
                }
            }
            None if x509::signed_by(&info.der, &self.pki.ca_der) => None,
            None => {
                let issuer_hex = hex(&info.issuer_raw);
                let candidates: Vec<&String> = st
                    .cas
                    .values()
                    .filter(|c| c.subject_hex == issuer_hex)
                    .filter(|c| x509::pem_to_der(&c.pem).is_ok_and(|der| x509::signed_by(&info.der, &der)))
                    .map(|c| &c.id)
                    .collect();
                match candidates.as_slice() {
                    [one] => Some((*one).clone()),
                    [] => {
                        return Err(AuthzError::CertificateValidation(
                            "The certificate is not signed by a registered CA certificate; register its CA first, or use RegisterCertificateWithoutCA.".into(),
                        ));
                    }
                    _ => {
                        return Err(AuthzError::CertificateConflict(
                            "More than one registered CA certificate has the issuer's subject and key; give caCertificatePem.".into(),
                        ));
                    }
                }
            }
        };
        if let Some(id) = &ca_id
            && st.cas.get(id).is_some_and(|c| !c.active)
        {
            return Err(AuthzError::CertificateState(format!("The CA certificate {id} is not ACTIVE; certificates it signed cannot be registered.")));
        }
        let cert = self.new_cert(&info, status, ca_id, false);
        self.store_new(&mut st, cert)
    }

    /// RegisterCertificateWithoutCA: any valid certificate; its issuer is not checked (the
    /// device proves it holds the key in the TLS handshake).
    pub fn register_certificate_without_ca(&self, pem: &str, status: Option<&str>) -> Result<Certificate> {
        let status = Self::registration_status(false, status)?;
        let info = read_pem(pem, "certificate")?;
        let cert = self.new_cert(&info, status, None, true);
        self.store_new(&mut self.lock()?, cert)
    }

    /// DescribeCertificate.
    pub fn describe_certificate(&self, id: &str) -> Result<Certificate> {
        check_id(id)?;
        let mut c = self.read().certs.get(id).cloned().ok_or_else(|| not_found(format!("Certificate {id} does not exist.")))?;
        c.pem = self.certificate_pem(id)?.unwrap_or_default();
        Ok(c)
    }

    /// A certificate's PEM, from the store: its `certificate-pem` document, or the PEM inside
    /// the `certificate` document an earlier release wrote. Blocking.
    pub(crate) fn certificate_pem(&self, id: &str) -> Result<Option<String>> {
        let store = self.replica.store();
        if let Some(d) = store.get_blocking(crate::state::CERT_PEM, id).map_err(store::StoreError::from)? {
            return Ok(Some(d.value));
        }
        let inline = store.get_blocking(crate::state::CERT, id).map_err(store::StoreError::from)?;
        Ok(inline.and_then(|d| serde_json::from_str::<Certificate>(&d.value).ok()).map(|c| c.pem).filter(|p| !p.is_empty()))
    }

    /// ListCertificates / ListCertificatesByCA: by creation date.
    pub fn list_certificates(&self, ca_id: Option<&str>, ascending: bool, after: Option<&str>, limit: usize) -> Result<Page<Certificate>> {
        if let Some(ca) = ca_id {
            check_id(ca)?;
        }
        let st = self.read();
        let items: Vec<Certificate> = st.certs.values().filter(|c| ca_id.is_none_or(|ca| c.ca_id.as_deref() == Some(ca))).cloned().collect();
        Ok(Page::sorted(items, |c| format!("{:020}/{}", c.created_ms, c.id), ascending, after, limit))
    }

    /// UpdateCertificate: ACTIVE, INACTIVE or REVOKED (REVOKED is final). A certificate leaving
    /// ACTIVE has its live connections closed.
    pub fn update_certificate(&self, id: &str, new_status: &str) -> Result<()> {
        check_id(id)?;
        let new = CertStatus::parse(new_status).ok_or_else(|| AuthzError::Invalid(format!("newStatus {new_status:?} is not a certificate status")))?;
        if matches!(new, CertStatus::PendingTransfer | CertStatus::PendingActivation | CertStatus::RegisterInactive) {
            return invalid(format!("A certificate cannot be set to {new_status}: the status is used internally."));
        }
        // A certificate leaving ACTIVE disconnects its connections on every node
        // (`Reactions::applied`).
        {
            let mut st = self.lock()?;
            let mut cert = st.certs.get(id).cloned().ok_or_else(|| not_found(format!("Certificate {id} does not exist.")))?;
            if cert.status == new {
                return Ok(());
            }
            match cert.status {
                CertStatus::Revoked => {
                    return Err(AuthzError::CertificateState(format!("Certificate {id} is REVOKED; a revoked certificate cannot be changed.")));
                }
                CertStatus::PendingTransfer => return Err(AuthzError::CertificateState(format!("Certificate {id} is being transferred."))),
                _ => {}
            }
            cert.status = new;
            cert.modified_ms = now_ms();
            cert.customer_version += 1;
            cert.generation_id = random_hex(16);
            // A certificate an earlier release stored with its PEM inline keeps it apart now.
            let mut changes = Vec::new();
            if self.replica.store().get_blocking(crate::state::CERT_PEM, id).map_err(store::StoreError::from)?.is_none()
                && let Some(pem) = self.certificate_pem(id)?
            {
                changes.push(Change::CertPem(id.to_string(), Some(pem)));
            }
            changes.insert(0, Change::Cert(cert));
            self.commit(&mut st, changes)
        }
    }

    /// DeleteCertificate: not while ACTIVE, nor while attached to a thing, nor (without
    /// `force`) while policies are attached.
    pub fn delete_certificate(&self, id: &str, force: bool) -> Result<()> {
        check_id(id)?;
        let arn = self.cert_arn(id);
        let mut st = self.lock()?;
        let cert = st.certs.get(id).ok_or_else(|| not_found(format!("Certificate {id} does not exist.")))?;
        match cert.status {
            CertStatus::Active => return Err(AuthzError::CertificateState(format!("Certificate must be deactivated (not ACTIVE) before deletion. Id: {id}"))),
            CertStatus::PendingTransfer => return Err(AuthzError::CertificateState(format!("Certificate {id} is being transferred."))),
            _ => {}
        }
        if !self.registry.list_principal_things(&arn, None, None, 1)?.items.is_empty() {
            return Err(AuthzError::DeleteConflict(format!("Things must be detached before deletion (arn: {arn})")));
        }
        let attached = st.targets.get(&arn).is_some_and(|p| !p.is_empty());
        if attached && !force {
            return Err(AuthzError::DeleteConflict(format!("Certificate policies must be detached before deletion (arn: {arn})")));
        }
        let mut changes = vec![Change::DropCert(id.to_string()), Change::CertPem(id.to_string(), None)];
        if attached {
            changes.push(Change::Target(arn, Default::default()));
        }
        self.commit(&mut st, changes)
    }

    /// Whether a certificate is registered, ACTIVE and within its validity (the TLS verifier's
    /// exact-match rule).
    pub fn is_registered_active(&self, id: &str) -> bool {
        let now = now_ms();
        self.read().certs.get(id).is_some_and(|c| c.status == CertStatus::Active && c.not_before_ms <= now && now <= c.not_after_ms)
    }
}

/// Lowercase hex.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    #[test]
    fn created_certificates_follow_aws_status_rules() {
        let f = fixture();
        let a = &f.authz;
        let created = a.create_keys_and_certificate(true).unwrap();
        let id = created.certificate.id.clone();
        assert_eq!(id.len(), 64);
        assert!(created.keys.private_key.contains("RSA PRIVATE KEY"));
        assert_eq!(a.describe_certificate(&id).unwrap().status, CertStatus::Active);
        // ACTIVE certificates cannot be deleted.
        assert!(matches!(a.delete_certificate(&id, false), Err(AuthzError::CertificateState(_))));
        a.update_certificate(&id, "INACTIVE").unwrap();
        assert_eq!(a.describe_certificate(&id).unwrap().customer_version, 2);
        assert!(matches!(a.update_certificate(&id, "PENDING_TRANSFER"), Err(AuthzError::Invalid(_))));
        a.update_certificate(&id, "REVOKED").unwrap();
        assert!(matches!(a.update_certificate(&id, "ACTIVE"), Err(AuthzError::CertificateState(_))));
        // Registering it again: already exists.
        let e = a.register_certificate_without_ca(&created.certificate.pem, None).unwrap_err();
        assert!(matches!(e, AuthzError::AlreadyExists { ref resource_id, .. } if *resource_id == id));
        a.delete_certificate(&id, false).unwrap();
        assert!(matches!(a.describe_certificate(&id), Err(AuthzError::NotFound(_))));
        assert!(matches!(a.describe_certificate("xyz"), Err(AuthzError::Invalid(_))));
    }

    #[test]
    fn pems_stay_out_of_memory_and_an_earlier_inline_pem_is_still_read() {
        let f = fixture();
        let a = &f.authz;
        let c = a.create_keys_and_certificate(false).unwrap().certificate;
        assert!(!c.pem.is_empty());
        assert!(a.read().certs[&c.id].pem.is_empty(), "no PEM in memory");
        assert_eq!(a.describe_certificate(&c.id).unwrap().pem, c.pem);
        let store = a.replica.store();
        let stored = |kind: &str| store.get_blocking(kind, &c.id).unwrap().map(|d| d.value);
        assert!(!stored(crate::state::CERT).unwrap().contains("BEGIN CERTIFICATE"));
        // As an earlier release stored it: the PEM inside the certificate document.
        let inline = serde_json::to_string(&c).unwrap();
        let writes = vec![store::state::Write::put(crate::state::CERT, c.id.clone(), inline), store::state::Write::delete(crate::state::CERT_PEM, c.id.clone())];
        store.commit_blocking("authz", writes).unwrap();
        a.replica.catch_up().unwrap();
        assert!(a.read().certs[&c.id].pem.is_empty());
        assert_eq!(a.describe_certificate(&c.id).unwrap().pem, c.pem);
        // Its next change moves the PEM apart; deleting the certificate deletes it.
        a.update_certificate(&c.id, "REVOKED").unwrap();
        assert_eq!(stored(crate::state::CERT_PEM).as_deref(), Some(c.pem.as_str()));
        assert!(!stored(crate::state::CERT).unwrap().contains("BEGIN CERTIFICATE"));
        assert_eq!(f.reopen().describe_certificate(&c.id).unwrap().pem, c.pem);
        a.delete_certificate(&c.id, false).unwrap();
        assert_eq!((stored(crate::state::CERT), stored(crate::state::CERT_PEM)), (None, None));
    }

    #[test]
    fn attachments_block_deletion_unless_forced() {
        let f = fixture();
        let a = &f.authz;
        let c = a.create_keys_and_certificate(false).unwrap().certificate;
        let arn = a.cert_arn(&c.id);
        a.create_policy("p", r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#, &[]).unwrap();
        a.attach_policy("p", &arn).unwrap();
        a.registry().create_thing(registry::NewThing { name: "t".into(), ..Default::default() }).unwrap();
        a.registry().attach_thing_principal("t", &arn, registry::PrincipalType::NonExclusive).unwrap();
        assert!(matches!(a.delete_certificate(&c.id, true), Err(AuthzError::DeleteConflict(m)) if m.contains("Things")));
        a.registry().detach_thing_principal("t", &arn).unwrap();
        assert!(matches!(a.delete_certificate(&c.id, false), Err(AuthzError::DeleteConflict(m)) if m.contains("policies")));
        a.delete_certificate(&c.id, true).unwrap();
        assert!(a.list_targets_for_policy("p", None, 10).unwrap().items.is_empty());
        a.delete_policy("p").unwrap();
    }

    #[test]
    fn registration_needs_a_known_issuer_and_survives_a_restart() {
        let f = fixture();
        let a = &f.authz;
        // Issued by Ferrite's CA: RegisterCertificate accepts it without a CA.
        let (pem, _) = a.pki.issue_client("device-1").unwrap();
        let c = a.register_certificate(&pem, None, false, Some("ACTIVE")).unwrap();
        assert_eq!((c.status, c.ca_id.clone()), (CertStatus::Active, None));
        assert!(a.is_registered_active(&c.id));
        // Another CA's certificate: refused, unless registered without a CA.
        let dir = f.dir.join("other");
        std::fs::create_dir_all(&dir).unwrap();
        let (other, _) = identity::Pki::load_or_create(&dir).unwrap();
        let (stranger, _) = other.issue_client("stranger").unwrap();
        assert!(matches!(a.register_certificate(&stranger, None, true, None), Err(AuthzError::CertificateValidation(_))));
        assert!(matches!(a.register_certificate(&stranger, Some(&other.ca_pem), true, None), Err(AuthzError::CertificateValidation(_))));
        let s = a.register_certificate_without_ca(&stranger, Some("ACTIVE")).unwrap();
        assert!(s.without_ca);
        assert!(matches!(a.register_certificate("junk", None, true, None), Err(AuthzError::CertificateValidation(_))));
        assert!(matches!(a.register_certificate_without_ca(&stranger, Some("PENDING_TRANSFER")), Err(AuthzError::Invalid(_))));
        let again = f.reopen();
        assert_eq!(again.describe_certificate(&c.id).unwrap(), c);
        assert_eq!(again.list_certificates(None, true, None, 10).unwrap().items.len(), 2);
    }
}
