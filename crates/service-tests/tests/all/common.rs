//! Fixtures shared by the service's integration tests.

use certdesk_pki::key::KeyAlgorithm;
use std::sync::Arc;

use certdesk_ca::authority::InitOptions;
use certdesk_ca::status::StatusService;
use certdesk_core::clock::Clock;
use certdesk_core::datadir::DataDir;
use certdesk_desk::mail::Mailer;
use certdesk_desk::portal::Portal;
use certdesk_web::AppState;

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
        pkcs11: None,
        offline_root: None,
        rsa_pss: false,
    }
}

/// Jane Doe's issuance input in `profile`.
pub fn jane_input(profile: certdesk_pki::profile::ProfileId) -> certdesk_core::ports::IssueInput {
    certdesk_core::ports::IssueInput {
        person: certdesk_pki::subject::Person {
            email: certdesk_pki::subject::EmailAddress::parse("jane.doe@example.org").unwrap(),
            given_name: certdesk_pki::subject::NameField::parse("given name", "Jane").unwrap(),
            surname: certdesk_pki::subject::NameField::parse("surname", "Doe").unwrap(),
        },
        profile,
    }
}

/// The portal of a `serve` process as `certdesk serve` wires it: the CA only through
/// its port ([`certdesk_ca::service::CaService`]).
pub fn portal(
    status: &Arc<StatusService>,
    data: &DataDir,
    mailer: Arc<dyn Mailer>,
    key: [u8; 32],
    clock: Arc<dyn Clock>,
) -> Portal {
    let authority = status.authority();
    let ca = Arc::new(certdesk_ca::service::CaService::new(status.clone()));
    Portal::new(ca, authority.store().clone(), authority.config().clone(), data, mailer, key, clock).unwrap()
}

/// The web state of a `serve` process.
pub fn state(
    status: Arc<StatusService>,
    chain: Vec<Vec<u8>>,
    clock: Arc<dyn Clock>,
    portal: Option<Arc<Portal>>,
    root_crl: Option<std::path::PathBuf>,
) -> Arc<AppState> {
    Arc::new(AppState::new(status, chain, clock, portal, root_crl).unwrap())
}

/// A fresh key of `algorithm` for a subscriber, as certdesk accepts it: the one fixture
/// for the keys the in-process tests issue to (CSRs from outside come from
/// `certdesk_test_support::csr`).
pub fn subscriber_key(algorithm: certdesk_pki::key::KeyAlgorithm) -> certdesk_pki::key::AcceptedPublicKey {
    certdesk_pki::key::PrivateKey::generate(algorithm).unwrap().accepted_public_key().unwrap()
}

/// A request for `input` with CAA not checked and no application.
pub fn request(input: certdesk_core::ports::IssueInput) -> certdesk_core::ports::IssueRequest {
    certdesk_core::ports::IssueRequest { input, caa: "not checked ([ca] caa = off)".into(), application: None }
}
