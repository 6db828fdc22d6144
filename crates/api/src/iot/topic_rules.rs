//! Topic rules and topic rule destinations over HTTP: CreateTopicRule, GetTopicRule,
//! ListTopicRules, ReplaceTopicRule, DeleteTopicRule, EnableTopicRule, DisableTopicRule,
//! CreateTopicRuleDestination, ConfirmTopicRuleDestination, GetTopicRuleDestination,
//! ListTopicRuleDestinations, UpdateTopicRuleDestination and DeleteTopicRuleDestination,
//! mapped onto [`rules::Rules`].
//!
//! Errors are the model's: SqlParseException (400) naming the line, column and problem;
//! InvalidRequestException (400); ResourceAlreadyExistsException (409); InternalException
//! (500); and, for a rule or destination that does not exist, UnauthorizedException (401), which
//! is what AWS IoT answers (the model lists no ResourceNotFoundException for these operations).

use super::{Iot, secs};
use crate::service::{ApiRequest, ApiResponse, BoxReply, Reply};
use crate::{ApiError, pagination};
use rules::{Destination, RuleView, Rules, RulesError};
use serde_json::{Value, json};
use std::sync::Arc;

/// The operations this file answers.
pub(super) const OPS: &[&str] = &[
    "CreateTopicRule",
    "GetTopicRule",
    "ListTopicRules",
    "ReplaceTopicRule",
    "DeleteTopicRule",
    "EnableTopicRule",
    "DisableTopicRule",
    "CreateTopicRuleDestination",
    "ConfirmTopicRuleDestination",
    "GetTopicRuleDestination",
    "ListTopicRuleDestinations",
    "UpdateTopicRuleDestination",
    "DeleteTopicRuleDestination",
];

impl From<RulesError> for ApiError {
    fn from(e: RulesError) -> ApiError {
        match e {
            RulesError::SqlParse(m) => ApiError::new("SqlParseException", m),
            RulesError::Invalid(m) => ApiError::invalid(m),
            RulesError::NotFound(m) => ApiError::new("UnauthorizedException", m),
            RulesError::LimitExceeded(m) => ApiError::limit_exceeded(m),
            RulesError::NoSuchResource(m) => ApiError::not_found(m),
            RulesError::AlreadyExists { message, arn } => ApiError::new("ResourceAlreadyExistsException", message).with("resourceArn", arn.into()),
            // A conflict with another node's write is retried by the caller; other store
            // failures are InternalFailureException, which every operation may answer.
            RulesError::Store(e) => ApiError::from(e),
            e @ RulesError::Corrupt { .. } => {
                tracing::error!(error = %e, "rules operation failed");
                ApiError::internal("An internal error occurred.")
            }
        }
    }
}

/// The `/metrics` lines of the rules engine.
pub struct RulesMetrics(pub Arc<Rules>);

impl crate::MetricsSource for RulesMetrics {
    fn render(&self, out: &mut String) {
        self.0.engine().metrics.render(out);
    }
}

impl Iot {
    /// Serves the topic rule operations with `rules`.
    pub fn with_rules(mut self, rules: Arc<Rules>) -> Iot {
        let i = &self.inner;
        let (registry, authz, endpoint_host, connectivity) = (i.registry.clone(), i.authz.clone(), i.endpoint_host.clone(), i.connectivity.clone());
        self.inner = Arc::new(super::Inner { registry, authz, endpoint_host, rules: Some(rules.clone()), connectivity });
        self.rules = Some(rules);
        self
    }

    /// Runs a topic rule operation on the blocking pool (they commit to the store).
    pub(super) fn call_rules(&self, req: ApiRequest) -> BoxReply<'_> {
        let rules = self.rules.clone();
        Box::pin(async move {
            let Some(rules) = rules else {
                return Err(ApiError::new("ServiceUnavailableException", "The rules engine is not running."));
            };
            let op = req.op;
            match tokio::task::spawn_blocking(move || handle(&rules, &req)).await {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::error!(operation = op, error = %e, "rules handler failed");
                    Err(ApiError::new("InternalException", "An internal error occurred."))
                }
            }
        })
    }
}

fn handle(rules: &Rules, req: &ApiRequest) -> Reply {
    match req.op {
        "CreateTopicRule" => {
            let i = req.input();
            rules.create_rule(i.required("ruleName")?, i.required_value("topicRulePayload")?, tags(i.text("tags")?)?)?;
            ApiResponse::empty()
        }
        "ReplaceTopicRule" => {
            let i = req.input();
            rules.replace_rule(i.required("ruleName")?, i.required_value("topicRulePayload")?)?;
            ApiResponse::empty()
        }
        "GetTopicRule" => {
            let r = rules.get_rule(req.input().required("ruleName")?)?;
            ApiResponse::json(json!({ "ruleArn": r.arn, "rule": rule_json(&r) }))
        }
        "ListTopicRules" => list_rules(rules, req),
        "DeleteTopicRule" => {
            rules.delete_rule(req.input().required("ruleName")?)?;
            ApiResponse::empty()
        }
        "EnableTopicRule" => {
            rules.set_disabled(req.input().required("ruleName")?, false)?;
            ApiResponse::empty()
        }
        "DisableTopicRule" => {
            rules.set_disabled(req.input().required("ruleName")?, true)?;
            ApiResponse::empty()
        }
        "CreateTopicRuleDestination" => {
            let body = req.input();
            let config = body.obj("destinationConfiguration")?.ok_or_else(|| ApiError::invalid("destinationConfiguration is required"))?;
            if config.obj("vpcConfiguration")?.is_some() {
                return Err(ApiError::invalid("VPC topic rule destinations are not supported by Ferrite."));
            }
            let http = config
                .obj("httpUrlConfiguration")?
                .ok_or_else(|| ApiError::invalid("destinationConfiguration.httpUrlConfiguration is required"))?;
            let url = http.str("confirmationUrl")?.ok_or_else(|| ApiError::invalid("destinationConfiguration.httpUrlConfiguration.confirmationUrl is required"))?;
            if url.len() > 2000 {
                return Err(ApiError::invalid("confirmationUrl must be at most 2000 characters"));
            }
            let d = rules.create_destination(&url)?;
            ApiResponse::json(json!({ "topicRuleDestination": destination_json(&d, false) }))
        }
        "ConfirmTopicRuleDestination" => {
            rules.confirm_destination(req.input().required("confirmationToken")?)?;
            ApiResponse::json(json!({}))
        }
        "GetTopicRuleDestination" => {
            let d = rules.get_destination(req.input().required("arn")?)?;
            ApiResponse::json(json!({ "topicRuleDestination": destination_json(&d, false) }))
        }
        "ListTopicRuleDestinations" => {
            let limit = req.input().int_in("maxResults", 1000, 1, 1000)? as usize;
            let after = pagination::after(req.input().text("nextToken")?)?;
            let page = rules.list_destinations(after.as_deref(), limit);
            let out = json!({ "destinationSummaries": page.items.iter().map(|d| destination_json(d, true)).collect::<Vec<_>>() });
            ApiResponse::json(super::with_token(out, &page))
        }
        "UpdateTopicRuleDestination" => {
            let body = req.input();
            let arn = body.str("arn")?.ok_or_else(|| ApiError::invalid("arn is required"))?;
            let status = body.str("status")?.ok_or_else(|| ApiError::invalid("status is required"))?;
            rules.update_destination(&arn, &status)?;
            ApiResponse::json(json!({}))
        }
        "DeleteTopicRuleDestination" => {
            rules.delete_destination(req.input().required("arn")?)?;
            ApiResponse::json(json!({}))
        }
        op => Err(ApiError::not_implemented("iot", op)),
    }
}

/// The `tags` member (the `x-amz-tagging` header): `k1=v1&k2=v2`, URL-encoded.
fn tags(header: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(h) = header else { return Ok(Vec::new()) };
    h.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| awsmodel::route::decode(&s.replace('+', " ")).ok_or_else(|| ApiError::invalid("x-amz-tagging is not valid"));
            Ok((dec(k)?, dec(v)?))
        })
        .collect()
}

/// A TopicRule.
fn rule_json(r: &RuleView) -> Value {
    let mut v = json!({
        "ruleName": r.name,
        "sql": r.sql,
        "createdAt": secs(r.created_ms),
        "actions": r.actions,
        "ruleDisabled": r.disabled,
        "awsIotSqlVersion": r.sql_version,
    });
    if let Some(d) = &r.description {
        v["description"] = json!(d);
    }
    if let Some(e) = &r.error_action {
        v["errorAction"] = e.clone();
    }
    v
}

fn list_rules(rules: &Rules, req: &ApiRequest) -> Reply {
    let limit = req.input().int_in("maxResults", 1000, 1, 10_000)? as usize;
    let after = pagination::after(req.input().text("nextToken")?)?;
    let disabled = req.input().opt_bool("ruleDisabled")?;
    let page = rules.list_rules(req.input().text("topic")?, disabled, after.as_deref(), limit);
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|r| {
            let mut v = json!({"ruleArn": r.arn, "ruleName": r.name, "createdAt": secs(r.created_ms), "ruleDisabled": r.disabled});
            if let Some(t) = &r.topic_pattern {
                v["topicPattern"] = json!(t);
            }
            v
        })
        .collect();
    ApiResponse::json(super::with_token(json!({ "rules": items }), &page))
}

/// A TopicRuleDestination (or, for lists, a TopicRuleDestinationSummary).
fn destination_json(d: &Destination, summary: bool) -> Value {
    let mut v = json!({
        "arn": d.arn,
        "status": d.status.as_str(),
        "createdAt": secs(d.created_ms),
        "lastUpdatedAt": secs(d.last_updated_ms),
        "statusReason": d.status_reason,
    });
    let key = if summary { "httpUrlSummary" } else { "httpUrlProperties" };
    v[key] = json!({ "confirmationUrl": d.confirmation_url });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_errors_map_to_the_model_types() {
        let e = ApiError::from(RulesError::SqlParse("Line 1:5 (character 4): x".into()));
        assert_eq!((e.status, e.error_type), (400, "SqlParseException"));
        let e = ApiError::from(RulesError::NotFound("no".into()));
        assert_eq!((e.status, e.error_type), (401, "UnauthorizedException"));
        let e = ApiError::from(RulesError::AlreadyExists { message: "m".into(), arn: "arn:x".into() });
        assert_eq!((e.status, e.error_type, e.body()["resourceArn"].as_str()), (409, "ResourceAlreadyExistsException", Some("arn:x")));
    }

    #[test]
    fn tagging_header_is_url_encoded_pairs() {
        let t = tags(Some("team=a%20b&env=test&flag=")).unwrap();
        assert_eq!(t, vec![("team".into(), "a b".into()), ("env".into(), "test".into()), ("flag".into(), String::new())]);
        assert!(tags(None).unwrap().is_empty());
    }

    #[test]
    fn destinations_and_rules_have_aws_shapes() {
        let d = Destination {
            arn: "arn:aws:iot:us-east-1:123456789012:ruledestination/http/x".into(),
            confirmation_url: "https://h".into(),
            status: rules::DestinationStatus::Enabled,
            status_reason: String::new(),
            created_ms: 1_000,
            last_updated_ms: 2_000,
            token: "t".into(),
            token_expires_ms: 0,
        };
        let v = destination_json(&d, false);
        assert_eq!(v["httpUrlProperties"]["confirmationUrl"], "https://h");
        assert_eq!(v["lastUpdatedAt"], 2.0);
        assert!(v.get("token").is_none());
        assert_eq!(destination_json(&d, true)["httpUrlSummary"]["confirmationUrl"], "https://h");
        let r = RuleView {
            name: "r".into(),
            arn: "arn".into(),
            sql: "SELECT 1".into(),
            description: None,
            created_ms: 1_500,
            actions: json!([]),
            error_action: None,
            disabled: false,
            sql_version: "2015-10-08".into(),
            topic_pattern: None,
        };
        let v = rule_json(&r);
        assert_eq!(v["createdAt"], 1.5);
        assert!(v.get("description").is_none() && v.get("errorAction").is_none());
    }
}
