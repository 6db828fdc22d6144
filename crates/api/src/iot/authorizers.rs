//! Custom authorizers over HTTP: Create/Describe/List/Update/DeleteAuthorizer,
//! Set/Describe/ClearDefaultAuthorizer and TestInvokeAuthorizer (the function's answer in AWS's
//! shape; a failing function is InvalidResponseException).

use super::certificates::{marker_paging, with_marker};
use super::{Inner, done, secs};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use authz::{AuthRequest, Authorizer, AuthorizerUpdate, MqttContext, NewAuthorizer};
use base64::Engine as _;
use serde_json::{Value, json};

impl Inner {
    fn authorizer_ref(&self, a: &Authorizer) -> Value {
        json!({ "authorizerName": a.name, "authorizerArn": self.authz.authorizer_arn(&a.name) })
    }

    fn authorizer_description(&self, a: &Authorizer) -> Value {
        let mut d = json!({
            "authorizerName": a.name,
            "authorizerArn": self.authz.authorizer_arn(&a.name),
            "authorizerFunctionArn": a.function_arn,
            "tokenSigningPublicKeys": a.token_signing_public_keys,
            "status": a.status(),
            "creationDate": secs(a.created_ms),
            "lastModifiedDate": secs(a.modified_ms),
            "signingDisabled": a.signing_disabled,
            "enableCachingForHttp": a.enable_caching_for_http,
        });
        if let Some(k) = &a.token_key_name {
            d["tokenKeyName"] = json!(k);
        }
        json!({ "authorizerDescription": d })
    }

    pub(super) fn create_authorizer(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let has = |k: &str| body.keys().any(|x| x == k);
        let a = self.authz.create_authorizer(NewAuthorizer {
            name: req.input().required("authorizerName")?.to_string(),
            function_arn: body.str("authorizerFunctionArn")?.ok_or_else(|| ApiError::invalid("authorizerFunctionArn is required"))?,
            token_key_name: body.str("tokenKeyName")?,
            token_signing_public_keys: body.str_map("tokenSigningPublicKeys")?,
            status: body.str("status")?,
            signing_disabled: if has("signingDisabled") { Some(body.bool("signingDisabled")?) } else { None },
            enable_caching_for_http: if has("enableCachingForHttp") { Some(body.bool("enableCachingForHttp")?) } else { None },
            tags: body.tags("tags")?,
        })?;
        ApiResponse::json(self.authorizer_ref(&a))
    }

    pub(super) fn describe_authorizer(&self, req: &ApiRequest) -> Reply {
        let a = self.authz.describe_authorizer(req.input().required("authorizerName")?)?;
        ApiResponse::json(self.authorizer_description(&a))
    }

    pub(super) fn list_authorizers(&self, req: &ApiRequest) -> Reply {
        let (after, size, ascending) = marker_paging(req)?;
        let page = self.authz.list_authorizers(req.input().text("status")?, ascending, after.as_deref(), size)?;
        let items: Vec<Value> = page.items.iter().map(|a| self.authorizer_ref(a)).collect();
        ApiResponse::json(with_marker(json!({ "authorizers": items }), &page))
    }

    pub(super) fn update_authorizer(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let has = |k: &str| body.keys().any(|x| x == k);
        let a = self.authz.update_authorizer(AuthorizerUpdate {
            name: req.input().required("authorizerName")?.to_string(),
            function_arn: body.str("authorizerFunctionArn")?,
            token_key_name: body.str("tokenKeyName")?,
            token_signing_public_keys: body.str_map("tokenSigningPublicKeys")?,
            status: body.str("status")?,
            enable_caching_for_http: if has("enableCachingForHttp") { Some(body.bool("enableCachingForHttp")?) } else { None },
        })?;
        ApiResponse::json(self.authorizer_ref(&a))
    }

    pub(super) fn delete_authorizer(&self, req: &ApiRequest) -> Reply {
        self.authz.delete_authorizer(req.input().required("authorizerName")?)?;
        done()
    }

    pub(super) fn set_default_authorizer(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let name = body.str("authorizerName")?.ok_or_else(|| ApiError::invalid("authorizerName is required"))?;
        let a = self.authz.set_default_authorizer(&name)?;
        ApiResponse::json(self.authorizer_ref(&a))
    }

    pub(super) fn describe_default_authorizer(&self) -> Reply {
        let a = self.authz.describe_default_authorizer()?;
        ApiResponse::json(self.authorizer_description(&a))
    }

    pub(super) fn clear_default_authorizer(&self) -> Reply {
        self.authz.clear_default_authorizer()?;
        done()
    }

    /// Runs on the blocking pool: waits for the function on the runtime.
    pub(super) fn test_invoke_authorizer(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let mut r = AuthRequest { token: body.str("token")?, token_signature: body.str("tokenSignature")?, ..Default::default() };
        if let Some(m) = body.obj("mqttContext")? {
            let password = match m.str("password")? {
                Some(p) => Some(base64::engine::general_purpose::STANDARD.decode(p).map_err(|_| ApiError::invalid("mqttContext.password must be base64"))?),
                None => None,
            };
            r.mqtt = Some(MqttContext { username: m.str("username")?, password, client_id: m.str("clientId")? });
        }
        if let Some(t) = body.obj("tlsContext")? {
            r.tls_server_name = Some(t.str("serverName")?.unwrap_or_default());
        }
        if let Some(h) = body.obj("httpContext")? {
            r.http = Some((h.str_map("headers")?.unwrap_or_default(), h.str("queryString")?));
        }
        let name = req.input().required("authorizerName")?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| ApiError::internal("no runtime"))?;
        let ans = handle.block_on(self.authz.test_invoke_authorizer(name, &r))?;
        let mut out = json!({
            "isAuthenticated": ans.is_authenticated,
            "principalId": ans.principal_id,
            "policyDocuments": ans.policy_documents,
        });
        if let Some(s) = ans.disconnect_after_secs {
            out["disconnectAfterInSeconds"] = json!(s);
        }
        if let Some(s) = ans.refresh_after_secs {
            out["refreshAfterInSeconds"] = json!(s);
        }
        ApiResponse::json(out)
    }
}
