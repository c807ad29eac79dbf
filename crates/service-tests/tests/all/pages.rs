//! The portal's pages through the Router: what users typed is shown escaped on every
//! page that shows it (applicant, officer, administrator, directory), and German pages
//! (and German error pages) show none of the English catalogue's texts.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use certdesk_desk::portal::Role;
use certdesk_web::texts::{DE, EN};

use super::web_fixture::{
    desk, escrow_on, hidden, mails_to, sign_in_with, staff_sign_in_with, url_encode as encode, Browser, Reply,
};

/// The line of the newest mail to `to` that contains `needle`, and the line after it.
fn from_last_mail(outbox: &Path, to: &str, needle: &str) -> (String, String) {
    for (_, body) in mails_to(outbox, to).iter().rev() {
        let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if let Some(at) = lines.iter().position(|l| l.contains(needle)) {
            return (lines[at].to_string(), lines.get(at + 1).unwrap_or(&"").to_string());
        }
    }
    panic!("no mail to {to} with {needle}");
}

const GIVEN: &str = "<script>alert(1)</script>";
const SURNAME: &str = r#"O"Brien' & <b>Co</b>"#;
const AUTHORITY: &str = r#"<script>alert(2)</script> "Amt" & 'Co'"#;
const NUMBER: &str = "<script>alert(3)</script>&\"'";

/// Hostile values are shown escaped on every page that shows them.
#[tokio::test]
async fn what_users_typed_is_escaped_on_every_page() {
    let desk = desk(None).await;
    let jane = "jane.doe@example.org";
    let mut applicant = sign_in_with(&desk, Browser::default(), jane).await;
    let applied = applicant
        .submit(&desk, "/apply", &[("given_name", GIVEN), ("surname", SURNAME), ("profile", "sponsor-strict")])
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "the desk refused the names: {}", applied.text());
    let id = applied.headers[header::LOCATION].to_str().unwrap().trim_start_matches("/applications/").to_string();
    let (_, value) = from_last_mail(&desk.outbox, jane, "enter this code");
    let validated = applicant.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await;
    assert_eq!(validated.status, StatusCode::SEE_OTHER, "{}", validated.text());
    let (mut officer, _, _) = staff_sign_in_with(&desk, Browser::default(), "desk@example.org", Role::Officer).await;
    let evidence = [
        ("document_type", "passport"),
        ("issuing_authority", AUTHORITY),
        ("document_number", NUMBER),
        ("document_expires", "2031-03-01"),
        ("in_person", "yes"),
    ];
    let recorded = officer.submit(&desk, &format!("/officer/applications/{id}/identity"), &evidence).await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "the desk refused the evidence: {}", recorded.text());

    let shows_escaped = |page: &Reply, what: &str, values: &[&str]| {
        assert_eq!(page.status, StatusCode::OK, "{what}: {}", page.text());
        assert!(
            !page.text().contains("<script>alert") && !page.text().contains("<b>Co"),
            "{what} is not escaped: {}",
            page.text()
        );
        for value in values {
            let escaped = value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
            assert!(page.text().contains(&escaped), "{what} does not show {escaped}: {}", page.text());
        }
    };
    let page = applicant.get(&desk, &format!("/applications/{id}")).await;
    shows_escaped(&page, "the applicant's application page", &[GIVEN, SURNAME]);
    shows_escaped(&officer.get(&desk, "/officer").await, "the officer's queue", &[GIVEN, SURNAME]);
    let page = officer.get(&desk, &format!("/officer/applications/{id}")).await;
    shows_escaped(&page, "the officer's application page", &[GIVEN, SURNAME, AUTHORITY, NUMBER]);

    // Issued: the certificate's subject (with the names, RFC 4514 escaped as `\<`) on
    // the start page, the officer's search and the directory.
    assert_eq!(
        officer.submit(&desk, &format!("/officer/applications/{id}/approve"), &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let password = "Blue-Otter-Canyon-42";
    let p12 = applicant
        .submit(
            &desk,
            &format!("/applications/{id}/p12"),
            &[("password", password), ("password2", password), ("key", "p256")],
        )
        .await;
    assert_eq!(p12.status, StatusCode::OK, "{}", p12.text());
    let start = applicant.get(&desk, "/").await;
    shows_escaped(&start, "the applicant's start page", &[]);
    let search = officer.get(&desk, &format!("/officer/certificates?email={jane}")).await;
    shows_escaped(&search, "the officer's certificate search", &[]);
    let found = Browser::default().get(&desk, &format!("/directory?email={jane}")).await;
    shows_escaped(&found, "the directory", &[]);

    // The audit log: the names in the submission's details, the evidence (hashed).
    for page in [&start, &search, &found] {
        assert!(page.text().contains(r"\&lt;script\&gt;alert(1)"), "the subject is not shown: {}", page.text());
    }
    let (mut admin, _, _) = staff_sign_in_with(&desk, Browser::default(), "root@example.org", Role::Admin).await;
    let page = admin.get(&desk, "/admin/audit").await;
    shows_escaped(&page, "the audit log", &[]);
    assert!(page.text().contains("&lt;script&gt;alert(1)"), "the audit log does not show the name: {}", page.text());
    // A search for markup is echoed escaped.
    let page = admin.get(&desk, &format!("/admin/audit?q={}", encode(GIVEN))).await;
    shows_escaped(&page, "the audit search", &[GIVEN]);
    let page =
        Browser::default().get(&desk, &format!("/directory?email={}", encode("\"><script>alert(1)</script>"))).await;
    assert!(!page.text().contains("<script>alert"), "{}", page.text());
}

/// The visible text of a page without its data: tags, the style sheet and `<code>` and
/// `<pre>` elements (serials, audit details, PEM) removed, entities decoded.
fn visible_text(html: &str) -> String {
    let mut html = html.to_string();
    for (open, close) in [("<style>", "</style>"), ("<code", "</code>"), ("<pre>", "</pre>")] {
        while let Some(start) = html.find(open) {
            let end = html[start..].find(close).map(|e| start + e + close.len()).unwrap_or(html.len());
            html.replace_range(start..end, " ");
        }
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push('\n');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Whether `phrase` occurs in `text` as whole words.
fn contains_phrase(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// English texts that are also German words on German pages.
const ALSO_GERMAN: &[&str] = &["Profile", "Administrator"];

/// No English text of the catalogue on a German page.
fn assert_german(what: &str, page: &Reply) {
    assert!(page.text().contains(r#"<html lang="de">"#), "{what} is not a German page: {}", page.text());
    let text = visible_text(&page.text());
    let german: HashMap<&str, &str> = DE.all().into_iter().collect();
    for (name, english) in EN.all() {
        if german.get(name) == Some(&english) || ALSO_GERMAN.contains(&english) {
            continue;
        }
        assert!(!contains_phrase(&text, english), "{what} shows the English {name}: {english:?}\n{text}");
    }
}

/// Every page, and every error page the Router gives, in German.
#[tokio::test]
async fn german_pages_show_no_english() {
    let desk = desk(None).await;
    // The escrow notices (issue 15) are on the pages and in the mails below.
    escrow_on(&desk, "sponsor-strict").await;
    let mut pages: Vec<(String, Reply)> = Vec::new();
    let jane = "jane.doe@example.org";
    let mut anonymous = Browser::german();
    pages.push(("the sign-in page".into(), anonymous.get(&desk, "/").await));
    pages.push(("the directory".into(), anonymous.get(&desk, "/directory").await));
    pages.push(("an empty directory search".into(), anonymous.get(&desk, &format!("/directory?email={jane}")).await));
    pages.push(("a page that does not exist".into(), anonymous.get(&desk, "/no/such/page").await));
    pages.push(("a page that needs a sign-in".into(), anonymous.get(&desk, "/apply").await));
    pages.push(("a wrong sign-in link".into(), anonymous.post(&desk, "/signin/not-a-token", &[]).await));
    pages.push(("a form without its token".into(), anonymous.post(&desk, "/signin", &[("email", jane)]).await));
    let csrf = hidden(&anonymous.get(&desk, "/").await.text(), "csrf");
    pages.push((
        "the link is on its way".into(),
        anonymous.post(&desk, "/signin", &[("csrf", &csrf), ("email", jane)]).await,
    ));
    let (link, _) = from_last_mail(&desk.outbox, jane, "/signin/");
    let path = link.split_once("/signin/").map(|(_, t)| format!("/signin/{t}")).unwrap();
    pages.push(("the sign-in link's page".into(), anonymous.get(&desk, &path).await));
    assert_eq!(anonymous.post(&desk, &path, &[]).await.status, StatusCode::SEE_OTHER);
    let mut applicant = anonymous;
    pages.push(("the used sign-in link".into(), applicant.post(&desk, &path, &[]).await));
    pages.push(("the applicant's start page".into(), applicant.get(&desk, "/").await));
    pages.push(("the application form".into(), applicant.get(&desk, "/apply").await));
    let applied = applicant
        .submit(&desk, "/apply", &[("given_name", "Jane"), ("surname", "Doe"), ("profile", "sponsor-strict")])
        .await;
    let id = applied.headers[header::LOCATION].to_str().unwrap().trim_start_matches("/applications/").to_string();
    pages.push(("the application without slots".into(), applicant.get(&desk, &format!("/applications/{id}")).await));
    pages.push(("the mailbox link's page".into(), applicant.get(&desk, &format!("/validate/{id}?value=X")).await));
    let wrong = applicant.submit(&desk, &format!("/applications/{id}/validate"), &[("value", "AAAA-BBBB")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains(&(DE.desk_value_wrong)(4)), "{}", wrong.text());
    pages.push(("a wrong mailbox code".into(), wrong));
    pages.push(("an application that does not exist".into(), applicant.get(&desk, "/applications/nope").await));
    pages.push(("the officers' queue, to an applicant".into(), applicant.get(&desk, "/officer").await));
    pages.push(("the administration, to an applicant".into(), applicant.get(&desk, "/admin").await));
    let early =
        applicant.submit(&desk, &format!("/applications/{id}/p12"), &[("password", "x"), ("password2", "y")]).await;
    pages.push(("two passwords that differ".into(), early));
    let early =
        applicant.submit(&desk, &format!("/applications/{id}/p12"), &[("password", "x"), ("password2", "x")]).await;
    pages.push(("a .p12 before the checks".into(), early));
    let early = applicant.submit(&desk, &format!("/applications/{id}/csr"), &[]).await;
    pages.push(("a CSR form without a CSR".into(), early));
    pages.push(("an unreadable form".into(), {
        let request = Request::post(format!("/applications/{id}/validate")).header(header::CONTENT_TYPE, "text/plain");
        applicant.send(&desk, request, Body::from("x")).await
    }));
    let (_, value) = from_last_mail(&desk.outbox, jane, "diesen Code auf der Antragsseite");
    let (validation, _) = from_last_mail(&desk.outbox, jane, "Schlüsselhinterlegung");
    assert!(!validation.is_empty(), "the validation mail has no escrow notice");
    assert_eq!(
        applicant.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await.status,
        StatusCode::SEE_OTHER
    );
    let used = applicant.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await;
    pages.push(("a used mailbox code".into(), used));

    let (mut officer, _, seen) = staff_sign_in_with(&desk, Browser::german(), "desk@example.org", Role::Officer).await;
    pages.extend(seen);
    pages.push(("the officers' queue".into(), officer.get(&desk, "/officer").await));
    pages.push(("the slots".into(), officer.get(&desk, "/officer/slots").await));
    let slot =
        officer.submit(&desk, "/officer/slots", &[("starts_at", "2026-11-27T09:30"), ("place", "Raum 1.01")]).await;
    assert_eq!(slot.status, StatusCode::SEE_OTHER, "{}", slot.text());
    pages.push(("the slots with one".into(), officer.get(&desk, "/officer/slots").await));
    pages.push((
        "a slot without a time".into(),
        officer.submit(&desk, "/officer/slots", &[("starts_at", "morgen"), ("place", "Raum")]).await,
    ));
    pages.push((
        "a slot in the past".into(),
        officer.submit(&desk, "/officer/slots", &[("starts_at", "2020-01-01T09:00"), ("place", "Raum")]).await,
    ));
    pages.push(("the application with slots".into(), applicant.get(&desk, &format!("/applications/{id}")).await));
    let slot_id = applicant.get(&desk, &format!("/applications/{id}")).await.text();
    let slot_id = slot_id.split(r#"<option value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(
        applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &slot_id)]).await.status,
        StatusCode::SEE_OTHER
    );
    pages.push((
        "the application with its appointment".into(),
        applicant.get(&desk, &format!("/applications/{id}")).await,
    ));
    pages.push((
        "the officer's application page".into(),
        officer.get(&desk, &format!("/officer/applications/{id}")).await,
    ));
    // Appointments (issue 17 item 3): the queue's views, and what is refused.
    pages.push(("the queue of today".into(), officer.get(&desk, "/officer?view=today").await));
    pages.push(("a queue search that finds nothing".into(), officer.get(&desk, "/officer?q=niemand").await));
    pages.push((
        "the same appointment again".into(),
        applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &slot_id)]).await,
    ));
    pages.push((
        "cancelling without the box".into(),
        applicant.submit(&desk, &format!("/applications/{id}/appointment/cancel"), &[]).await,
    ));
    pages.push((
        "an officer cancelling without the box".into(),
        officer.submit(&desk, &format!("/officer/applications/{id}/appointment/cancel"), &[]).await,
    ));
    pages.push((
        "removing a booked slot".into(),
        officer.submit(&desk, &format!("/officer/slots/{slot_id}/remove"), &[]).await,
    ));
    pages.push(("an empty given name".into(), {
        let fields = [("given_name", " "), ("surname", "Doe"), ("profile", "sponsor-strict")];
        applicant.submit(&desk, "/apply", &fields).await
    }));
    pages.push((
        "the mailbox link before sign-in".into(),
        Browser::german().get(&desk, &format!("/validate/{id}?value=X")).await,
    ));
    pages.push(("the install guide".into(), Browser::german().get(&desk, "/install?client=android").await));
    pages.push(("the officer's own application".into(), {
        let fields = [("given_name", "Dee"), ("surname", "Sk"), ("profile", "private")];
        let own = officer.submit(&desk, "/apply", &fields).await;
        officer.get(&desk, &format!("/officer/{}", own.location().trim_start_matches('/'))).await
    }));
    pages.push((
        "an approval before the checks".into(),
        officer.submit(&desk, &format!("/officer/applications/{id}/approve"), &[]).await,
    ));
    let evidence = [
        ("document_type", "identity-card"),
        ("issuing_authority", "Stadt Köln"),
        ("document_number", "L01X00T47"),
        ("document_expires", "2031-03-01"),
    ];
    pages.push((
        "evidence without the in-person box".into(),
        officer.submit(&desk, &format!("/officer/applications/{id}/identity"), &evidence).await,
    ));
    let mut with_box = evidence.to_vec();
    with_box.push(("in_person", "yes"));
    assert_eq!(
        officer.submit(&desk, &format!("/officer/applications/{id}/identity"), &with_box).await.status,
        StatusCode::SEE_OTHER
    );
    pages.push((
        "the officer's page with the evidence".into(),
        officer.get(&desk, &format!("/officer/applications/{id}")).await,
    ));
    assert_eq!(
        officer.submit(&desk, &format!("/officer/applications/{id}/approve"), &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let approved = applicant.get(&desk, &format!("/applications/{id}")).await;
    assert!(approved.text().contains(DE.key_escrowed), "{}", approved.text());
    assert!(approved.text().contains(DE.own_key_not_escrowed), "{}", approved.text());
    pages.push(("the approved application".into(), approved));
    let password = "Blue-Otter-Canyon-42";
    let p12 = applicant
        .submit(
            &desk,
            &format!("/applications/{id}/p12"),
            &[("password", password), ("password2", password), ("key", "p256")],
        )
        .await;
    assert_eq!(p12.status, StatusCode::OK, "{}", p12.text());
    from_last_mail(&desk.outbox, jane, "Der Schlüssel dieses Zertifikats wurde von der Zertifikatsstelle erzeugt");
    let store = desk.status.authority().store();
    let serial = desk.portal.directory(jane).await.unwrap()[0].serial.clone();
    assert!(
        store.escrowed_key(serial.as_str()).await.unwrap().is_some(),
        "the key made on the portal was not escrowed"
    );
    pages.push(("the issued application".into(), applicant.get(&desk, &format!("/applications/{id}")).await));
    pages.push(("the start page with a certificate".into(), applicant.get(&desk, "/").await));
    pages.push((
        "the directory with a certificate".into(),
        Browser::german().get(&desk, &format!("/directory?email={jane}")).await,
    ));
    pages.push((
        "the officer's certificate search".into(),
        officer.get(&desk, &format!("/officer/certificates?email={jane}")).await,
    ));
    pages.push(("a certificate that does not exist".into(), applicant.get(&desk, "/certificates/00.pem").await));
    let serial = desk.portal.directory(jane).await.unwrap()[0].serial.clone();
    let revoked = applicant
        .submit(&desk, &format!("/certificates/{serial}/revoke"), &[("reason", "superseded"), ("confirm", "yes")])
        .await;
    pages.push(("the revocation".into(), revoked));
    pages.push((
        "a second revocation".into(),
        applicant
            .submit(&desk, &format!("/certificates/{serial}/revoke"), &[("reason", "superseded"), ("confirm", "yes")])
            .await,
    ));

    let (mut admin, _, seen) = staff_sign_in_with(&desk, Browser::german(), "root@example.org", Role::Admin).await;
    pages.extend(seen);
    pages.push(("the administration".into(), admin.get(&desk, "/admin").await));
    pages.push(("the audit log".into(), admin.get(&desk, "/admin/audit").await));
    pages.push((
        "a wrong role".into(),
        admin.submit(&desk, "/admin/users", &[("email", "x@example.org"), ("role", "king")]).await,
    ));
    pages.push((
        "a wrong validity".into(),
        admin.submit(&desk, "/admin/profiles", &[("profile", "sponsor-strict"), ("days", "viele")]).await,
    ));
    pages.push(("the audit log, to an officer".into(), officer.get(&desk, "/admin/audit").await));
    // Key recovery (issue 15).
    pages.push(("the key recovery page".into(), applicant.get(&desk, "/recoveries").await));
    pages.push((
        "a key recovery without a reason".into(),
        applicant.submit(&desk, "/recoveries", &[("reason", " ")]).await,
    ));
    let asked = applicant.submit(&desk, "/recoveries", &[("reason", "Notebook gestohlen")]).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.text());
    let recovery = asked.location();
    pages.push(("a key recovery, to its holder".into(), applicant.get(&desk, &recovery).await));
    pages.push(("a key recovery, to an officer".into(), officer.get(&desk, &recovery).await));
    pages.push(("the key recoveries, to an administrator".into(), admin.get(&desk, "/recoveries").await));
    pages.push((
        "a share from an officer who is no agent".into(),
        officer.submit(&desk, &format!("{recovery}/share"), &[("share", "x"), ("code", "123456")]).await,
    ));
    let opened = officer
        .submit(
            &desk,
            &format!("{recovery}/identity"),
            &[("document_type", "passport"), ("document_number", "C01X00T47"), ("in_person", "yes")],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.text());
    pages.push(("an open key recovery".into(), applicant.get(&desk, &recovery).await));
    pages.push((
        "keys asked for before the agents gave their shares".into(),
        applicant.submit(&desk, &format!("{recovery}/p12"), &[("password", password), ("password2", password)]).await,
    ));
    pages.push((
        "a successor's recovery without the authorising person".into(),
        admin
            .submit(
                &desk,
                "/recoveries/successor",
                &[("holder", jane), ("recipient", "nachfolge@example.org"), ("reason", "Ruhestand")],
            )
            .await,
    ));

    // The language also comes from the query and from Accept-Language.
    pages.push(("a missing page (query)".into(), Browser::default().get(&desk, "/nowhere?lang=de").await));
    let request = Request::get("/nowhere").header(header::ACCEPT_LANGUAGE, "de-DE,de;q=0.9,en;q=0.5");
    pages.push((
        "a missing page (Accept-Language)".into(),
        Browser::default().send(&desk, request, Body::empty()).await,
    ));

    for (what, page) in &pages {
        assert_german(what, page);
        if page.status != StatusCode::OK {
            assert!(page.text().contains(r#"<a href="/">"#), "{what} has no way back: {}", page.text());
        }
    }
    // The error pages above answer with the same statuses as in English.
    let status = |what: &str| pages.iter().find(|(w, _)| w == what).map(|(_, p)| p.status).unwrap();
    assert_eq!(status("the officers' queue, to an applicant"), StatusCode::FORBIDDEN);
    assert_eq!(status("a page that does not exist"), StatusCode::NOT_FOUND);
    assert_eq!(status("a wrong sign-in link"), StatusCode::UNAUTHORIZED);
    assert_eq!(status("a used mailbox code"), StatusCode::CONFLICT);
    assert_eq!(status("an unreadable form"), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
