//! Certificate profiles: the CA/B Forum S/MIME Baseline Requirements (7.1.2.3, 7.1.4.2,
//! 7.1.6.1) generations for staff and mailbox certificates, and one private-trust
//! profile for organisations that run their own CA.
//!
//! | profile | subject | EKU | policy OID | validity |
//! |---|---|---|---|---|
//! | `sponsor-strict` (staff, default) | CN = given + surname, givenName, surname, O, organizationIdentifier, C | emailProtection | 2.23.140.1.5.3.3 | at most 825 days (BR 6.3.2) |
//! | `sponsor-multipurpose` | as above | emailProtection, clientAuth | 2.23.140.1.5.3.2 | at most 825 days |
//! | `mailbox-strict` | CN = mailbox | emailProtection | 2.23.140.1.5.1.3 | at most 825 days |
//! | `mailbox-multipurpose` | CN = mailbox | emailProtection, clientAuth | 2.23.140.1.5.1.2 | at most 825 days |
//! | `private` (private trust only) | as sponsor | emailProtection, clientAuth | the organisation's own OID, if configured | any (3 years = 1095 days by default) |
//!
//! The `private` profile is NOT a CA/B Forum profile: it is for a CA that is not
//! publicly trusted (as the German DFN-PKI practice of 3-year certificates was) and it
//! never carries a BR policy OID, so no relying party mistakes it for one.

use const_oid::ObjectIdentifier;

use crate::oid;

/// Errors in profile configuration or choice.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileError {
    /// No such profile.
    #[error(
        "unknown profile {name:?}; choose one of: strict, multipurpose, mailbox-strict, mailbox-multipurpose, private"
    )]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The validity is out of the profile's bounds.
    #[error("a validity of {days} days is not allowed for the {profile} profile (1 to {max} days)")]
    ValidityOutOfBounds {
        /// The profile.
        profile: &'static str,
        /// What was configured.
        days: u32,
        /// The maximum.
        max: u32,
    },
}

/// Which profile a certificate is issued under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileId {
    /// Sponsor-validated, strict generation (staff; the default).
    SponsorStrict,
    /// Sponsor-validated, multipurpose generation.
    SponsorMultipurpose,
    /// Mailbox-validated, strict generation.
    MailboxStrict,
    /// Mailbox-validated, multipurpose generation.
    MailboxMultipurpose,
    /// Private-trust profile: sponsor-style content, validity beyond 825 days allowed.
    Private,
}

/// The longest validity the S/MIME BR allow for strict and multipurpose generations (6.3.2).
pub const BR_MAX_VALIDITY_DAYS: u32 = 825;
/// The longest validity we allow at all, even for the private profile (5 years).
pub const PRIVATE_MAX_VALIDITY_DAYS: u32 = 1826;

impl ProfileId {
    /// Every profile.
    pub const ALL: [ProfileId; 5] = [
        ProfileId::SponsorStrict,
        ProfileId::SponsorMultipurpose,
        ProfileId::MailboxStrict,
        ProfileId::MailboxMultipurpose,
        ProfileId::Private,
    ];

    /// The canonical name (config keys, database, audit log).
    pub fn name(self) -> &'static str {
        match self {
            ProfileId::SponsorStrict => "sponsor-strict",
            ProfileId::SponsorMultipurpose => "sponsor-multipurpose",
            ProfileId::MailboxStrict => "mailbox-strict",
            ProfileId::MailboxMultipurpose => "mailbox-multipurpose",
            ProfileId::Private => "private",
        }
    }

    /// Parses a canonical name or the short command-line names `strict` and
    /// `multipurpose` (staff certificates are sponsor-validated).
    pub fn parse(name: &str) -> Result<Self, ProfileError> {
        match name {
            "strict" => Ok(ProfileId::SponsorStrict),
            "multipurpose" => Ok(ProfileId::SponsorMultipurpose),
            other => Self::ALL
                .into_iter()
                .find(|p| p.name() == other)
                .ok_or_else(|| ProfileError::Unknown { name: other.to_string() }),
        }
    }

    /// The CA/B Forum policy OID (BR 7.1.6.1), `None` for the private profile.
    pub fn br_policy_oid(self) -> Option<ObjectIdentifier> {
        match self {
            ProfileId::SponsorStrict => Some(oid::BR_SPONSOR_STRICT),
            ProfileId::SponsorMultipurpose => Some(oid::BR_SPONSOR_MULTIPURPOSE),
            ProfileId::MailboxStrict => Some(oid::BR_MAILBOX_STRICT),
            ProfileId::MailboxMultipurpose => Some(oid::BR_MAILBOX_MULTIPURPOSE),
            ProfileId::Private => None,
        }
    }

    /// Whether the subject carries the person and organisation (sponsor-validated, BR
    /// 7.1.4.2.5) rather than only the mailbox (mailbox-validated, BR 7.1.4.2.3).
    pub fn names_the_person(self) -> bool {
        !matches!(self, ProfileId::MailboxStrict | ProfileId::MailboxMultipurpose)
    }

    /// Strict generation: emailProtection is the only EKU (BR 7.1.2.3 (f)).
    pub fn is_strict(self) -> bool {
        matches!(self, ProfileId::SponsorStrict | ProfileId::MailboxStrict)
    }

    /// The extended key usages the profile grants.
    pub fn extended_key_usages(self) -> &'static [ObjectIdentifier] {
        if self.is_strict() {
            &[oid::KP_EMAIL_PROTECTION]
        } else {
            &[oid::KP_EMAIL_PROTECTION, oid::KP_CLIENT_AUTH]
        }
    }

    /// The longest validity allowed.
    pub fn max_validity_days(self) -> u32 {
        if self == ProfileId::Private {
            PRIVATE_MAX_VALIDITY_DAYS
        } else {
            BR_MAX_VALIDITY_DAYS
        }
    }

    /// The default validity: two years for BR profiles, the 3 years of the
    /// organisation's policy for the private profile.
    pub fn default_validity_days(self) -> u32 {
        if self == ProfileId::Private {
            1095
        } else {
            730
        }
    }
}

impl std::fmt::Display for ProfileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile with its configured validity: the input to issuance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberProfile {
    id: ProfileId,
    validity_days: u32,
    private_policy: Option<ObjectIdentifier>,
}

impl SubscriberProfile {
    /// Checks the configured validity against the profile's bounds. `private_policy`
    /// is the organisation's own policy OID, written only into `private` certificates.
    pub fn new(
        id: ProfileId,
        validity_days: u32,
        private_policy: Option<ObjectIdentifier>,
    ) -> Result<Self, ProfileError> {
        let max = id.max_validity_days();
        if validity_days == 0 || validity_days > max {
            return Err(ProfileError::ValidityOutOfBounds { profile: id.name(), days: validity_days, max });
        }
        Ok(Self { id, validity_days, private_policy })
    }

    /// The same profile with another validity, checked against the profile's bounds.
    pub fn with_validity(&self, validity_days: u32) -> Result<Self, ProfileError> {
        Self::new(self.id, validity_days, self.private_policy)
    }

    /// The profile.
    pub fn id(&self) -> ProfileId {
        self.id
    }

    /// Validity in days.
    pub fn validity_days(&self) -> u32 {
        self.validity_days
    }

    /// The policy OIDs written into certificatePolicies.
    pub fn policies(&self) -> Vec<ObjectIdentifier> {
        match self.id.br_policy_oid() {
            Some(oid) => vec![oid],
            None => self.private_policy.into_iter().collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(ProfileId::parse("strict").unwrap(), ProfileId::SponsorStrict);
        assert_eq!(ProfileId::parse("multipurpose").unwrap(), ProfileId::SponsorMultipurpose);
        for p in ProfileId::ALL {
            assert_eq!(ProfileId::parse(p.name()).unwrap(), p);
        }
        assert!(ProfileId::parse("legacy").is_err());
    }

    #[test]
    fn br_profiles_cap_validity_at_825_days() {
        assert!(SubscriberProfile::new(ProfileId::SponsorStrict, 825, None).is_ok());
        assert!(SubscriberProfile::new(ProfileId::SponsorStrict, 826, None).is_err());
        assert!(SubscriberProfile::new(ProfileId::Private, 1095, None).is_ok());
        assert!(SubscriberProfile::new(ProfileId::Private, 0, None).is_err());
        let strict = SubscriberProfile::new(ProfileId::SponsorStrict, 825, None).unwrap();
        assert_eq!(strict.with_validity(365).unwrap().validity_days(), 365);
        assert!(strict.with_validity(826).is_err());
    }

    #[test]
    fn private_profile_never_carries_a_br_oid() {
        let p = SubscriberProfile::new(ProfileId::Private, 1095, None).unwrap();
        assert!(p.policies().is_empty());
        let own = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
        assert_eq!(SubscriberProfile::new(ProfileId::Private, 1095, Some(own)).unwrap().policies(), vec![own]);
    }
}
