//! The fixed value lists of the command line, as `clap` value enums: the help lists
//! them, a wrong value is refused with the list, and the names are the library's own
//! (`ProfileId::name`, `RevocationReason::name`, `KeyAlgorithm::name`), so `issue`,
//! `enroll`, the portal and the REST API agree.

use certdesk_pki::crl::RevocationReason;
use certdesk_pki::key::KeyAlgorithm;
use certdesk_pki::profile::ProfileId;
use clap::builder::PossibleValue;
use clap::ValueEnum;

/// A certificate profile: its canonical name, or `strict` / `multipurpose` for the
/// sponsor-validated staff profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileArg(pub ProfileId);

const PROFILES: [ProfileArg; 5] = [
    ProfileArg(ProfileId::SponsorStrict),
    ProfileArg(ProfileId::SponsorMultipurpose),
    ProfileArg(ProfileId::MailboxStrict),
    ProfileArg(ProfileId::MailboxMultipurpose),
    ProfileArg(ProfileId::Private),
];

impl ValueEnum for ProfileArg {
    fn value_variants<'a>() -> &'a [Self] {
        &PROFILES
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let value = PossibleValue::new(self.0.name());
        Some(match self.0 {
            ProfileId::SponsorStrict => {
                value.alias("strict").help("staff, sponsor-validated, signing and encryption (BR strict)")
            }
            ProfileId::SponsorMultipurpose => {
                value.alias("multipurpose").help("staff, sponsor-validated, also for other uses (BR multipurpose)")
            }
            ProfileId::MailboxStrict => value.help("mailbox only, no name (BR mailbox-validated strict)"),
            ProfileId::MailboxMultipurpose => value.help("mailbox only, no name (BR mailbox-validated multipurpose)"),
            ProfileId::Private => value.help("not publicly trusted: the organisation's own policy"),
        })
    }
}

/// A revocation reason: our name, or the RFC 5280 spelling (`keyCompromise`); both are
/// listed, so an error message shows either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReasonArg {
    /// The reason.
    pub reason: RevocationReason,
    /// Whether this is the RFC 5280 spelling (where it differs from ours).
    rfc5280: bool,
}

const fn reason(reason: RevocationReason, rfc5280: bool) -> ReasonArg {
    ReasonArg { reason, rfc5280 }
}

const REASONS: [ReasonArg; 8] = [
    reason(RevocationReason::KeyCompromise, false),
    reason(RevocationReason::KeyCompromise, true),
    reason(RevocationReason::Superseded, false),
    reason(RevocationReason::AffiliationChanged, false),
    reason(RevocationReason::AffiliationChanged, true),
    reason(RevocationReason::CessationOfOperation, false),
    reason(RevocationReason::CessationOfOperation, true),
    reason(RevocationReason::Unspecified, false),
];

impl ValueEnum for ReasonArg {
    fn value_variants<'a>() -> &'a [Self] {
        &REASONS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let reason = self.reason;
        if self.rfc5280 {
            return Some(PossibleValue::new(reason.rfc5280_name()).help(format!("= {}", reason.name())));
        }
        Some(PossibleValue::new(reason.name()).help(match reason {
            RevocationReason::KeyCompromise => "the private key is or may be known to others",
            RevocationReason::Superseded => "replaced by a new certificate",
            RevocationReason::AffiliationChanged => "name or affiliation changed",
            RevocationReason::CessationOfOperation => "no longer needed",
            RevocationReason::Unspecified => "no reason given",
        }))
    }
}

/// The key type of a server-generated key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyArg(pub KeyAlgorithm);

const KEYS: [KeyArg; 4] = [
    KeyArg(KeyAlgorithm::Rsa3072),
    KeyArg(KeyAlgorithm::Rsa4096),
    KeyArg(KeyAlgorithm::P256),
    KeyArg(KeyAlgorithm::P384),
];

impl ValueEnum for KeyArg {
    fn value_variants<'a>() -> &'a [Self] {
        &KEYS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()))
    }
}

/// The role of a portal user added from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StaffRole {
    /// Registration officer: identifies applicants at the desk, approves, revokes.
    Officer,
    /// Administrator: adds officers, sees the audit log.
    Admin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_value_has_a_command_line_name() {
        for id in ProfileId::ALL {
            assert_eq!(ProfileArg::from_str(id.name(), false), Ok(ProfileArg(id)));
        }
        assert_eq!(ProfileArg::from_str("strict", false), Ok(ProfileArg(ProfileId::SponsorStrict)));
        for reason in RevocationReason::ALL {
            assert_eq!(ReasonArg::from_str(reason.name(), false).map(|r| r.reason), Ok(reason));
            assert_eq!(ReasonArg::from_str(reason.rfc5280_name(), false).map(|r| r.reason), Ok(reason));
        }
        for name in ["rsa3072", "rsa4096", "p256", "p384"] {
            assert_eq!(KeyArg::from_str(name, false).map(|k| k.0.name()), Ok(name));
        }
        assert!(ProfileArg::from_str("gold", false).is_err());
    }
}

/// A mail client the certificate is for (`certdesk_desk::advisor`): the advisor picks
/// the .p12 format every named client imports, and the install steps are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientArg(pub certdesk_desk::advisor::MailClient);

static CLIENTS: std::sync::LazyLock<[ClientArg; 11]> =
    std::sync::LazyLock::new(|| certdesk_desk::advisor::MailClient::ALL.map(ClientArg));

impl ValueEnum for ClientArg {
    fn value_variants<'a>() -> &'a [Self] {
        CLIENTS.as_slice()
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()).help(self.0.label(certdesk_core::mail_settings::Lang::En)))
    }
}
