//! Certificate policies (RFC 5280 sections 6.1.2 to 6.1.5): the valid_policy_tree with
//! policy mappings, requireExplicitPolicy, inhibitPolicyMapping and inhibitAnyPolicy.
//! Policy qualifiers are ignored (RFC 5280 section 4.2.1.4 lets an application do so).
//!
//! ```text
//! certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
//! PolicyMappings ::= SEQUENCE SIZE (1..MAX) OF SEQUENCE {
//!      issuerDomainPolicy      CertPolicyId,
//!      subjectDomainPolicy     CertPolicyId }
//! PolicyConstraints ::= SEQUENCE {
//!      requireExplicitPolicy   [0] SkipCerts OPTIONAL,
//!      inhibitPolicyMapping    [1] SkipCerts OPTIONAL }
//! InhibitAnyPolicy ::= SkipCerts
//! ```

use std::collections::{BTreeMap, BTreeSet};

use der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::{CertificatePolicies, InhibitAnyPolicy, PolicyConstraints, PolicyMappings};
use x509_cert::Certificate;

use super::{decode_extension, subject_of, PathError, PolicySet, ValidationOptions};

/// `anyPolicy` (RFC 5280 section 4.2.1.4).
pub(super) const ANY_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32.0");

#[derive(Debug, Clone)]
struct Node {
    policy: ObjectIdentifier,
    expected: BTreeSet<ObjectIdentifier>,
    /// Index of the parent in the level above; `None` for the root only.
    parent: Option<usize>,
    alive: bool,
}

/// The valid_policy_tree, one level per depth. Deleted nodes stay in place with
/// `alive == false` so that parent indexes stay stable.
#[derive(Debug)]
struct Tree {
    levels: Vec<Vec<Node>>,
}

impl Tree {
    fn new() -> Self {
        let root = Node { policy: ANY_POLICY, expected: BTreeSet::from([ANY_POLICY]), parent: None, alive: true };
        Tree { levels: vec![vec![root]] }
    }

    fn level(&self, depth: usize) -> impl Iterator<Item = (usize, &Node)> {
        self.levels.get(depth).into_iter().flatten().enumerate().filter(|(_, n)| n.alive)
    }

    fn has_children(&self, depth: usize, index: usize) -> bool {
        self.level(depth + 1).any(|(_, n)| n.parent == Some(index))
    }

    /// Deletes, from depth `below - 1` up to the root, every node without children.
    /// Returns whether the root survives.
    fn prune(&mut self, below: usize) -> bool {
        for depth in (0..below).rev() {
            let childless: Vec<usize> =
                self.level(depth).filter(|(i, _)| !self.has_children(depth, *i)).map(|(i, _)| i).collect();
            if let Some(level) = self.levels.get_mut(depth) {
                for i in childless {
                    if let Some(node) = level.get_mut(i) {
                        node.alive = false;
                    }
                }
            }
        }
        self.level(0).next().is_some()
    }

    /// Deletes the nodes of every level below `depth` whose parent was deleted.
    fn drop_orphans(&mut self, depth: usize) {
        for d in depth + 1..self.levels.len() {
            let (above, rest) = self.levels.split_at_mut(d);
            let (Some(parents), Some(level)) = (above.last(), rest.first_mut()) else { continue };
            for node in level.iter_mut() {
                if node.parent.and_then(|p| parents.get(p)).is_none_or(|p| !p.alive) {
                    node.alive = false;
                }
            }
        }
    }

    fn push(&mut self, depth: usize, node: Node) {
        while self.levels.len() <= depth {
            self.levels.push(Vec::new());
        }
        if let Some(level) = self.levels.get_mut(depth) {
            level.push(node);
        }
    }

    fn node(&self, depth: usize, index: usize) -> Option<&Node> {
        self.levels.get(depth).and_then(|l| l.get(index)).filter(|n| n.alive)
    }

    fn kill(&mut self, depth: usize, index: usize) {
        if let Some(node) = self.levels.get_mut(depth).and_then(|l| l.get_mut(index)) {
            node.alive = false;
        }
    }
}

/// The policy state variables of RFC 5280 section 6.1.2 (a), (d), (e), (f).
#[derive(Debug)]
pub(super) struct PolicyState {
    tree: Option<Tree>,
    explicit_policy: usize,
    inhibit_any_policy: usize,
    policy_mapping: usize,
    /// The length of the prospective path, n.
    n: usize,
}

fn policy_error(cert: &Certificate, reason: &'static str) -> PathError {
    PathError::PolicyViolation { subject: subject_of(cert), reason }
}

fn skip_certs(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl PolicyState {
    /// 6.1.2: initialisation for a path of `n` certificates.
    pub(super) fn new(n: usize, options: &ValidationOptions) -> Self {
        let start = |inhibit: bool| if inhibit { 0 } else { n.saturating_add(1) };
        PolicyState {
            tree: Some(Tree::new()),
            explicit_policy: start(options.initial_explicit_policy),
            inhibit_any_policy: start(options.initial_any_policy_inhibit),
            policy_mapping: start(options.initial_policy_mapping_inhibit),
            n,
        }
    }

    /// 6.1.3 (d), (e), (f) for certificate `i` (1-based).
    pub(super) fn process(&mut self, cert: &Certificate, i: usize, self_issued: bool) -> Result<(), PathError> {
        let policies = decode_extension::<CertificatePolicies>(cert)?;
        match (policies, self.tree.as_mut()) {
            (None, _) => self.tree = None,
            (Some(_), None) => {}
            (Some(policies), Some(tree)) => {
                let ids: Vec<ObjectIdentifier> = policies.0.iter().map(|p| p.policy_identifier).collect();
                let parent_depth = i.saturating_sub(1);
                // (d)(1): each policy other than anyPolicy.
                for &policy in ids.iter().filter(|p| **p != ANY_POLICY) {
                    let matching: Vec<usize> = tree
                        .level(parent_depth)
                        .filter(|(_, n)| n.expected.contains(&policy))
                        .map(|(j, _)| j)
                        .collect();
                    let parents = if matching.is_empty() {
                        tree.level(parent_depth).filter(|(_, n)| n.policy == ANY_POLICY).map(|(j, _)| j).collect()
                    } else {
                        matching
                    };
                    for parent in parents {
                        let expected = BTreeSet::from([policy]);
                        tree.push(i, Node { policy, expected, parent: Some(parent), alive: true });
                    }
                }
                // (d)(2): anyPolicy, unless inhibited.
                if ids.contains(&ANY_POLICY) && (self.inhibit_any_policy > 0 || (i < self.n && self_issued)) {
                    let parents: Vec<(usize, BTreeSet<ObjectIdentifier>)> =
                        tree.level(parent_depth).map(|(j, n)| (j, n.expected.clone())).collect();
                    for (parent, expected) in parents {
                        for policy in expected {
                            let exists = tree.level(i).any(|(_, c)| c.parent == Some(parent) && c.policy == policy);
                            if !exists {
                                let expected = BTreeSet::from([policy]);
                                tree.push(i, Node { policy, expected, parent: Some(parent), alive: true });
                            }
                        }
                    }
                }
                // (d)(3): prune childless nodes above depth i.
                if !tree.prune(i) || tree.level(i).next().is_none() {
                    self.tree = None;
                }
            }
        }
        // (f)
        if self.explicit_policy == 0 && self.tree.is_none() {
            return Err(policy_error(cert, "no valid certificate policy, and an explicit policy is required"));
        }
        Ok(())
    }

    /// 6.1.4 (a), (b), (h), (i), (j) for CA certificate `i` (1-based, i < n).
    pub(super) fn prepare_next(&mut self, cert: &Certificate, i: usize, self_issued: bool) -> Result<(), PathError> {
        if let Some(mappings) = decode_extension::<PolicyMappings>(cert)? {
            // (a)
            if mappings.0.iter().any(|m| m.issuer_domain_policy == ANY_POLICY || m.subject_domain_policy == ANY_POLICY)
            {
                return Err(policy_error(cert, "policyMappings maps to or from anyPolicy"));
            }
            let mut map: BTreeMap<ObjectIdentifier, BTreeSet<ObjectIdentifier>> = BTreeMap::new();
            for m in &mappings.0 {
                map.entry(m.issuer_domain_policy).or_default().insert(m.subject_domain_policy);
            }
            if let Some(tree) = self.tree.as_mut() {
                for (issuer_policy, subject_policies) in map {
                    if self.policy_mapping > 0 {
                        // (b)(1)
                        let mut found = false;
                        if let Some(level) = tree.levels.get_mut(i) {
                            for node in level.iter_mut().filter(|n| n.alive && n.policy == issuer_policy) {
                                node.expected = subject_policies.clone();
                                found = true;
                            }
                        }
                        if !found {
                            let any_parent =
                                tree.level(i).find(|(_, n)| n.policy == ANY_POLICY).and_then(|(_, n)| n.parent);
                            if let Some(parent) = any_parent {
                                let node = Node {
                                    policy: issuer_policy,
                                    expected: subject_policies.clone(),
                                    parent: Some(parent),
                                    alive: true,
                                };
                                tree.push(i, node);
                            }
                        }
                    } else {
                        // (b)(2)
                        let doomed: Vec<usize> =
                            tree.level(i).filter(|(_, n)| n.policy == issuer_policy).map(|(j, _)| j).collect();
                        for j in doomed {
                            tree.kill(i, j);
                        }
                    }
                }
                if self.policy_mapping == 0 && !tree.prune(i) {
                    self.tree = None;
                }
            }
        }
        // (h)
        if !self_issued {
            self.explicit_policy = self.explicit_policy.saturating_sub(1);
            self.policy_mapping = self.policy_mapping.saturating_sub(1);
            self.inhibit_any_policy = self.inhibit_any_policy.saturating_sub(1);
        }
        // (i)
        if let Some(constraints) = decode_extension::<PolicyConstraints>(cert)? {
            if let Some(require) = constraints.require_explicit_policy.map(skip_certs) {
                self.explicit_policy = self.explicit_policy.min(require);
            }
            if let Some(inhibit) = constraints.inhibit_policy_mapping.map(skip_certs) {
                self.policy_mapping = self.policy_mapping.min(inhibit);
            }
        }
        // (j)
        if let Some(inhibit) = decode_extension::<InhibitAnyPolicy>(cert)? {
            self.inhibit_any_policy = self.inhibit_any_policy.min(skip_certs(inhibit.0));
        }
        Ok(())
    }

    /// 6.1.5 (a), (b), (g) for the last certificate; returns the user-constrained
    /// policy set, expressed in the trust anchor's policy domain.
    pub(super) fn wrap_up(mut self, cert: &Certificate, options: &ValidationOptions) -> Result<PolicySet, PathError> {
        let n = self.n;
        // (a), (b)
        self.explicit_policy = self.explicit_policy.saturating_sub(1);
        if decode_extension::<PolicyConstraints>(cert)?.and_then(|c| c.require_explicit_policy) == Some(0) {
            self.explicit_policy = 0;
        }
        // (g)
        if let (Some(tree), PolicySet::Policies(user)) = (self.tree.as_mut(), &options.user_initial_policy_set) {
            // (g)(iii)(1): the nodes whose parent is anyPolicy.
            let mut node_set: Vec<(usize, usize)> = Vec::new();
            for depth in 1..=n {
                for (j, node) in tree.level(depth) {
                    let parent = node.parent.and_then(|p| tree.node(depth - 1, p));
                    if parent.is_some_and(|p| p.policy == ANY_POLICY) {
                        node_set.push((depth, j));
                    }
                }
            }
            // (g)(iii)(2)
            for &(depth, j) in &node_set {
                let doomed = tree.node(depth, j).is_some_and(|n| n.policy != ANY_POLICY && !user.contains(&n.policy));
                if doomed {
                    tree.kill(depth, j);
                    tree.drop_orphans(depth);
                }
            }
            // (g)(iii)(3)
            let any_leaf = tree.level(n).find(|(_, n)| n.policy == ANY_POLICY).map(|(j, n)| (j, n.parent));
            if let Some((j, parent)) = any_leaf {
                let present: BTreeSet<ObjectIdentifier> =
                    node_set.iter().filter_map(|&(d, k)| tree.node(d, k)).map(|n| n.policy).collect();
                for &policy in user.iter().filter(|p| !present.contains(*p)) {
                    tree.push(n, Node { policy, expected: BTreeSet::from([policy]), parent, alive: true });
                }
                tree.kill(n, j);
            }
            // (g)(iii)(4)
            if !tree.prune(n) || tree.level(n).next().is_none() {
                self.tree = None;
            }
        }
        if self.explicit_policy == 0 && self.tree.is_none() {
            return Err(policy_error(cert, "no valid certificate policy, and an explicit policy is required"));
        }
        let Some(tree) = self.tree else { return Ok(PolicySet::Policies(BTreeSet::new())) };
        let mut result = BTreeSet::new();
        for (_, leaf) in tree.level(n) {
            if leaf.policy == ANY_POLICY {
                return Ok(PolicySet::Any);
            }
            // Walk up to the node whose parent is anyPolicy: its policy is the one the
            // trust anchor's domain knows (before any mapping).
            let (mut depth, mut node) = (n, leaf);
            while let Some(parent) = node.parent.and_then(|p| tree.node(depth.saturating_sub(1), p)) {
                if parent.policy == ANY_POLICY {
                    break;
                }
                node = parent;
                depth = depth.saturating_sub(1);
            }
            result.insert(node.policy);
        }
        Ok(PolicySet::Policies(result))
    }
}
