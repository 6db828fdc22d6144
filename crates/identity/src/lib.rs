//! Device identity: Ferrite's own certificate authority and server certificate, and the facts
//! Ferrite reads from a certificate (AWS-style certificate id, subject). Policies and SigV4
//! verification join this crate with the identity issue; [`x509`] issues and reads device
//! certificates for the certificate API.

mod pki;

pub use pki::{CertFacts, Pki, PkiError, ServerCert, certificate_id, load_certs, load_key};
pub mod sigv4;
pub mod policy;
pub mod x509;
