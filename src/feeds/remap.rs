//! Translating ids between two versions of the feeds (SIGHUP reload).
//!
//! State recorded under the old feeds names vendors and rules by index
//! ([`VendorId`], [`RuleId`]). A reload may add, remove or reorder vendors
//! and rules, so those indexes are translated: a vendor by its id string, a
//! rule by its vendor, kind and value. What the new feeds no longer have
//! maps to `None` and is forgotten by the state that held it.

use super::{Feeds, RuleId, RuleKind, VendorId};
use std::collections::HashMap;

/// Old id → new id, for vendors and rules.
#[derive(Debug, Clone, Default)]
pub struct Remap {
    vendors: Vec<Option<VendorId>>,
    rules: Vec<Option<RuleId>>,
}

impl Remap {
    /// The translation from `old` to `new`.
    pub fn between(old: &Feeds, new: &Feeds) -> Remap {
        let vendor_ix: HashMap<&str, VendorId> = new
            .vendors
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((v.id.as_str(), VendorId::try_from(i).ok()?)))
            .collect();
        let vendors: Vec<Option<VendorId>> = old
            .vendors
            .iter()
            .map(|v| vendor_ix.get(v.id.as_str()).copied())
            .collect();
        let rule_ix: HashMap<(&str, RuleKind, &str), RuleId> = new
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let vendor = new.vendors.get(usize::from(r.vendor))?;
                Some((
                    (vendor.id.as_str(), r.kind, r.value.as_str()),
                    RuleId::try_from(i).ok()?,
                ))
            })
            .collect();
        let rules = old
            .rules
            .iter()
            .map(|r| {
                let vendor = old.vendors.get(usize::from(r.vendor))?;
                rule_ix
                    .get(&(vendor.id.as_str(), r.kind, r.value.as_str()))
                    .copied()
            })
            .collect();
        Remap { vendors, rules }
    }

    /// The new id of an old vendor.
    pub fn vendor(&self, old: VendorId) -> Option<VendorId> {
        self.vendors.get(usize::from(old)).copied().flatten()
    }

    /// The new id of an old rule.
    pub fn rule(&self, old: RuleId) -> Option<RuleId> {
        self.rules
            .get(usize::try_from(old).ok()?)
            .copied()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_vendors_and_rules_and_what_left_is_none() {
        let old = crate::feeds::load(None).expect("built-in feeds");
        let mut new = old.clone();
        // The first vendor leaves, the rest shift down, rules are reversed.
        new.vendors.remove(0);
        new.rules.retain(|r| r.vendor != 0);
        for r in &mut new.rules {
            r.vendor -= 1;
        }
        new.rules.reverse();
        let m = Remap::between(&old, &new);
        assert_eq!(m.vendor(0), None);
        assert_eq!(m.vendor(u16::MAX), None);
        for (i, v) in old.vendors.iter().enumerate().skip(1) {
            let j = m.vendor(i as VendorId).expect("vendor kept");
            assert_eq!(new.vendors[usize::from(j)].id, v.id);
        }
        let mut kept = 0;
        for (i, r) in old.rules.iter().enumerate() {
            match m.rule(i as RuleId) {
                None => assert_eq!(r.vendor, 0, "{}", r.value),
                Some(j) => {
                    let n = &new.rules[j as usize];
                    assert_eq!((n.kind, &n.value), (r.kind, &r.value));
                    kept += 1;
                }
            }
        }
        assert_eq!(kept, new.rules.len());
    }
}
