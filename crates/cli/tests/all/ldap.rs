//! Issue 16: the LDAP directory of `serve`, asked by OpenLDAP's `ldapsearch` (Debian
//! ldap-utils) with the filters Thunderbird and Outlook send; the certificates it hands
//! out verified by `openssl verify`; SMIMEA records checked by BIND's
//! `named-checkzone`.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;

use super::common::*;
use super::serve::{start_with, wait_for, Server};

const BASE: &str = "ou=people,dc=example,dc=org";

/// Issues for a fresh P-256 CSR: sponsor-validated with names, or mailbox-only.
fn issue(ca: &Ca, name: &str, email: &str, names: Option<(&str, &str)>) -> String {
    let csr = ca.csr(name, KeyKind::P256);
    let out = format!("{name}.pem");
    let mut args = vec!["issue", "--csr", csr.to_str().unwrap(), "--email", email, "--out", &out];
    // The command asks for names always; a mailbox-validated profile leaves them out of
    // the certificate.
    let (given, surname) = names.unwrap_or(("Help", "Desk"));
    args.extend_from_slice(&["--given-name", given, "--surname", surname]);
    if names.is_none() {
        args.extend_from_slice(&["--profile", "mailbox-strict"]);
    }
    ca.run(&args).ok();
    ca.serial_of(&ca.path(&out))
}

/// Adds `[directory.ldap]` to certdesk.toml.
fn configure(ca: &Ca, keys: &str) {
    let path = ca.path("data/certdesk.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("\n[directory.ldap]\nbase = \"{BASE}\"\n{keys}\n"));
    std::fs::write(&path, text).unwrap();
}

/// The address after `marker` in what serve said.
fn said(server: &Server, marker: &str) -> String {
    let mut found = None;
    assert!(
        wait_for(|| {
            found = server.log.lock().unwrap().iter().find_map(|l| l.split(marker).nth(1).map(str::to_string));
            found.is_some()
        }),
        "serve never said {marker:?}: {:?}",
        server.log.lock().unwrap()
    );
    found.unwrap().split_whitespace().next().unwrap().to_string()
}

/// ldapsearch: (exit code, LDIF without wrapping, stderr).
fn ldapsearch(ca: &Ca, url: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["-x", "-LLL", "-o", "ldif-wrap=no", "-o", "nettimeout=10", "-H", url];
    all.extend_from_slice(args);
    let run = tool_env(ca.dir.path(), "ldapsearch", &all, &[("LDAPTLS_CACERT", "tlsca.pem"), ("LDAPRC", "/dev/null")]);
    (run.code, String::from_utf8_lossy(&run.stdout).into_owned(), run.stderr)
}

/// The values of an attribute in LDIF (base64 ones decoded).
fn values(ldif: &str, attr: &str) -> Vec<Vec<u8>> {
    ldif.lines()
        .filter_map(|line| {
            if let Some(v) = line.strip_prefix(&format!("{attr}:: ")) {
                Some(base64::engine::general_purpose::STANDARD.decode(v).unwrap())
            } else {
                line.strip_prefix(&format!("{attr}: ")).map(|v| v.as_bytes().to_vec())
            }
        })
        .collect()
}

fn dns(ldif: &str) -> Vec<String> {
    ldif.lines().filter_map(|l| l.strip_prefix("dn: ")).map(str::to_string).collect()
}

/// The certificates handed out for `email` verify with OpenSSL against the CA chain; their
/// serials.
fn verified_serials(ca: &Ca, ldif: &str) -> Vec<String> {
    ca.split_chain();
    let mut serials = Vec::new();
    for (i, der) in values(ldif, "userCertificate;binary").iter().enumerate() {
        let file = format!("ldap-{i}.der");
        std::fs::write(ca.path(&file), der).unwrap();
        let pem = format!("ldap-{i}.pem");
        ca.tool("openssl", &["x509", "-inform", "DER", "-in", &file, "-out", &pem]).ok();
        let run = ca.tool("openssl", &["verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem", &pem]);
        assert_eq!(run.code, 0, "openssl verify: {}", run.stderr);
        serials.push(ca.serial_of(&ca.path(&pem)));
    }
    serials.sort();
    serials
}

/// Issue 16: the root DSE names the base; Thunderbird's certificate lookup and
/// autocompletion, Outlook's lookup with an attribute this directory does not have,
/// presence and negation, paged results and the size limit; certificates that verify;
/// a revoked certificate gone after the refresh, the person's other one kept; the web
/// directory's JSON shows the same set.
#[test]
fn mail_clients_find_certificates_and_revoked_ones_go() {
    let ca = Ca::new("p384");
    let jane_old = issue(&ca, "jane1", "jane.doe@example.org", Some(("Jane", "Doe")));
    let jane_new = issue(&ca, "jane2", "jane.doe@example.org", Some(("Jane", "Doe")));
    let max = issue(&ca, "max", "max.mustermann@example.org", Some(("Max", "Mustermann")));
    issue(&ca, "erika", "erika.mustermann@example.org", Some(("Erika", "Mustermann")));
    issue(&ca, "shared", "helpdesk@example.org", None);
    configure(&ca, "listen = \"127.0.0.1:0\"\nsize_limit = 4");
    let server = start_with(&ca, &["--listen", "127.0.0.1:0"]);
    let url = format!("ldap://{}", said(&server, "LDAP directory on ldap://"));

    // The root DSE, as a client asks it before anything else.
    let (code, ldif, err) =
        ldapsearch(&ca, &url, &["-s", "base", "-b", "", "(objectClass=*)", "namingContexts", "supportedControl"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(values(&ldif, "namingContexts"), [BASE.as_bytes()]);
    assert_eq!(values(&ldif, "supportedControl"), [b"1.2.840.113556.1.4.319".as_slice()]);

    // Thunderbird looks a recipient's certificate up by address.
    let (code, ldif, err) =
        ldapsearch(&ca, &url, &["-b", BASE, "(mail=Jane.Doe@example.org)", "userCertificate;binary"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dns(&ldif), [format!("mail=jane.doe@example.org,{BASE}")]);
    let mut both = vec![jane_old.clone(), jane_new.clone()];
    both.sort();
    assert_eq!(verified_serials(&ca, &ldif), both);
    // Outlook: mail or an Exchange attribute this directory does not know (Undefined
    // inside an or).
    let (code, ldif, err) = ldapsearch(
        &ca,
        &url,
        &["-b", BASE, "(|(mail=max.mustermann@example.org)(proxyAddresses=smtp:max.mustermann@example.org))"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(values(&ldif, "cn"), [b"Max Mustermann".as_slice()]);
    assert_eq!(values(&ldif, "givenName"), [b"Max".as_slice()]);
    assert_eq!(verified_serials(&ca, &ldif), std::slice::from_ref(&max));
    // Address-book autocompletion (Thunderbird's default filter, typed "muster").
    let (code, ldif, err) =
        ldapsearch(&ca, &url, &["-b", BASE, "(|(cn=muster*)(mail=muster*)(sn=muster*))", "cn", "mail"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dns(&ldif).len(), 2, "{ldif}");
    assert!(values(&ldif, "userCertificate;binary").is_empty(), "only the attributes asked for");
    // A mailbox-only certificate: no names; sn stands in with the local part.
    let (code, ldif, err) =
        ldapsearch(&ca, &url, &["-b", BASE, "(&(objectClass=inetOrgPerson)(!(givenName=*)))", "cn", "sn"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(values(&ldif, "cn"), [b"helpdesk@example.org".as_slice()]);
    assert_eq!(values(&ldif, "sn"), [b"helpdesk".as_slice()]);
    // Four people, four the size limit: fine; an address book paging two at a time
    // gets all four.
    let (code, ldif, err) = ldapsearch(&ca, &url, &["-b", BASE, "-E", "pr=2/noprompt", "(mail=*)", "mail"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dns(&ldif).len(), 4, "{ldif}");
    // A fifth person: more than the size limit matches.
    issue(&ca, "fifth", "fifth@example.org", Some(("Fifth", "Person")));
    assert!(wait_for(|| ldapsearch(&ca, &url, &["-b", BASE, "(mail=fifth@example.org)", "mail"]).1.contains("dn: ")));
    let (code, ldif, err) = ldapsearch(&ca, &url, &["-b", BASE, "(mail=*)", "mail"]);
    assert_eq!(code, 4, "sizeLimitExceeded: {err}");
    assert!(err.contains("Size limit exceeded"), "{err}");
    assert_eq!(dns(&ldif).len(), 4);
    // A base outside the directory, and a person who is not there.
    let (code, _, err) = ldapsearch(&ca, &url, &["-b", "dc=elsewhere", "(mail=*)"]);
    assert_eq!(code, 32, "noSuchObject: {err}");
    let (code, _, err) =
        ldapsearch(&ca, &url, &["-s", "base", "-b", &format!("mail=nobody@example.org,{BASE}"), "(objectClass=*)"]);
    assert_eq!(code, 32, "{err}");

    // The web directory's JSON lists the same certificates.
    let (status, _, body) = super::serve::http_get(&server.addr, "/api/v1/directory?email=jane.doe@example.org");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut listed: Vec<String> =
        json["certificates"].as_array().unwrap().iter().map(|c| c["serial"].as_str().unwrap().to_string()).collect();
    listed.sort();
    assert_eq!(listed, both);

    // Revoked: gone from LDAP after the refresh (one second here); the other stays.
    ca.run(&["revoke", &jane_old, "--reason", "key-compromise"]).ok();
    let gone = wait_for(|| {
        let (_, ldif, _) =
            ldapsearch(&ca, &url, &["-b", BASE, "(mail=jane.doe@example.org)", "userCertificate;binary"]);
        values(&ldif, "userCertificate;binary").len() == 1
    });
    assert!(gone, "the revoked certificate is still answered");
    let (_, ldif, _) = ldapsearch(&ca, &url, &["-b", BASE, "(mail=jane.doe@example.org)", "userCertificate;binary"]);
    assert_eq!(verified_serials(&ca, &ldif), [jane_new]);
}

/// The answer to `request` (raw bytes) on a fresh connection, until the server closes.
fn raw_exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// A DER length.
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=127 => vec![n as u8],
        128..=255 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// A search request (message id 1) with this filter (already encoded).
fn search_with_filter(filter: &[u8]) -> Vec<u8> {
    let mut body = tlv(0x04, BASE.as_bytes());
    body.extend([0x0a, 1, 2, 0x0a, 1, 0, 0x02, 1, 0, 0x02, 1, 0, 0x01, 1, 0]);
    body.extend_from_slice(filter);
    body.extend(tlv(0x30, &[]));
    let mut message = vec![0x02, 1, 1];
    message.extend(tlv(0x63, &body));
    tlv(0x30, &message)
}

/// Issue 16, hostile input: garbage, a truncated message, a filter nested 40 deep, a
/// request over the size bound, writes and an unknown critical control get LDAP result
/// codes or a notice of disconnection, never a crash: the server answers afterwards.
#[test]
fn hostile_requests_get_result_codes_and_the_server_stays_up() {
    let ca = Ca::new("p384");
    issue(&ca, "jane", "jane.doe@example.org", Some(("Jane", "Doe")));
    configure(&ca, "listen = \"127.0.0.1:0\"");
    let server = start_with(&ca, &["--listen", "127.0.0.1:0"]);
    let addr = said(&server, "LDAP directory on ldap://");
    let url = format!("ldap://{addr}");
    // The notice of disconnection (RFC 4511 4.4.1) names its OID.
    let notice = b"1.3.6.1.4.1.1466.20036";
    let answer = raw_exchange(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.windows(notice.len()).any(|w| w == notice), "garbage: {answer:?}");
    let answer = raw_exchange(&addr, &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02]);
    assert!(answer.windows(notice.len()).any(|w| w == notice), "huge length: {answer:?}");
    // (&(&(&...(objectClass=*)...))) 40 deep: refused.
    let mut filter = tlv(0x87, b"objectClass");
    for _ in 0..40 {
        filter = tlv(0xa0, &filter);
    }
    let answer = raw_exchange(&addr, &search_with_filter(&filter));
    assert!(!answer.is_empty(), "no answer to a deep filter");
    assert!(
        answer.windows(notice.len()).any(|w| w == notice) || answer.windows(3).any(|w| w == [0x0a, 1, 11]),
        "deep filter: {answer:?}"
    );
    // An or of 3000 items: over the request bound.
    let item = tlv(0xa3, &[tlv(0x04, b"mail").as_slice(), tlv(0x04, b"x@example.org").as_slice()].concat());
    let many: Vec<u8> = std::iter::repeat_n(item, 3000).flatten().collect();
    let answer = raw_exchange(&addr, &search_with_filter(&tlv(0xa1, &many)));
    assert!(answer.windows(notice.len()).any(|w| w == notice), "huge filter: {answer:?}");
    // Writes are refused.
    let ldif = format!("dn: mail=jane.doe@example.org,{BASE}\nchangetype: delete\n");
    std::fs::write(ca.path("delete.ldif"), ldif).unwrap();
    let run =
        tool_env(ca.dir.path(), "ldapmodify", &["-x", "-H", &url, "-f", "delete.ldif"], &[("LDAPRC", "/dev/null")]);
    assert_eq!(run.code, 53, "unwillingToPerform: {}", run.stderr);
    // An unknown critical control.
    let (code, _, err) = ldapsearch(&ca, &url, &["-b", BASE, "-e", "!1.2.3.4.5", "(mail=*)"]);
    assert_eq!(code, 12, "unavailableCriticalExtension: {err}");
    // A wrong password for a bind that is not configured.
    let (code, _, err) =
        ldapsearch(&ca, &url, &["-D", "cn=admin,dc=example,dc=org", "-w", "guess", "-b", BASE, "(mail=*)"]);
    assert_eq!(code, 49, "invalidCredentials: {err}");
    // Still answering.
    let (code, ldif, err) = ldapsearch(&ca, &url, &["-b", BASE, "(mail=jane.doe@example.org)", "mail"]);
    assert_eq!((code, dns(&ldif).len()), (0, 1), "{err}");
}

/// Issue 16: with `require_bind`, anonymous searches are refused but the root DSE is
/// not; a wrong password is refused; the right one over StartTLS and LDAPS (the HTTPS
/// certificate) gets answers; plain LDAP beyond loopback must be asked for.
#[test]
fn binds_starttls_and_ldaps() {
    let ca = Ca::new("p384");
    issue(&ca, "jane", "jane.doe@example.org", Some(("Jane", "Doe")));
    tls_certificate(&ca, "tls");
    std::fs::write(ca.path("ldap-password"), "address book\n").unwrap();
    configure(&ca, "listen = \"0.0.0.0:0\"");
    let run = ca.run(&["config", "check"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("directory.ldap.listen 0.0.0.0:0 is not loopback"), "{}", run.stderr);
    let path = ca.path("data/certdesk.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "listen = \"0.0.0.0:0\"",
        "listen = \"127.0.0.1:0\"\nldaps_listen = \"127.0.0.1:0\"\nbind_dn = \"cn=addressbook,dc=example,dc=org\"\n\
         bind_password_file = \"ldap-password\"\nrequire_bind = true",
    );
    std::fs::write(&path, text).unwrap();
    let server = start_with(&ca, &["--listen", "127.0.0.1:0", "--tls-cert", "tls.crt", "--tls-key", "tls.key"]);
    let plain = said(&server, "LDAP directory on ldap://");
    let tls = said(&server, "LDAP directory on ldaps://");
    let plain_port = plain.rsplit(':').next().unwrap();
    let tls_port = tls.rsplit(':').next().unwrap();
    // By address: libldap checks "localhost" against the machine's own name instead.
    let starttls = format!("ldap://127.0.0.1:{plain_port}");
    let ldaps = format!("ldaps://127.0.0.1:{tls_port}");
    let bound = ["-D", "cn=addressbook,dc=example,dc=org", "-w", "address book"];

    let (code, _, err) = ldapsearch(&ca, &starttls, &["-ZZ", "-b", BASE, "(mail=*)", "mail"]);
    assert_eq!(code, 50, "insufficientAccessRights without a bind: {err}");
    let (code, ldif, err) = ldapsearch(&ca, &starttls, &["-ZZ", "-s", "base", "-b", "", "supportedExtension"]);
    assert_eq!(code, 0, "{err}");
    assert!(values(&ldif, "supportedExtension").contains(&b"1.3.6.1.4.1.1466.20037".to_vec()), "{ldif}");
    let (code, _, err) = ldapsearch(
        &ca,
        &starttls,
        &["-ZZ", "-D", "cn=addressbook,dc=example,dc=org", "-w", "wrong", "-b", BASE, "(mail=*)"],
    );
    assert_eq!(code, 49, "{err}");
    for url in [&starttls, &ldaps] {
        let mut args = vec!["-b", BASE, "(mail=jane.doe@example.org)", "mail"];
        if url.starts_with("ldap://") {
            args.insert(0, "-ZZ");
        }
        args.extend_from_slice(&bound);
        let (code, ldif, err) = ldapsearch(&ca, url, &args);
        assert_eq!((code, dns(&ldif).len()), (0, 1), "{url}: {err}");
    }
    // TLS the client does not trust: no answer.
    let run = tool_env(
        ca.dir.path(),
        "ldapsearch",
        &["-x", "-H", &ldaps, "-o", "nettimeout=10", "-s", "base", "-b", "", "(objectClass=*)"],
        &[("LDAPTLS_CACERT", "chain.pem"), ("LDAPRC", "/dev/null")],
    );
    assert_ne!(run.code, 0);
}

/// Issue 16: `directory smimea` writes RFC 8162 records for current certificates of the
/// zone only, which BIND's named-checkzone accepts; the owner names are the SHA2-256 of
/// the local part, truncated to 28 octets; a revoked certificate has none.
#[test]
fn smimea_records_for_a_signed_zone() {
    let ca = Ca::new("p384");
    let jane = issue(&ca, "jane", "jane.doe@example.org", Some(("Jane", "Doe")));
    let revoked = issue(&ca, "old", "old@example.org", Some(("Old", "Key")));
    issue(&ca, "other", "someone@example.net", Some(("Some", "One")));
    ca.run(&["revoke", &revoked, "--reason", "superseded"]).ok();
    ca.run(&["directory", "smimea", "--zone", "example.org", "--ttl", "600", "--out", "smimea.txt"]).ok();
    let text = std::fs::read_to_string(ca.path("smimea.txt")).unwrap();
    let records: Vec<&str> = text.lines().filter(|l| !l.starts_with(';')).collect();
    assert_eq!(records.len(), 1, "{text}");
    let hash = ca.tool("sh", &["-c", "printf %s jane.doe | openssl dgst -sha256 -r | cut -c1-56"]).ok();
    let owner = format!("{}._smimecert.example.org.", String::from_utf8_lossy(&hash.stdout).trim());
    let fields: Vec<&str> = records[0].split_whitespace().collect();
    assert_eq!(fields[..7], [owner.as_str(), "600", "IN", "SMIMEA", "3", "0", "0"], "{text}");
    // The data is jane's certificate.
    let der = hex::decode(fields[7]).unwrap();
    std::fs::write(ca.path("smimea.der"), der).unwrap();
    ca.tool("openssl", &["x509", "-inform", "DER", "-in", "smimea.der", "-out", "smimea.pem"]).ok();
    assert_eq!(ca.serial_of(&ca.path("smimea.pem")), jane);
    // BIND reads the records in a zone.
    let zone = format!(
        "$TTL 600\n@ IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 600\n@ IN NS ns.example.org.\n\
         ns IN A 192.0.2.1\n{text}"
    );
    std::fs::write(ca.path("example.org.zone"), zone).unwrap();
    let run = ca.tool("named-checkzone", &["example.org", "example.org.zone"]);
    assert_eq!(run.code, 0, "named-checkzone: {} {}", String::from_utf8_lossy(&run.stdout), run.stderr);
    // A zone name that is not one.
    let run = ca.run(&["directory", "smimea", "--zone", "exa mple"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not a DNS zone name"), "{}", run.stderr);
}

/// A real OpenLDAP `slapd` (Debian slapd) in a temporary directory, on loopback, killed
/// at drop: suffix dc=example,dc=org, rootdn cn=admin,dc=example,dc=org, password
/// "secret".
struct Slapd {
    child: std::process::Child,
    url: String,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SLAPD_ADMIN: &str = "cn=admin,dc=example,dc=org";

fn slapd(ca: &Ca, entries: &str) -> Slapd {
    let dir = ca.path("slapd");
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let conf = format!(
        "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
         pidfile {dir}/slapd.pid\ndatabase mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=org\"\n\
         rootdn \"{SLAPD_ADMIN}\"\nrootpw secret\ndirectory {dir}/db\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("slapd.conf"), conf).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("ldap://127.0.0.1:{port}");
    // -d 0: in the foreground, so that the test owns the process.
    let child = std::process::Command::new("/usr/sbin/slapd")
        .args(["-f", dir.join("slapd.conf").to_str().unwrap(), "-h", &format!("{url}/"), "-d", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("slapd (Debian slapd; scripts/install-test-tools installs it)");
    let server = Slapd { child, url };
    assert!(
        wait_for(|| ldapsearch(ca, &server.url, &["-s", "base", "-b", "", "(objectClass=*)"]).0 == 0),
        "slapd did not start"
    );
    let base = "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
                dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n";
    slapd_modify(ca, &server, "ldapadd", &format!("{base}{entries}"));
    server
}

fn slapd_modify(ca: &Ca, server: &Slapd, tool: &str, ldif: &str) {
    std::fs::write(ca.path("change.ldif"), ldif).unwrap();
    let run = tool_env(
        ca.dir.path(),
        tool,
        &["-x", "-H", &server.url, "-D", SLAPD_ADMIN, "-w", "secret", "-f", "change.ldif"],
        &[("LDAPRC", "/dev/null")],
    );
    assert_eq!(run.code, 0, "{tool}: {}", run.stderr);
}

/// The certificates (DER) in an entry of the slapd, by uid.
fn slapd_certificates(ca: &Ca, server: &Slapd, uid: &str) -> Vec<Vec<u8>> {
    let (code, ldif, err) =
        ldapsearch(ca, &server.url, &["-b", "ou=people,dc=example,dc=org", &format!("(uid={uid})"), "userCertificate"]);
    assert_eq!(code, 0, "{err}");
    let mut certs = values(&ldif, "userCertificate;binary");
    certs.sort();
    certs
}

fn der_of(ca: &Ca, pem: &str) -> Vec<u8> {
    let der = format!("{pem}.der");
    ca.tool("openssl", &["x509", "-in", pem, "-outform", "DER", "-out", &der]).ok();
    std::fs::read(ca.path(&der)).unwrap()
}

/// The directory.* audit records: (action, serial, details).
fn publish_audit(ca: &Ca) -> Vec<(String, String, serde_json::Value)> {
    let script = "import sqlite3, json; c = sqlite3.connect('data/certdesk.db'); \
                  print(json.dumps(c.execute(\"SELECT action, subject, details FROM audit_log \
                  WHERE action LIKE 'directory.%' ORDER BY seq\").fetchall()))";
    let run = ca.tool("python3", &["-c", script]).ok();
    let rows: Vec<(String, String, String)> = serde_json::from_slice(&run.stdout).unwrap();
    rows.into_iter().map(|(a, s, d)| (a, s, serde_json::from_str(&d).unwrap())).collect()
}

/// Issue 16 item 2, against a real slapd: `directory publish` adds each current
/// certificate to its holder's entry (found by mail, whatever its case) next to a
/// certificate of another CA that stays; a person without an entry is named and makes
/// exit 1, the others are published; a value already there (a pass killed before its
/// record) counts as published; a second pass changes nothing; a revoked certificate is
/// removed from the entry, that value only; a wrong bind password changes nothing; a
/// certificate whose holder's entry was renamed and moved is removed from where the entry
/// is now; each publication and removal has its audit record and the chain verifies.
#[test]
fn publishing_to_slapd_adds_and_removes_only_that_certificate() {
    let ca = Ca::new("p384");
    let jane_old = issue(&ca, "jane1", "jane.doe@example.org", Some(("Jane", "Doe")));
    let jane_new = issue(&ca, "jane2", "jane.doe@example.org", Some(("Jane", "Doe")));
    let max = issue(&ca, "max", "max.mustermann@example.org", Some(("Max", "Mustermann")));
    let erika = issue(&ca, "erika", "erika@example.org", Some(("Erika", "Mustermann")));
    // A certificate of another CA in jane's entry, and jane2's already there.
    ca.tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-subj",
            "/CN=Jane Doe (other CA)",
            "-days",
            "30",
        ],
    )
    .ok();
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let other = der_of(&ca, "other.pem");
    let jane_new_der = der_of(&ca, "jane2.pem");
    let entries = format!(
        "dn: uid=jane,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: jane\ncn: Jane Doe\nsn: Doe\n\
         mail: Jane.Doe@Example.org\nuserCertificate;binary:: {}\nuserCertificate;binary:: {}\n\n\
         dn: uid=max,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: max\ncn: Max Mustermann\n\
         sn: Mustermann\nmail: max.mustermann@example.org\n",
        b64(&other),
        b64(&jane_new_der)
    );
    // Nothing configured to publish to: a usage error that names the section.
    let run = ca.run(&["directory", "publish"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("[directory.publish] is not in certdesk.toml"), "{}", run.stderr);
    let server = slapd(&ca, &entries);
    std::fs::write(ca.path("publish-password"), "secret\n").unwrap();
    let path = ca.path("data/certdesk.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[directory.publish]\nurl = \"{}\"\nbind_dn = \"{SLAPD_ADMIN}\"\nbind_password_file = \
         \"publish-password\"\nbase = \"ou=people,dc=example,dc=org\"\n",
        server.url
    ));
    std::fs::write(&path, text).unwrap();

    // erika has no entry: named, exit 1; the others are published.
    let run = ca.run(&["directory", "publish"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("NOT published {erika}: no entry for erika@example.org")), "{}", run.stderr);
    let mut jane_all = vec![other.clone(), der_of(&ca, "jane1.pem"), jane_new_der.clone()];
    jane_all.sort();
    assert_eq!(slapd_certificates(&ca, &server, "jane"), jane_all);
    assert_eq!(slapd_certificates(&ca, &server, "max"), [der_of(&ca, "max.pem")]);
    let records = publish_audit(&ca);
    let mut published: Vec<&str> = records
        .iter()
        .map(|(a, s, _)| {
            assert_eq!(a, "directory.publish");
            s.as_str()
        })
        .collect();
    published.sort();
    let mut expected = vec![jane_old.as_str(), jane_new.as_str(), max.as_str()];
    expected.sort();
    assert_eq!(published, expected);
    for (_, serial, details) in &records {
        let uid = if *serial == max { "max" } else { "jane" };
        assert_eq!(details["dn"], format!("uid={uid},ou=people,dc=example,dc=org"), "{records:?}");
    }

    // erika's entry appears: the next pass publishes hers only.
    slapd_modify(
        &ca,
        &server,
        "ldapadd",
        "dn: uid=erika,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: erika\ncn: Erika Mustermann\n\
         sn: Mustermann\nmail: erika@example.org\n",
    );
    let run = ca.run(&["directory", "publish"]).ok();
    assert!(run.stderr.contains("1 published, 0 removed, 0 failed"), "{}", run.stderr);
    assert_eq!(slapd_certificates(&ca, &server, "erika"), [der_of(&ca, "erika.pem")]);
    let run = ca.run(&["directory", "publish"]).ok();
    assert!(run.stderr.contains("0 published, 0 removed, 0 failed"), "{}", run.stderr);
    assert_eq!(publish_audit(&ca).len(), 4);

    // Revoked: removed from jane's entry, the other CA's certificate and jane2 stay.
    ca.run(&["revoke", &jane_old, "--reason", "key-compromise"]).ok();
    let run = ca.run(&["directory", "publish"]).ok();
    assert!(
        run.stderr.contains(&format!("removed {jane_old} from uid=jane,ou=people,dc=example,dc=org")),
        "{}",
        run.stderr
    );
    let mut jane_left = vec![other, jane_new_der];
    jane_left.sort();
    assert_eq!(slapd_certificates(&ca, &server, "jane"), jane_left);
    let records = publish_audit(&ca);
    let last = records.last().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("directory.unpublish", jane_old.as_str()));
    assert_eq!(last.2["reason"], "revoked");

    // A wrong password: refused, named, nothing recorded.
    ca.run(&["revoke", &max, "--reason", "superseded"]).ok();
    std::fs::write(ca.path("publish-password"), "wrong\n").unwrap();
    let run = ca.run(&["directory", "publish"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("invalidCredentials"), "{}", run.stderr);
    assert_eq!(slapd_certificates(&ca, &server, "max"), [der_of(&ca, "max.pem")]);
    assert_eq!(publish_audit(&ca).len(), 5);

    // erika's entry is renamed and moved to another unit; her certificate is then
    // revoked: it is removed from where her entry is now.
    std::fs::write(ca.path("publish-password"), "secret\n").unwrap();
    slapd_modify(
        &ca,
        &server,
        "ldapmodify",
        "dn: ou=staff,ou=people,dc=example,dc=org\nchangetype: add\nobjectClass: organizationalUnit\nou: staff\n\n\
         dn: uid=erika,ou=people,dc=example,dc=org\nchangetype: modrdn\nnewrdn: uid=erika.mustermann\n\
         deleteoldrdn: 1\nnewsuperior: ou=staff,ou=people,dc=example,dc=org\n",
    );
    ca.run(&["revoke", &erika, "--reason", "affiliation-changed"]).ok();
    let run = ca.run(&["directory", "publish"]).ok();
    let moved = "uid=erika.mustermann,ou=staff,ou=people,dc=example,dc=org";
    assert!(run.stderr.contains(&format!("removed {erika} from {moved}")), "{}", run.stderr);
    assert!(run.stderr.contains("0 published, 2 removed, 0 failed"), "{}", run.stderr);
    assert!(slapd_certificates(&ca, &server, "erika.mustermann").is_empty());
    assert!(slapd_certificates(&ca, &server, "max").is_empty());
    let records = publish_audit(&ca);
    let (_, _, details) = records.iter().find(|(a, s, _)| a == "directory.unpublish" && *s == erika).unwrap();
    assert_eq!(details["dn"], moved, "{details}");
    assert_eq!(details["moved_from"], "uid=erika,ou=people,dc=example,dc=org", "{details}");
    assert_eq!(details["outcome"], "removed from the entry it moved to", "{details}");
    ca.run(&["audit", "verify"]).ok();
}
