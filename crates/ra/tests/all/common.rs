//! Fixtures shared by the service's integration tests.

use certdesk_pki::key::KeyAlgorithm;
use certdesk_ra::authority::InitOptions;

/// The CA passphrase of every test CA.
pub const PASS: &str = "correct horse battery staple";

/// `init` options for the test organisation (P-384 CA; `database_url` `None` for SQLite).
pub fn example_university(database_url: Option<String>) -> InitOptions {
    InitOptions {
        organization: "Example University".into(),
        country: "DE".into(),
        organization_identifier: Some("VATDE-123456789".into()),
        base_url: "http://pki.example.org".into(),
        key: KeyAlgorithm::P384,
        database_url,
    }
}

/// Jane Doe's issuance input in `profile`.
pub fn jane_input(profile: certdesk_pki::profile::ProfileId) -> certdesk_ra::authority::IssueInput {
    certdesk_ra::authority::IssueInput {
        person: certdesk_pki::subject::Person {
            email: certdesk_pki::subject::EmailAddress::parse("jane.doe@example.org").unwrap(),
            given_name: certdesk_pki::subject::NameField::parse("given name", "Jane").unwrap(),
            surname: certdesk_pki::subject::NameField::parse("surname", "Doe").unwrap(),
        },
        profile,
    }
}
