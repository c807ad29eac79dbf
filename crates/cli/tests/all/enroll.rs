//! `certdesk enroll` against a running portal: resumable steps, the key made locally,
//! only a CSR sent, the .p12 written here and opened by OpenSSL.

use serde_json::{json, Value};

use super::browser::{demo_serve, free_port, http_auth, mail_line, totp_now, validation_code};
use super::common::*;

fn json_of(reply: (u16, Vec<u8>), want: u16) -> Value {
    let value: Value = serde_json::from_slice(&reply.1).unwrap_or(Value::Null);
    assert_eq!(reply.0, want, "{value}");
    value
}

#[test]
fn enroll_applies_step_by_step_and_keeps_the_key_local() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _serve = demo_serve(dir.path(), port);
    let server = format!("http://127.0.0.1:{port}");
    let outbox = dir.path().join("demo/outbox");
    let jane = "jane.doe@example.org";
    let enroll = |extra: &[&str]| {
        let mut args = vec!["enroll", "--server", &server, "--email", jane, "--dir", "e", "--key", "p256"];
        args.extend_from_slice(extra);
        certdesk_in(dir.path(), &args)
    };

    // 1. A sign-in link is mailed.
    let run = enroll(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("--link"), "{}", run.stderr);
    let link = mail_line(&outbox, jane, "/signin/");
    // A wrong link: refused, nothing saved.
    let run = enroll(&["--link", &format!("{server}/signin/forged")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!dir.path().join("e/session").exists());
    // 2. Sign in and apply.
    let run = enroll(&["--link", &link, "--given-name", "Jane", "--surname", "Doe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("--code"), "{}", run.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("e/session")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the session token is readable by others");
    }
    // 3. A wrong code, then the mailed one.
    let run = enroll(&["--code", "AAAA-BBBB"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("attempts left"), "{}", run.stderr);
    let run = enroll(&["--code", &validation_code(&outbox, jane)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("no appointment is free yet"), "{}", run.stderr);

    // The officer (signed in over the API, with TOTP enrolment) opens an appointment.
    let added =
        certdesk_in(dir.path(), &["--data", "demo", "user", "add", "--email", "desk@example.org", "--role", "officer"]);
    let officer_link = String::from_utf8_lossy(&added.stdout).trim().to_string();
    let session =
        json_of(http_auth(port, "POST", "/api/v1/sessions", None, Some(&json!({ "token": officer_link }))), 201);
    let officer = session["token"].as_str().unwrap().to_string();
    let enrolment = json_of(http_auth(port, "POST", "/api/v1/sessions/totp-enrolment", Some(&officer), None), 200);
    let code = totp_now(enrolment["secret"].as_str().unwrap());
    let body = json!({ "code": code, "sealed": enrolment["sealed"] });
    json_of(http_auth(port, "POST", "/api/v1/sessions/second-factor", Some(&officer), Some(&body)), 200);
    let tomorrow = time::OffsetDateTime::now_utc().unix_timestamp() / 3600 * 3600 + 86_400;
    let slot = json!({ "starts_at": tomorrow, "place": "Room 1.01" });
    let slot = json_of(http_auth(port, "POST", "/api/v1/slots", Some(&officer), Some(&slot)), 201);
    let slot_id = slot["id"].as_str().unwrap().to_string();
    // The applicant sees it and books it.
    let run = enroll(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(listed.contains(&slot_id) && listed.contains("Room 1.01"), "{listed}");
    let run = enroll(&["--book", &slot_id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("booked") && run.stderr.contains("Room 1.01"), "{}", run.stderr);
    let run = enroll(&[]);
    assert!(run.stderr.contains("your appointment") && run.stderr.contains("Room 1.01"), "{}", run.stderr);
    // An unknown slot is refused by the server; one starting with `-` too (older slot
    // ids could), not taken for an option.
    let run = enroll(&["--book", "-no-such-slot"]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    // The officer checks the ID and approves.
    let queue = json_of(http_auth(port, "GET", "/api/v1/officer/queue", Some(&officer), None), 200);
    let id = queue[0]["id"].as_str().unwrap().to_string();
    let evidence = json!({"document_type": "identity-card", "issuing_authority": "Stadt Köln", "document_number": "L01",
                          "document_expires": "2031-01-01", "verified_in_person": true});
    json_of(
        http_auth(
            port,
            "POST",
            &format!("/api/v1/officer/applications/{id}/identity"),
            Some(&officer),
            Some(&evidence),
        ),
        200,
    );
    json_of(http_auth(port, "POST", &format!("/api/v1/officer/applications/{id}/approve"), Some(&officer), None), 200);

    // 4. The key is made here; a weak password is refused before anything is issued.
    std::fs::write(dir.path().join("weak"), "password").unwrap();
    let run = enroll(&["--password-file", "weak"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!dir.path().join("e/certificate.p12").exists());
    std::fs::write(dir.path().join("pw"), "Blue-Otter-Canyon-42\n").unwrap();
    // For Thunderbird and an Android phone: the advisor makes the compatible .p12 and
    // prints both clients' steps.
    let run = enroll(&["--password-file", "pw", "--client", "thunderbird", "--client", "android"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(".p12 format compat (for Android)"), "{}", run.stderr);
    assert!(run.stderr.contains("Thunderbird:\n  1.") && run.stderr.contains("Android:\n  1."), "{}", run.stderr);
    let info =
        tool("openssl", &["pkcs12", "-in", "e/certificate.p12", "-passin", "file:pw", "-info", "-noout"], dir.path());
    assert!(info.stderr.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{}", info.stderr);
    let opened = tool(
        "openssl",
        &["pkcs12", "-in", "e/certificate.p12", "-passin", "file:pw", "-nodes", "-out", "e/all.pem"],
        dir.path(),
    );
    assert_eq!(opened.code, 0, "{}", opened.stderr);
    let all = std::fs::read_to_string(dir.path().join("e/all.pem")).unwrap();
    assert!(all.contains("PRIVATE KEY") && all.contains("BEGIN CERTIFICATE"));
    let text = tool("openssl", &["x509", "-in", "e/certificate.pem", "-noout", "-ext", "subjectAltName"], dir.path());
    assert!(String::from_utf8_lossy(&text.stdout).contains(jane), "{}", text.stderr);
    // The certificate chains to the demo CA.
    let (_, chain) = super::browser::http(port, "GET", "/ca/chain.pem", None);
    std::fs::write(dir.path().join("chain.pem"), chain).unwrap();
    let verify =
        tool("openssl", &["verify", "-CAfile", "chain.pem", "-purpose", "smimesign", "e/certificate.pem"], dir.path());
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    // Again: nothing more to do.
    let run = enroll(&[]);
    assert!(run.code == 0 && run.stderr.contains("already issued"), "{}", run.stderr);

    // Renewal: the ID check and the mailbox are recent and reused, so it waits only for
    // the approval; it is issued into new files, and the first certificate's .p12 stays
    // as it was.
    let first_p12 = std::fs::read(dir.path().join("e/certificate.p12")).unwrap();
    let serial = {
        let run = tool("openssl", &["x509", "-in", "e/certificate.pem", "-noout", "-serial"], dir.path());
        String::from_utf8(run.stdout).unwrap().trim().trim_start_matches("serial=").to_ascii_lowercase()
    };
    let run = enroll(&["--renew", &serial, "--password-file", "pw"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("renewal of") && run.stderr.contains("once the application is approved"),
        "{}",
        run.stderr
    );
    // Renewing again while this renewal is under way: refused, nothing forgotten.
    let run = enroll(&["--renew", &serial]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("is still awaiting-checks"), "{}", run.stderr);
    let queue = json_of(http_auth(port, "GET", "/api/v1/officer/queue", Some(&officer), None), 200);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    let renewal = queue[0]["id"].as_str().unwrap().to_string();
    assert_eq!(queue[0]["identity_verified"], true);
    let approve = format!("/api/v1/officer/applications/{renewal}/approve");
    json_of(http_auth(port, "POST", &approve, Some(&officer), None), 200);
    let run = enroll(&["--password-file", "pw"]);
    assert!(run.code == 0 && run.stderr.contains("issued serial"), "{}", run.stderr);
    assert_eq!(std::fs::read(dir.path().join("e/certificate.p12")).unwrap(), first_p12);
    let renewed = tool(
        "openssl",
        &["pkcs12", "-in", "e/certificate-2.p12", "-passin", "file:pw", "-nodes", "-noout"],
        dir.path(),
    );
    assert_eq!(renewed.code, 0, "{}", renewed.stderr);
    // Revocation of the first: listed as revoked by the portal.
    let run = enroll(&["--revoke", &serial, "--reason", "superseded"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("revoked (superseded)"), "{}", run.stderr);
    let run = enroll(&["--revoke", &serial]);
    assert_eq!(run.code, 1, "revoked twice: {}", run.stderr);
    let run = enroll(&["--revoke", "../officer/queue"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // A session the portal no longer knows is forgotten; the next run mails a link.
    std::fs::write(dir.path().join("e/session"), "an-ended-session").unwrap();
    let run = enroll(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("session has ended"), "{}", run.stderr);
    assert!(!dir.path().join("e/session").exists());
    let run = enroll(&[]);
    assert!(run.code == 0 && run.stderr.contains("--link"), "{}", run.stderr);
}

/// Issue 14 item 9: on a campus network the portal (like OCSP responders and CRLs) is
/// reached through the proxy of `HTTP_PROXY`, unless `NO_PROXY` names it. The proxy here
/// takes the CONNECT for a name that does not resolve and plays the portal itself.
#[test]
fn enroll_goes_through_the_proxy_of_the_environment() {
    use std::io::{BufRead, BufReader, Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let fake = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let head = |reader: &mut BufReader<std::net::TcpStream>| {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break lines;
                }
                lines.push(line.trim().to_string());
            }
        };
        let connect = head(&mut reader);
        reader.get_mut().write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
        let request = head(&mut reader);
        let length: usize = request
            .iter()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap();
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        (connect, request, String::from_utf8(body).unwrap())
    });
    let args = ["enroll", "--server", "http://portal.example.invalid", "--email", "jane.doe@example.org", "--dir", "e"];
    let run = certdesk_with_proxy_env(dir.path(), &args, &[("HTTP_PROXY", &proxy)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("a sign-in link was mailed"), "{}", run.stderr);
    let (connect, request, body) = fake.join().unwrap();
    assert_eq!(connect[0], "CONNECT portal.example.invalid:80 HTTP/1.1");
    assert_eq!(request[0], "POST /api/v1/sign-in HTTP/1.1");
    assert!(request.iter().any(|l| l.eq_ignore_ascii_case("host: portal.example.invalid")), "{request:?}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({ "email": "jane.doe@example.org" }));

    // NO_PROXY names the portal: it is looked up here (and does not exist); the proxy
    // hears nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let no_proxy = [("HTTP_PROXY", proxy.as_str()), ("NO_PROXY", "localhost,.example.invalid")];
    let run = certdesk_with_proxy_env(dir.path(), &args, &no_proxy);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach http://portal.example.invalid"), "{}", run.stderr);
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the proxy was asked although NO_PROXY names the host");
}
