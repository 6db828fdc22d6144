//! Thing principals: certificates (by ARN) or other identities attached to things, exclusively
//! (the principal has only this thing) or not.

use crate::error::{Result, invalid};
use crate::model::{Page, PrincipalType};
use crate::state::{Change, terms};
use crate::state::PRINCIPAL;
use store::state::{Expect, Terms, Write};
use crate::{Registry, validate};

impl Registry {
    /// AttachThingPrincipal (attaching again is fine; it may change the attachment type).
    pub fn attach_thing_principal(&self, thing: &str, principal: &str, ty: PrincipalType) -> Result<()> {
        validate::name("thingName", thing)?;
        validate::principal(principal)?;
        let (mut t, rev) = self.thing_in(thing)?;
        if t.principals.get(principal) == Some(&ty) {
            return Ok(());
        }
        // Exclusivity spans things: every attachment of a principal also rewrites the
        // principal's marker, expecting it as read, so two attachments of one principal (on
        // any nodes) cannot both decide on what they read.
        let marker = self.replica.store().get_blocking(PRINCIPAL, principal).map_err(store::StoreError::from)?;
        let mut others = self.find_things(Some(&Terms::Exact(terms::principal(principal))), None, 100)?;
        others.retain(|(o, _)| o.name != thing);
        if ty == PrincipalType::Exclusive
            && let Some((o, _)) = others.first()
        {
            return invalid(format!("Principal {principal} is already attached to thing {}; it cannot be attached exclusively to {thing}.", o.name));
        }
        for (o, _) in &others {
            if o.principals.get(principal) == Some(&PrincipalType::Exclusive) {
                return invalid(format!("Principal {principal} is attached exclusively to thing {}; it cannot be attached to {thing}.", o.name));
            }
        }
        t.principals.insert(principal.to_string(), ty);
        let seen = Expect::seen(marker.as_ref().map(|d| d.rev));
        let marker = Write::put(PRINCIPAL, principal, (others.len() + 1).to_string()).expect(seen);
        self.commit_things(vec![Change::Thing(t, Expect::Rev(rev))], vec![marker], Vec::new())
    }

    /// DetachThingPrincipal (a principal that is not attached is left alone, successfully).
    pub fn detach_thing_principal(&self, thing: &str, principal: &str) -> Result<()> {
        validate::name("thingName", thing)?;
        validate::principal(principal)?;
        let (mut t, rev) = self.thing_in(thing)?;
        if t.principals.remove(principal).is_none() {
            return Ok(());
        }
        self.commit_things(vec![Change::Thing(t, Expect::Rev(rev))], Vec::new(), Vec::new())
    }

    /// ListThingPrincipals(V2): the thing's principals after `after`, optionally of one type.
    pub fn list_thing_principals(
        &self,
        thing: &str,
        ty: Option<PrincipalType>,
        after_principal: Option<&str>,
        limit: usize,
    ) -> Result<Page<(String, PrincipalType)>> {
        validate::name("thingName", thing)?;
        let (t, _) = self.thing_in(thing)?;
        let iter = crate::state::map_after(&t.principals, after_principal).filter(|(_, k)| ty.is_none_or(|want| **k == want)).map(|(p, k)| (p.clone(), *k));
        Ok(Page::take(iter, limit))
    }

    /// ListPrincipalThings(V2): the things a principal is attached to, after `after`.
    pub fn list_principal_things(
        &self,
        principal: &str,
        ty: Option<PrincipalType>,
        after_thing: Option<&str>,
        limit: usize,
    ) -> Result<Page<(String, PrincipalType)>> {
        validate::principal(principal)?;
        let term = Terms::Exact(terms::principal(principal));
        self.find_page(Some(&term), after_thing, limit, 1000, |t| t.principals.get(principal).copied().filter(|k| ty.is_none_or(|want| *k == want)).map(|k| (t.name, k)))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    const CERT: &str = "arn:aws:iot:us-east-1:123456789012:cert/0123abcd";

    #[test]
    fn attach_list_and_detach() {
        let f = fixture(0);
        let r = &f.registry;
        for t in ["a", "b", "c"] {
            f.thing(t);
            r.attach_thing_principal(t, CERT, PrincipalType::NonExclusive).unwrap();
        }
        r.attach_thing_principal("a", CERT, PrincipalType::NonExclusive).unwrap();
        let p = r.list_principal_things(CERT, None, None, 2).unwrap();
        assert_eq!(p.items.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(p.more());
        let p = r.list_principal_things(CERT, None, Some("b"), 2).unwrap();
        assert_eq!(p.items.len(), 1);
        assert!(!p.more());
        assert_eq!(r.list_thing_principals("a", None, None, 10).unwrap().items, [(CERT.to_string(), PrincipalType::NonExclusive)]);
        assert!(matches!(r.attach_thing_principal("nope", CERT, PrincipalType::NonExclusive), Err(RegistryError::NotFound(_))));
        assert!(matches!(r.list_thing_principals("nope", None, None, 10), Err(RegistryError::NotFound(_))));
        r.detach_thing_principal("a", CERT).unwrap();
        r.detach_thing_principal("a", CERT).unwrap();
        assert!(r.list_thing_principals("a", None, None, 10).unwrap().items.is_empty());
        assert!(r.list_principal_things("arn:aws:iot:us-east-1:123456789012:cert/none", None, None, 10).unwrap().items.is_empty());
    }

    #[test]
    fn exclusive_attachments_admit_no_other_thing() {
        let f = fixture(0);
        let r = &f.registry;
        f.thing("a");
        f.thing("b");
        r.attach_thing_principal("a", CERT, PrincipalType::Exclusive).unwrap();
        assert!(matches!(r.attach_thing_principal("b", CERT, PrincipalType::NonExclusive), Err(RegistryError::Invalid(_))));
        r.detach_thing_principal("a", CERT).unwrap();
        r.attach_thing_principal("b", CERT, PrincipalType::NonExclusive).unwrap();
        assert!(matches!(r.attach_thing_principal("a", CERT, PrincipalType::Exclusive), Err(RegistryError::Invalid(_))));
        let v2 = r.list_principal_things(CERT, Some(PrincipalType::Exclusive), None, 10).unwrap();
        assert!(v2.items.is_empty());
    }
}
