//! AWS IoT's reserved topics (developer guide, "Reserved topics"): a topic beginning with `$`
//! belongs to the platform, and a client may do on it only the operation the table allows
//! (publish a shadow request, subscribe to its answers, ...), whatever its policy says. One table
//! for every `$aws/` family, present and future; every client path (MQTT PUBLISH and will,
//! SUBSCRIBE, delivery, HTTP Publish) asks it. In-process services publish past it.
//!
//! Pure: no I/O, no locks; a walk is linear in the topic's levels.

/// One level of a pattern.
#[derive(Debug, Clone, Copy)]
enum Level {
    /// Exactly this text.
    Lit(&'static str),
    /// One of these texts.
    OneOf(&'static [&'static str]),
    /// Any one non-empty level (a thing, job, rule name...).
    Any,
    /// This and every following level (only last).
    Rest,
}

use Level::{Any, Lit, OneOf, Rest};

const FORMAT: Level = OneOf(&["json", "cbor"]);
const VERDICT: Level = OneOf(&["accepted", "rejected"]);
const SHADOW_OP: Level = OneOf(&["get", "update", "delete"]);
const CRUD: Level = OneOf(&["created", "updated", "deleted"]);
const ADDED: Level = OneOf(&["added", "removed"]);
const JOB_EVENT: Level = OneOf(&["completed", "canceled", "deleted", "cancellation_in_progress", "deletion_in_progress"]);
const EXECUTION_EVENT: Level = OneOf(&["succeeded", "failed", "rejected", "canceled", "timed_out", "removed", "deleted"]);

/// Topics a client may publish to (each also allows what its own documentation says).
const PUBLISH: &[&[Level]] = &[
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), SHADOW_OP],
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), Lit("name"), Any, SHADOW_OP],
    &[Lit("$aws"), Lit("things"), Any, Lit("defender"), Lit("metrics"), FORMAT],
    &[Lit("$aws"), Lit("things"), Any, Lit("jobs"), OneOf(&["get", "start-next"])],
    &[Lit("$aws"), Lit("things"), Any, Lit("jobs"), Any, OneOf(&["get", "update"])],
    &[Lit("$aws"), Lit("things"), Any, Lit("streams"), Any, OneOf(&["get", "describe"]), FORMAT],
    &[Lit("$aws"), Lit("certificates"), OneOf(&["create", "create-from-csr"]), FORMAT],
    &[Lit("$aws"), Lit("provisioning-templates"), Any, Lit("provision"), FORMAT],
    // Basic Ingest: `$aws/rules/{ruleName}` and anything under it.
    &[Lit("$aws"), Lit("rules"), Any, Rest],
];

/// Topics a client may subscribe to (and receive messages on).
const SUBSCRIBE: &[&[Level]] = &[
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), SHADOW_OP],
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), SHADOW_OP, VERDICT],
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), Lit("update"), OneOf(&["delta", "documents"])],
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), Lit("name"), Any, SHADOW_OP],
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), Lit("name"), Any, SHADOW_OP, VERDICT],
    &[Lit("$aws"), Lit("things"), Any, Lit("shadow"), Lit("name"), Any, Lit("update"), OneOf(&["delta", "documents"])],
    &[Lit("$aws"), Lit("things"), Any, Lit("defender"), Lit("metrics"), FORMAT, VERDICT],
    &[Lit("$aws"), Lit("things"), Any, Lit("jobs"), OneOf(&["get", "start-next"]), VERDICT],
    &[Lit("$aws"), Lit("things"), Any, Lit("jobs"), Any, OneOf(&["get", "update"]), VERDICT],
    &[Lit("$aws"), Lit("things"), Any, Lit("jobs"), OneOf(&["notify", "notify-next"])],
    &[Lit("$aws"), Lit("things"), Any, Lit("tunnels"), Lit("notify")],
    &[Lit("$aws"), Lit("things"), Any, Lit("streams"), Any, OneOf(&["data", "description", "rejected"]), FORMAT],
    &[Lit("$aws"), Lit("certificates"), OneOf(&["create", "create-from-csr"]), FORMAT, VERDICT],
    &[Lit("$aws"), Lit("provisioning-templates"), Any, Lit("provision"), FORMAT, VERDICT],
    &[Lit("$aws"), Lit("events"), Lit("certificates"), Lit("registered"), Any],
    &[Lit("$aws"), Lit("events"), Lit("job"), Any, JOB_EVENT],
    &[Lit("$aws"), Lit("events"), Lit("jobExecution"), Any, EXECUTION_EVENT],
    &[Lit("$aws"), Lit("events"), Lit("presence"), OneOf(&["connected", "disconnected"]), Any],
    &[Lit("$aws"), Lit("events"), Lit("subscriptions"), OneOf(&["subscribed", "unsubscribed"]), Any],
    &[Lit("$aws"), Lit("events"), OneOf(&["thing", "thingGroup", "thingType"]), Any, CRUD],
    &[Lit("$aws"), Lit("events"), Lit("thingTypeAssociation"), Lit("thing"), Any, Any],
    &[Lit("$aws"), Lit("events"), Lit("thingGroupMembership"), Lit("thingGroup"), Any, Lit("thing"), Any, ADDED],
    &[Lit("$aws"), Lit("events"), Lit("thingGroupHierarchy"), Lit("thingGroup"), Any, Lit("childThingGroup"), Any, ADDED],
    &[Lit("$aws"), Lit("sitewise"), Lit("asset-models"), Any, Lit("assets"), Any, Lit("properties"), Any],
];

/// Whether `topic` is reserved (begins with `$`).
pub fn is_reserved(topic: &str) -> bool {
    topic.starts_with('$')
}

/// Whether a client may publish to `topic`: any topic not beginning with `$`, or a reserved
/// topic the table lets clients publish to.
pub fn may_publish(topic: &str) -> bool {
    !is_reserved(topic) || PUBLISH.iter().any(|p| matches(p, topic))
}

/// Whether a client may publish to `topic` with RETAIN: never on a reserved topic (a retained
/// request would be answered again for every new subscriber).
pub fn may_retain(topic: &str) -> bool {
    !is_reserved(topic)
}

/// Whether a message on `topic` may be delivered to a client's subscription.
pub fn may_receive(topic: &str) -> bool {
    !is_reserved(topic) || SUBSCRIBE.iter().any(|p| matches(p, topic))
}

/// Whether a client may subscribe to `filter` (the filter part of a `$share` subscription): any
/// filter not beginning with `$`, or one that can match a topic clients may subscribe to.
/// Messages on the other topics it might also match are withheld at delivery
/// ([`may_receive`]).
pub fn may_subscribe(filter: &str) -> bool {
    !is_reserved(filter) || SUBSCRIBE.iter().any(|p| overlaps(p, filter))
}

fn level_matches(l: Level, s: &str) -> bool {
    match l {
        Lit(t) => t == s,
        OneOf(ts) => ts.contains(&s),
        Any => !s.is_empty(),
        Rest => true,
    }
}

/// Whether the pattern matches the topic name.
fn matches(pattern: &[Level], topic: &str) -> bool {
    let mut levels = topic.split('/');
    for &l in pattern {
        if let Rest = l {
            return true;
        }
        match levels.next() {
            Some(s) if level_matches(l, s) => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// Whether some topic matches both the pattern and the MQTT filter.
fn overlaps(pattern: &[Level], filter: &str) -> bool {
    let mut levels = filter.split('/');
    for &l in pattern {
        match levels.next() {
            Some("#") => return true,
            _ if matches!(l, Rest) => return true,
            Some("+") => {}
            Some(s) if level_matches(l, s) => {}
            _ => return false,
        }
    }
    // The pattern is used up: the filter may only go on with a `#` that matches zero levels.
    matches!(levels.next(), None | Some("#"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_publish_only_requests() {
        for t in [
            "a/b",
            "$aws/things/t1/shadow/update",
            "$aws/things/t1/shadow/name/cfg/get",
            "$aws/things/t1/jobs/start-next",
            "$aws/things/t1/jobs/j-9/update",
            "$aws/things/t1/defender/metrics/cbor",
            "$aws/certificates/create-from-csr/json",
            "$aws/provisioning-templates/factory/provision/json",
            "$aws/rules/my_rule",
            "$aws/rules/my_rule/a/b",
        ] {
            assert!(may_publish(t), "{t}");
        }
        for t in [
            "$aws/things/t1/shadow/update/accepted",
            "$aws/things/t1/shadow/update/delta",
            "$aws/things/t1/shadow/name/cfg/update/documents",
            "$aws/events/presence/connected/x",
            "$aws/events/thing/victim/deleted",
            "$aws/things/t1/jobs/notify",
            "$aws/things//shadow/update",
            "$aws/things/t1/shadow/update/",
            "$aws/rules",
            "$aws/other",
            "$SYS/broker/uptime",
            "$",
        ] {
            assert!(!may_publish(t), "{t}");
        }
    }

    #[test]
    fn clients_subscribe_to_answers_and_events() {
        for f in [
            "a/#",
            "$aws/things/t1/shadow/update/accepted",
            "$aws/things/t1/shadow/#",
            "$aws/things/+/shadow/name/+/update/delta",
            "$aws/events/#",
            "$aws/events/presence/+/+",
            "$aws/#",
            "$aws/things/t1/jobs/notify-next",
            "$aws/events/thingGroupMembership/thingGroup/g/thing/t/added",
        ] {
            assert!(may_subscribe(f), "{f}");
        }
        for f in ["$aws/rules/r", "$aws/rules/#", "$aws/things/t1/defender/metrics/json", "$SYS/#", "$aws/things/t1/shadow/update/accepted/x", "$aws/things/t1/jobs/get"] {
            assert!(!may_subscribe(f), "{f}");
        }
    }

    #[test]
    fn deliveries_follow_the_subscribe_table() {
        assert!(may_receive("$aws/things/t/shadow/update/delta"));
        assert!(may_receive("$aws/things/t/shadow/update"));
        assert!(!may_receive("$aws/things/t/defender/metrics/json"));
        assert!(!may_receive("$aws/rules/r/x"));
        assert!(may_receive("plain/topic"));
    }

    #[test]
    fn reserved_topics_are_never_retained() {
        assert!(may_retain("a/b"));
        assert!(!may_retain("$aws/things/t/shadow/update"));
    }

    #[test]
    fn a_very_deep_topic_is_walked_without_recursion() {
        let deep = format!("$aws/{}", "+/".repeat(100_000));
        assert!(!may_subscribe(&deep));
        assert!(!may_publish(&deep.replace('+', "x")));
    }
}
