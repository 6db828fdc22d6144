//! Matching a request to an operation: among the services that share a signing name, by HTTP
//! method and path template (literal segments before labels before greedy labels, literal
//! query parameters before none), by `X-Amz-Target` for the json protocol, by `Action` for
//! the query protocol.

use crate::{Operation, Protocol, Service};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Literal(&'static str),
    Label(&'static str),
    Greedy(&'static str),
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Label(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

#[derive(Debug)]
struct Entry {
    service: &'static Service,
    op: &'static Operation,
    segments: Vec<Segment>,
}

/// A matched operation and its path labels (percent-decoded), by label name.
#[derive(Debug, Clone)]
pub struct Matched {
    pub service: &'static Service,
    pub op: &'static Operation,
    pub labels: Vec<(String, String)>,
}

/// Why nothing matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No operation of these services has this method and path.
    NoRoute,
    /// A query-protocol service: the operation is named by the `Action` field of the body.
    NeedsAction,
}

/// The operations of the services that share one signing name.
#[derive(Debug)]
pub struct Router {
    /// By method: REST entries, most specific first.
    rest: Vec<(&'static str, Vec<Entry>)>,
    /// json-protocol services: (`X-Amz-Target` prefix, service).
    targets: Vec<(&'static str, &'static Service)>,
    query: Vec<&'static Service>,
}

fn segments(path: &'static str) -> Vec<Segment> {
    let path = path.trim_start_matches('/').trim_end_matches('/');
    if path.is_empty() {
        return Vec::new();
    }
    path.split('/')
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(label) => match label.strip_suffix('+') {
                Some(g) => Segment::Greedy(g),
                None => Segment::Label(label),
            },
            None => Segment::Literal(s),
        })
        .collect()
}

impl Router {
    /// A router over `services` (all of one signing name).
    pub fn new(services: &[&'static Service]) -> Router {
        let mut rest: Vec<(&'static str, Vec<Entry>)> = Vec::new();
        let mut targets = Vec::new();
        let mut query = Vec::new();
        for &service in services {
            match service.protocol {
                Protocol::Json => targets.push((service.target_prefix.unwrap_or(service.name), service)),
                Protocol::Query => query.push(service),
                Protocol::RestJson => {
                    for op in service.operations {
                        let entry = Entry { service, op, segments: segments(op.path) };
                        match rest.iter_mut().find(|(m, _)| *m == op.method) {
                            Some((_, list)) => list.push(entry),
                            None => rest.push((op.method, vec![entry])),
                        }
                    }
                }
            }
        }
        for (_, list) in &mut rest {
            list.sort_by(|a, b| {
                let ranks = |e: &Entry| e.segments.iter().map(Segment::rank).collect::<Vec<_>>();
                ranks(a).cmp(&ranks(b)).then(b.op.query.len().cmp(&a.op.query.len())).then(b.segments.len().cmp(&a.segments.len()))
            });
        }
        Router { rest, targets, query }
    }

    /// The operation a request names. `path` is percent-encoded as it arrived; `query` and
    /// `headers` (lowercase names) are decoded.
    pub fn find(&self, method: &str, path: &str, query: &[(String, String)], headers: &[(String, String)]) -> Result<Matched, Miss> {
        if !self.targets.is_empty()
            && method == "POST"
            && let Some((_, target)) = headers.iter().find(|(k, _)| k == "x-amz-target")
            && let Some((prefix, name)) = target.split_once('.')
            && let Some((_, service)) = self.targets.iter().find(|(p, _)| *p == prefix)
        {
            return service.operation(name).map(|op| Matched { service, op, labels: Vec::new() }).ok_or(Miss::NoRoute);
        }
        if let Some((_, entries)) = self.rest.iter().find(|(m, _)| *m == method) {
            let actual: Vec<&str> = {
                let p = path.trim_start_matches('/').trim_end_matches('/');
                if p.is_empty() { Vec::new() } else { p.split('/').collect() }
            };
            for e in entries {
                if !e.op.query.iter().all(|(k, v)| query.iter().any(|(qk, qv)| qk == k && (v.is_empty() || qv == v))) {
                    continue;
                }
                if let Some(labels) = match_segments(&e.segments, &actual) {
                    return Ok(Matched { service: e.service, op: e.op, labels });
                }
            }
        }
        if !self.query.is_empty() {
            return Err(Miss::NeedsAction);
        }
        Err(Miss::NoRoute)
    }

    /// The operation a query-protocol request names by its `Action` field.
    pub fn action(&self, action: &str) -> Option<Matched> {
        self.query.iter().find_map(|s| s.operation(action).map(|op| Matched { service: s, op, labels: Vec::new() }))
    }

    /// The protocol these services speak (one per signing name in AWS's models).
    pub fn protocol(&self) -> Protocol {
        if !self.query.is_empty() {
            Protocol::Query
        } else if !self.targets.is_empty() && self.rest.is_empty() {
            Protocol::Json
        } else {
            Protocol::RestJson
        }
    }
}

fn match_segments(template: &[Segment], actual: &[&str]) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    for (i, seg) in template.iter().enumerate() {
        match seg {
            Segment::Greedy(name) => {
                let rest = actual.get(i..)?.join("/");
                if rest.is_empty() {
                    return None;
                }
                labels.push((name.to_string(), decode(&rest)?));
                return Some(labels);
            }
            Segment::Label(name) => {
                let a = actual.get(i)?;
                if a.is_empty() {
                    return None;
                }
                labels.push((name.to_string(), decode(a)?));
            }
            Segment::Literal(l) => {
                if actual.get(i)? != l {
                    return None;
                }
            }
        }
    }
    (template.len() == actual.len()).then_some(labels)
}

pub use awscore::percent_decode as decode;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::*;

    fn find(r: &Router, method: &str, path: &str, query: &[(&str, &str)]) -> Option<(&'static str, Vec<(String, String)>)> {
        let q: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        r.find(method, path, &q, &[]).ok().map(|m| (m.op.name, m.labels))
    }

    #[test]
    fn rest_paths_prefer_literals_and_decode_labels() {
        let r = Router::new(&[&iot::SERVICE]);
        assert_eq!(find(&r, "GET", "/things/a%20b", &[]).unwrap(), ("DescribeThing", vec![("thingName".into(), "a b".into())]));
        assert_eq!(find(&r, "PUT", "/thing-groups/addThingToThingGroup", &[]).unwrap().0, "AddThingToThingGroup");
        assert_eq!(find(&r, "GET", "/things/t/principals", &[]).unwrap().0, "ListThingPrincipals");
        assert_eq!(find(&r, "GET", "/authorizers/", &[]).unwrap().0, "ListAuthorizers");
        assert_eq!(find(&r, "GET", "/authorizers", &[]).unwrap().0, "ListAuthorizers");
        assert_eq!(find(&r, "GET", "/confirmdestination/a/b%2Fc", &[]).unwrap().1, vec![("confirmationToken".into(), "a/b/c".into())]);
        assert!(find(&r, "GET", "/things/", &[]).is_some_and(|(op, _)| op == "ListThings"));
        assert!(find(&r, "GET", "/no/such/path", &[]).is_none());
    }

    #[test]
    fn literal_query_parameters_pick_the_operation() {
        let r = Router::new(&[&lambda::SERVICE]);
        assert_eq!(find(&r, "GET", "/2018-10-31/layers", &[("find", "LayerVersion"), ("Arn", "x")]).unwrap().0, "GetLayerVersionByArn");
        assert_eq!(find(&r, "GET", "/2018-10-31/layers", &[]).unwrap().0, "ListLayers");
        assert_eq!(find(&r, "GET", "/2015-03-31/functions", &[]).unwrap().0, "ListFunctions");
        assert_eq!(find(&r, "POST", "/2015-03-31/functions/f/invocations", &[]).unwrap().0, "Invoke");
    }

    #[test]
    fn services_sharing_a_signing_name_are_told_apart_by_path() {
        let r = Router::new(&[&iot1click_devices::SERVICE, &iot1click_projects::SERVICE]);
        let m = r.find("GET", "/devices/d1", &[], &[]).unwrap();
        assert_eq!((m.service.name, m.op.name), ("iot1click-devices", "DescribeDevice"));
        let m = r.find("GET", "/projects/p1", &[], &[]).unwrap();
        assert_eq!((m.service.name, m.op.name), ("iot1click-projects", "DescribeProject"));
    }

    #[test]
    fn json_protocol_uses_the_target_header() {
        let r = Router::new(&[&iotsecuretunneling::SERVICE]);
        let h = vec![("x-amz-target".to_string(), "IoTSecuredTunneling.OpenTunnel".to_string())];
        assert_eq!(r.find("POST", "/", &[], &h).unwrap().op.name, "OpenTunnel");
        let h = vec![("x-amz-target".to_string(), "IoTSecuredTunneling.Nope".to_string())];
        assert_eq!(r.find("POST", "/", &[], &h).unwrap_err(), Miss::NoRoute);
        let r = Router::new(&[&iam::SERVICE]);
        assert_eq!(r.find("POST", "/", &[], &[]).unwrap_err(), Miss::NeedsAction);
        assert_eq!(r.action("GetUser").unwrap().op.name, "GetUser");
    }

    /// Every operation's own path, with its labels filled in, routes back to it.
    #[test]
    fn every_operation_is_reachable_by_its_own_path() {
        let mut by_signing: Vec<(&str, Vec<&'static Service>)> = Vec::new();
        for s in ALL {
            match by_signing.iter_mut().find(|(n, _)| *n == s.signing_name) {
                Some((_, v)) => v.push(s),
                None => by_signing.push((s.signing_name, vec![s])),
            }
        }
        for (_, services) in by_signing {
            let r = Router::new(&services);
            for s in services.iter().filter(|s| s.protocol == Protocol::RestJson) {
                for op in s.operations {
                    let path: String = op.path.split('/').map(|seg| if seg.starts_with('{') { "x1" } else { seg }).collect::<Vec<_>>().join("/");
                    let q: Vec<(String, String)> = op.query.iter().map(|(k, v)| (k.to_string(), if v.is_empty() { "v".to_string() } else { v.to_string() })).collect();
                    let m = r.find(op.method, &path, &q, &[]).unwrap_or_else(|e| panic!("{}:{} {path}: {e:?}", s.name, op.name));
                    // iot1click's devices and projects both answer `/tags/{resource-arn}` (AWS
                    // tells them apart by host); tags are kept by ARN for every service alike.
                    let same = (m.service.name, m.op.name) == (s.name, op.name) 
                        || (m.op.name == op.name && segments(m.op.path).iter().map(Segment::rank).eq(segments(op.path).iter().map(Segment::rank)));
                    assert!(same, "{}:{} {path} went to {}:{}", s.name, op.name, m.service.name, m.op.name);
                }
            }
        }
    }
}
