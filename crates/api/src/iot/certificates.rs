//! Certificates and CA certificates over HTTP: CreateKeysAndCertificate, CreateCertificateFromCsr,
//! RegisterCertificate(WithoutCA), Describe/List/ListByCA/Update/DeleteCertificate,
//! Get/DeleteRegistrationCode, RegisterCACertificate, Describe/List/Update/DeleteCACertificate.

use super::{Inner, done, secs};
use crate::service::{ApiRequest, ApiResponse, Reply};
use crate::{ApiError, pagination};
use authz::{CaCertificate, Certificate, Page};
use serde_json::{Value, json};

/// `pageSize`, `marker` and `isAscendingOrder` of the certificate and policy lists.
pub(crate) fn marker_paging(req: &ApiRequest) -> Result<(Option<String>, usize, bool), ApiError> {
    let size = req.input().int_in("pageSize", 250, 1, 250)? as usize;
    let after = pagination::after(req.input().text("marker")?)?;
    Ok((after, size, req.input().bool("ascendingOrder")?))
}

/// Adds `nextMarker` when more items follow.
pub(crate) fn with_marker<T>(mut out: Value, page: &Page<T>) -> Value {
    if let Some(t) = page.token() {
        out["nextMarker"] = Value::String(t);
    }
    out
}


impl Inner {
    fn cert_summary(&self, c: &Certificate) -> Value {
        json!({
            "certificateArn": self.authz.cert_arn(&c.id),
            "certificateId": c.id,
            "status": c.status.as_str(),
            "certificateMode": "DEFAULT",
            "creationDate": secs(c.created_ms),
        })
    }

    fn created(&self, c: &Certificate) -> Value {
        json!({ "certificateArn": self.authz.cert_arn(&c.id), "certificateId": c.id, "certificatePem": c.pem })
    }

    pub(super) fn create_keys_and_certificate(&self, req: &ApiRequest) -> Reply {
        let created = self.authz.create_keys_and_certificate(req.input().bool("setAsActive")?)?;
        let mut v = self.created(&created.certificate);
        v["keyPair"] = json!({ "PublicKey": created.keys.public_key, "PrivateKey": created.keys.private_key });
        ApiResponse::json(v)
    }

    pub(super) fn create_certificate_from_csr(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let csr = body.required("certificateSigningRequest")?.to_string();
        let c = self.authz.create_certificate_from_csr(&csr, req.input().bool("setAsActive")?)?;
        ApiResponse::json(self.created(&c))
    }

    pub(super) fn register_certificate(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let pem = body.required("certificatePem")?.to_string();
        let ca = body.str("caCertificatePem")?;
        // The model's setAsActive is a query member (a body member of that name is not bound).
        let set_as_active = body.bool("setAsActive")?;
        let c = self.authz.register_certificate(&pem, ca.as_deref(), set_as_active, body.str("status")?.as_deref())?;
        ApiResponse::json(json!({ "certificateArn": self.authz.cert_arn(&c.id), "certificateId": c.id }))
    }

    pub(super) fn register_certificate_without_ca(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let pem = body.required("certificatePem")?.to_string();
        let c = self.authz.register_certificate_without_ca(&pem, body.str("status")?.as_deref())?;
        ApiResponse::json(json!({ "certificateArn": self.authz.cert_arn(&c.id), "certificateId": c.id }))
    }

    pub(super) fn describe_certificate(&self, req: &ApiRequest) -> Reply {
        let c = self.authz.describe_certificate(req.input().required("certificateId")?)?;
        let mut d = json!({
            "certificateArn": self.authz.cert_arn(&c.id),
            "certificateId": c.id,
            "status": c.status.as_str(),
            "certificatePem": c.pem,
            "ownedBy": self.authz.account_id(),
            "creationDate": secs(c.created_ms),
            "lastModifiedDate": secs(c.modified_ms),
            "customerVersion": c.customer_version,
            "transferData": {},
            "generationId": c.generation_id,
            "validity": { "notBefore": secs(c.not_before_ms), "notAfter": secs(c.not_after_ms) },
            "certificateMode": "DEFAULT",
        });
        if let Some(ca) = &c.ca_id {
            d["caCertificateId"] = json!(ca);
        }
        ApiResponse::json(json!({ "certificateDescription": d }))
    }

    pub(super) fn list_certificates(&self, req: &ApiRequest, by_ca: bool) -> Reply {
        let (after, size, ascending) = marker_paging(req)?;
        let ca = if by_ca { Some(req.input().required("caCertificateId")?) } else { None };
        let page = self.authz.list_certificates(ca, ascending, after.as_deref(), size)?;
        let items: Vec<Value> = page.items.iter().map(|c| self.cert_summary(c)).collect();
        ApiResponse::json(with_marker(json!({ "certificates": items }), &page))
    }

    pub(super) fn update_certificate(&self, req: &ApiRequest) -> Reply {
        let status = req.input().text("newStatus")?.ok_or_else(|| ApiError::invalid("newStatus is required"))?;
        self.authz.update_certificate(req.input().required("certificateId")?, status)?;
        done()
    }

    pub(super) fn delete_certificate(&self, req: &ApiRequest) -> Reply {
        self.authz.delete_certificate(req.input().required("certificateId")?, req.input().bool("forceDelete")?)?;
        done()
    }

    pub(super) fn get_registration_code(&self) -> Reply {
        ApiResponse::json(json!({ "registrationCode": self.authz.registration_code()? }))
    }

    pub(super) fn delete_registration_code(&self) -> Reply {
        self.authz.delete_registration_code()?;
        done()
    }

    pub(super) fn register_ca_certificate(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let new = authz::NewCa {
            ca_pem: body.required("caCertificate")?.to_string(),
            verification_pem: body.str("verificationCertificate")?,
            set_as_active: req.input().bool("setAsActive")?,
            allow_auto_registration: req.input().bool("allowAutoRegistration")?,
            registration_config: body.value("registrationConfig").cloned(),
            tags: body.tags("tags")?,
            mode: body.str("certificateMode")?,
        };
        let ca = self.authz.register_ca_certificate(new)?;
        ApiResponse::json(json!({ "certificateArn": self.authz.ca_arn(&ca.id), "certificateId": ca.id }))
    }

    fn ca_status(ca: &CaCertificate) -> &'static str {
        if ca.active { "ACTIVE" } else { "INACTIVE" }
    }

    pub(super) fn describe_ca_certificate(&self, req: &ApiRequest) -> Reply {
        let ca = self.authz.describe_ca_certificate(req.input().required("certificateId")?)?;
        let mut out = json!({
            "certificateDescription": {
                "certificateArn": self.authz.ca_arn(&ca.id),
                "certificateId": ca.id,
                "status": Self::ca_status(&ca),
                "certificatePem": ca.pem,
                "ownedBy": self.authz.account_id(),
                "creationDate": secs(ca.created_ms),
                "autoRegistrationStatus": if ca.auto_registration { "ENABLE" } else { "DISABLE" },
                "lastModifiedDate": secs(ca.modified_ms),
                "customerVersion": ca.customer_version,
                "generationId": ca.generation_id,
                "validity": { "notBefore": secs(ca.not_before_ms), "notAfter": secs(ca.not_after_ms) },
                "certificateMode": ca.mode,
            }
        });
        if let Some(c) = &ca.registration_config {
            out["registrationConfig"] = c.clone();
        }
        ApiResponse::json(out)
    }

    pub(super) fn list_ca_certificates(&self, req: &ApiRequest) -> Reply {
        let (after, size, ascending) = marker_paging(req)?;
        let page = self.authz.list_ca_certificates(req.input().text("templateName")?, ascending, after.as_deref(), size)?;
        let items: Vec<Value> = page
            .items
            .iter()
            .map(|c| {
                json!({
                    "certificateArn": self.authz.ca_arn(&c.id),
                    "certificateId": c.id,
                    "status": Self::ca_status(c),
                    "creationDate": secs(c.created_ms),
                })
            })
            .collect();
        ApiResponse::json(with_marker(json!({ "certificates": items }), &page))
    }

    pub(super) fn update_ca_certificate(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let update = authz::CaUpdate {
            new_status: req.input().str("newStatus")?,
            new_auto_registration: req.input().str("newAutoRegistrationStatus")?,
            registration_config: body.value("registrationConfig").cloned(),
            remove_auto_registration: body.bool("removeAutoRegistration")?,
        };
        self.authz.update_ca_certificate(req.input().required("certificateId")?, update)?;
        done()
    }

    pub(super) fn delete_ca_certificate(&self, req: &ApiRequest) -> Reply {
        self.authz.delete_ca_certificate(req.input().required("certificateId")?)?;
        done()
    }
}
