//! What the certificate and policy service keeps (one JSON document per certificate, CA
//! certificate, policy and attachment target), in memory with the parsed default version of
//! every policy and the policy → targets index, and the changes written to the store.

use crate::error::{AuthzError, Result};
use identity::policy::Policy as Parsed;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use store::DocOp;
use store::replica::Replicated;

pub(crate) const CERT: &str = "certificate";
pub(crate) const CA: &str = "ca-certificate";
/// A device certificate's PEM, apart from its `certificate` document: read on demand, never
/// held in memory (a million certificates would be over a gigabyte of PEM).
pub(crate) const CERT_PEM: &str = "certificate-pem";
pub(crate) const POLICY: &str = "policy";
pub(crate) const TARGET: &str = "policy-target";
const SETTING: &str = "authz-setting";
const REGISTRATION_CODE: &str = "registration-code";
const AUTHORIZER: &str = "authorizer";
const DEFAULT_AUTHORIZER: &str = "default-authorizer";

/// A device certificate's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    RegisterInactive,
    PendingActivation,
}

impl CertStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Active => "ACTIVE",
            CertStatus::Inactive => "INACTIVE",
            CertStatus::Revoked => "REVOKED",
            CertStatus::PendingTransfer => "PENDING_TRANSFER",
            CertStatus::RegisterInactive => "REGISTER_INACTIVE",
            CertStatus::PendingActivation => "PENDING_ACTIVATION",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<CertStatus> {
        [
            CertStatus::Active,
            CertStatus::Inactive,
            CertStatus::Revoked,
            CertStatus::PendingTransfer,
            CertStatus::RegisterInactive,
            CertStatus::PendingActivation,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A registered device certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Hex SHA-256 of the DER.
    pub id: String,
    /// Empty in the service's memory and in the `certificate` document (stored since as a
    /// `certificate-pem` document; earlier releases stored it inline, which is still read).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pem: String,
    pub status: CertStatus,
    /// The registered CA certificate that signed it (none: Ferrite's own CA, or registered
    /// without a CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_id: Option<String>,
    /// Registered with RegisterCertificateWithoutCA.
    #[serde(default)]
    pub without_ca: bool,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub customer_version: i64,
    pub generation_id: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

/// A registered CA certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaCertificate {
    pub id: String,
    pub pem: String,
    pub active: bool,
    #[serde(default)]
    pub auto_registration: bool,
    /// `DEFAULT` or `SNI_ONLY`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_config: Option<serde_json::Value>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub customer_version: i64,
    pub generation_id: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// The raw DER subject (to find the CA of a certificate being registered).
    #[serde(default)]
    pub subject_hex: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One version of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub document: String,
    pub created_ms: i64,
}

/// A policy and its versions (at most five).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub versions: BTreeMap<u64, PolicyVersion>,
    pub default_version: u64,
    /// The id the next version gets (ids are never reused).
    pub next_version: u64,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub generation_id: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Policy {
    /// The default version's document.
    pub fn document(&self) -> &str {
        self.versions.get(&self.default_version).map_or("", |v| v.document.as_str())
    }
}

/// Everything in memory.
#[derive(Debug, Default)]
/// (Public only as the replica's type; its contents are the service's own.)
pub struct State {
    pub certs: BTreeMap<String, Certificate>,
    pub cas: BTreeMap<String, CaCertificate>,
    pub policies: BTreeMap<String, Policy>,
    /// The parsed default version of each policy.
    pub parsed: HashMap<String, Arc<Parsed>>,
    /// Target ARN → attached policy names.
    pub targets: BTreeMap<String, BTreeSet<String>>,
    /// Policy name → targets it is attached to.
    pub by_policy: BTreeMap<String, BTreeSet<String>>,
    pub registration_code: Option<String>,
    /// Custom authorizers by name.
    pub authorizers: BTreeMap<String, crate::Authorizer>,
    /// The default authorizer's name.
    pub default_authorizer: Option<String>,
}

/// One committed change.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Cert(Certificate),
    DropCert(String),
    /// A certificate's PEM (`None`: deleted).
    CertPem(String, Option<String>),
    Ca(CaCertificate),
    DropCa(String),
    Policy(Policy),
    DropPolicy(String),
    /// A target's attached policies (empty: none left).
    Target(String, BTreeSet<String>),
    RegistrationCode(Option<String>),
    Authorizer(crate::Authorizer),
    DropAuthorizer(String),
    DefaultAuthorizer(Option<String>),
}

fn put<T: Serialize>(kind: &'static str, key: &str, value: &T) -> Result<DocOp> {
    let value = serde_json::to_string(value).map_err(|e| AuthzError::Corrupt { kind, key: key.to_string(), error: e.to_string() })?;
    Ok(DocOp::Put { kind, key: key.to_string(), value })
}

impl Change {
    /// The documents-table operation that stores this change.
    pub fn doc_op(&self) -> Result<DocOp> {
        let delete = |kind: &'static str, key: &str| Ok(DocOp::Delete { kind, key: key.to_string() });
        match self {
            Change::Cert(c) if c.pem.is_empty() => put(CERT, &c.id, c),
            Change::Cert(c) => put(CERT, &c.id, &Certificate { pem: String::new(), ..c.clone() }),
            Change::DropCert(id) => delete(CERT, id),
            Change::CertPem(id, Some(pem)) => Ok(DocOp::Put { kind: CERT_PEM, key: id.clone(), value: pem.clone() }),
            Change::CertPem(id, None) => delete(CERT_PEM, id),
            Change::Ca(c) => put(CA, &c.id, c),
            Change::DropCa(id) => delete(CA, id),
            Change::Policy(p) => put(POLICY, &p.name, p),
            Change::DropPolicy(n) => delete(POLICY, n),
            Change::Target(t, set) if set.is_empty() => delete(TARGET, t),
            Change::Target(t, set) => put(TARGET, t, set),
            Change::RegistrationCode(Some(c)) => Ok(DocOp::Put { kind: SETTING, key: REGISTRATION_CODE.into(), value: c.clone() }),
            Change::RegistrationCode(None) => delete(SETTING, REGISTRATION_CODE),
            Change::Authorizer(a) => put(AUTHORIZER, &a.name, a),
            Change::DropAuthorizer(n) => delete(AUTHORIZER, n),
            Change::DefaultAuthorizer(Some(n)) => Ok(DocOp::Put { kind: SETTING, key: DEFAULT_AUTHORIZER.into(), value: n.clone() }),
            Change::DefaultAuthorizer(None) => delete(SETTING, DEFAULT_AUTHORIZER),
        }
    }
}

fn parse<T: DeserializeOwned>(value: &str) -> std::result::Result<T, String> {
    serde_json::from_str(value).map_err(|e| e.to_string())
}

impl Replicated for State {
    const DOMAIN: &'static str = "authz";
    const KINDS: &'static [&'static str] = &[CERT, CA, POLICY, TARGET, SETTING, AUTHORIZER];

    fn apply_doc(&mut self, kind: &str, key: &str, value: Option<&str>) -> std::result::Result<(), String> {
        let change = match (kind, value) {
            (CERT, Some(v)) => Change::Cert(parse(v)?),
            (CERT, None) => Change::DropCert(key.to_string()),
            (CA, Some(v)) => Change::Ca(parse(v)?),
            (CA, None) => Change::DropCa(key.to_string()),
            (POLICY, Some(v)) => Change::Policy(parse(v)?),
            (POLICY, None) => Change::DropPolicy(key.to_string()),
            (TARGET, Some(v)) => Change::Target(key.to_string(), parse(v)?),
            (TARGET, None) => Change::Target(key.to_string(), BTreeSet::new()),
            (AUTHORIZER, Some(v)) => Change::Authorizer(parse(v)?),
            (AUTHORIZER, None) => Change::DropAuthorizer(key.to_string()),
            (SETTING, v) if key == REGISTRATION_CODE => Change::RegistrationCode(v.map(str::to_string)),
            (SETTING, v) if key == DEFAULT_AUTHORIZER => Change::DefaultAuthorizer(v.map(str::to_string)),
            (SETTING, _) | (CERT_PEM, _) => return Ok(()),
            (other, _) => return Err(format!("the certificate and policy service keeps no {other} documents")),
        };
        self.apply(change);
        Ok(())
    }
}

impl State {
    /// Applies a committed change.
    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Cert(mut c) => {
                c.pem = String::new();
                self.certs.insert(c.id.clone(), c);
            }
            Change::CertPem(..) => {}
            Change::DropCert(id) => {
                self.certs.remove(&id);
            }
            Change::Ca(c) => {
                self.cas.insert(c.id.clone(), c);
            }
            Change::DropCa(id) => {
                self.cas.remove(&id);
            }
            Change::Policy(p) => {
                match identity::policy::parse(p.document()) {
                    Ok(parsed) => {
                        self.parsed.insert(p.name.clone(), Arc::new(parsed));
                    }
                    Err(e) => {
                        // Stored documents were valid when stored; a parser change could refuse one.
                        tracing::warn!(policy = %p.name, error = %e, "stored policy no longer parses; it allows nothing");
                        self.parsed.remove(&p.name);
                    }
                }
                self.policies.insert(p.name.clone(), p);
            }
            Change::DropPolicy(n) => {
                self.policies.remove(&n);
                self.parsed.remove(&n);
            }
            Change::Target(t, set) => {
                if let Some(old) = self.targets.remove(&t) {
                    for p in old {
                        if let Some(ts) = self.by_policy.get_mut(&p) {
                            ts.remove(&t);
                            if ts.is_empty() {
                                self.by_policy.remove(&p);
                            }
                        }
                    }
                }
                for p in &set {
                    self.by_policy.entry(p.clone()).or_default().insert(t.clone());
                }
                if !set.is_empty() {
                    self.targets.insert(t, set);
                }
            }
            Change::RegistrationCode(c) => self.registration_code = c,
            Change::Authorizer(a) => {
                self.authorizers.insert(a.name.clone(), a);
            }
            Change::DropAuthorizer(n) => {
                self.authorizers.remove(&n);
            }
            Change::DefaultAuthorizer(n) => self.default_authorizer = n,
        }
    }
}
