//! The LDAP server's request path (issue 16): BER framing with our bounds, ldap3_proto's
//! message and filter decoding, and our answers (root DSE, binds, searches with every
//! filter kind, paging cookies, controls, extended operations), replies encoded. A
//! panic anywhere is a crash; a refusal is fine.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use certdesk_desk::directory::DirectoryPerson;
use certdesk_web::ldap::{Directory, LdapSettings, Session};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

fn directory() -> &'static Directory {
    static DIRECTORY: OnceLock<Directory> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let settings = LdapSettings {
            base: "ou=people,dc=example,dc=org".into(),
            size_limit: 3,
            time_limit: Duration::from_secs(10),
            bind: Some(("cn=addressbook,dc=example,dc=org".into(), Zeroizing::new("secret".into()))),
            require_bind: false,
            idle_timeout: Duration::from_secs(300),
            per_minute: 0,
            burst: 100,
            max_connections: 16,
            max_connections_per_client: 16,
        };
        let directory = Directory::new(settings, None).expect("settings");
        let person = |mail: &str, given: Option<&str>, surname: Option<&str>| DirectoryPerson {
            mail: mail.into(),
            common_name: match (given, surname) {
                (Some(g), Some(s)) => format!("{g} {s}"),
                _ => mail.into(),
            },
            given_name: given.map(Into::into),
            surname: surname.map(Into::into),
            certificates: vec![(vec![0x30, 0x03, 0x02, 0x01, 0x01], 2_000_000_000)],
        };
        directory.replace(vec![
            person("erika.mustermann@example.org", Some("Erika"), Some("Mustermann")),
            person("helpdesk@example.org", None, None),
            person("jane.doe@example.org", Some("Jane"), Some("Doe")),
            person("max.mustermann@example.org", Some("Max"), Some("Mustermann")),
        ]);
        directory
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the connection's state; the rest is what the client sent.
    let Some((&state, bytes)) = data.split_first() else { return };
    let mut session = Session {
        bound: (state & 1 == 1).then(|| "cn=addressbook,dc=example,dc=org".to_string()),
        encrypted: state & 2 == 2,
        loopback: state & 4 == 4,
        client: std::net::IpAddr::from([192, 0, 2, state]),
    };
    let _ = directory().answer_bytes(&mut session, bytes, 1_800_000_000);
});
