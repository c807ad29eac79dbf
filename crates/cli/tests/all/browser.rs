//! End to end in real headless Chromium (Debian `chromium` + `chromium-driver`, driven
//! over the W3C WebDriver protocol): apply, read the validation mail from the outbox,
//! the officer signs in with TOTP, records the ID and approves; the applicant sets a
//! .p12 password and downloads it; `openssl pkcs12` opens the file; the directory
//! shows the certificate; a renewal is issued for a DER CSR file chosen in the form
//! (multipart/form-data as Chromium sends it); the applicant revokes; the CRL lists it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::*;

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 exchange with `Connection: close`: (status, body).
pub(super) fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    http_auth(port, method, path, None, body)
}

/// [`http`] with an optional bearer token.
pub(super) fn http_auth(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    // Read the head, then exactly Content-Length bytes (chromedriver keeps connections
    // open), or to the end of the stream.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 65536];
    let split = loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break split;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection closed before the response head");
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    let mut body = raw[split + 4..].to_vec();
    match length {
        Some(length) => {
            while body.len() < length {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "the connection closed early");
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(length);
        }
        None => {
            stream.read_to_end(&mut body).unwrap();
        }
    }
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
    out
}

/// A WebDriver session.
struct Browser {
    port: u16,
    session: String,
}

impl Browser {
    fn new(port: u16, downloads: &Path) -> Self {
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"],
            "prefs": { "download.default_directory": downloads.to_str().unwrap(), "download.prompt_for_download": false }
        } } } });
        let (status, body) = http(port, "POST", "/session", Some(&caps));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "{value}");
        Browser { port, session: value["value"]["sessionId"].as_str().unwrap().to_string() }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, raw) = http(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref());
        let value: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        assert_eq!(status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let start = Instant::now();
        loop {
            let (status, raw) = http(
                self.port,
                "POST",
                &format!("/session/{}/element", self.session),
                Some(&json!({ "using": "css selector", "value": css })),
            );
            if status == 200 {
                let value: Value = serde_json::from_slice(&raw).unwrap();
                let object = value["value"].as_object().unwrap();
                return object.values().next().unwrap().as_str().unwrap().to_string();
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no element {css} on\n{}", self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/value"), Some(json!({ "text": text })));
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/click"), Some(json!({})));
    }

    fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.call("GET", &format!("/element/{element}/text"), None).as_str().unwrap_or_default().to_string()
    }

    /// Waits until the page contains `needle` (a click's navigation may still load).
    fn wait_for(&self, needle: &str) {
        let start = Instant::now();
        loop {
            let source = self.source();
            if source.contains(needle) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "the page never showed {needle:?}:\n{source}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn source(&self) -> String {
        self.call("GET", "/source", None).as_str().unwrap_or_default().to_string()
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
    }
}

/// The newest mail in the outbox to `to` whose text contains `needle`; the first line
/// containing it.
pub(super) fn mail_line(outbox: &Path, to: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(outbox)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        for file in files.iter().rev() {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if !text.contains(&format!("To: {to}")) {
                continue;
            }
            // Bodies are 7-bit: quoted-printable soft breaks are joined first.
            let joined = text.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
            if let Some(line) = joined.lines().map(str::trim).find(|l| l.contains(needle)) {
                return line.to_string();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no mail to {to} with {needle}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The validation code: the line after "enter this code".
pub(super) fn validation_code(outbox: &Path, to: &str) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(outbox).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    for file in files.iter().rev() {
        let text = std::fs::read_to_string(file).unwrap();
        if text.contains(&format!("To: {to}")) && text.contains("enter this code") {
            let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let at = lines.iter().position(|l| l.contains("enter this code")).unwrap();
            return lines[at + 1].to_string();
        }
    }
    panic!("no validation mail to {to}");
}

pub(super) fn totp_now(secret_base32: &str) -> String {
    let secret = certdesk_desk::totp::base32_decode(secret_base32).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    certdesk_desk::totp::code_at_step(&secret, certdesk_desk::totp::step_at(now))
}

/// `certdesk serve` on a fresh demo data directory `demo` in `dir`.
pub(super) fn demo_serve(dir: &Path, port: u16) -> Killed {
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--data",
        "demo",
        "serve",
        "--listen",
        &listen,
        "--refresh-seconds",
        "1",
        "--admin-email",
        "admin@example.org",
    ];
    serve_process(dir, &args, &[])
}

#[test]
fn apply_validate_identify_approve_download_revoke_in_chromium() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian chromium is needed (.ci/run installs it)");
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let _serve = demo_serve(dir.path(), port);
    let outbox = dir.path().join("demo/outbox");

    let driver_port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is needed (Debian chromium-driver; .ci/run installs it)");
    let _driver = Killed(driver);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The applicant signs in with a mailed link and applies.
    let jane = "jane.doe@example.org";
    let applicant = Browser::new(driver_port, &downloads);
    applicant.go(&format!("{base}/"));
    applicant.type_into("#email", jane);
    applicant.click(r#"form[action="/signin"] button"#);
    applicant.wait_for("sign-in link is on its way");
    let link = mail_line(&outbox, jane, "/signin/");
    applicant.go(&link);
    applicant.click("button[type=submit]");
    applicant.wait_for("Your applications");
    applicant.go(&format!("{base}/apply"));
    applicant.type_into("#given_name", "Jane");
    applicant.type_into("#surname", "Doe");
    applicant.click(r#"form[action="/apply"] button"#);
    applicant.wait_for("Your application<");
    let application_url = applicant.url();
    assert!(application_url.contains("/applications/"), "{application_url}");

    // The mailbox: the code from the validation mail.
    let code = validation_code(&outbox, jane);
    applicant.type_into("#value", &code);
    applicant.click(r#"form[action$="/validate"] button"#);
    applicant.wait_for("✔");

    // The officer: added with `certdesk user add`, signs in, enrols TOTP, records the ID, approves.
    let added =
        certdesk_in(dir.path(), &["--data", "demo", "user", "add", "--email", "desk@example.org", "--role", "officer"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let officer_link = String::from_utf8_lossy(&added.stdout).trim().to_string();
    let officer = Browser::new(driver_port, &downloads);
    officer.go(&officer_link);
    officer.click("button[type=submit]");
    officer.wait_for("authenticator app");
    // The key's QR code is drawn (inline SVG, 200 px at least) beside the text.
    let qr = officer.find("#totp-qr svg");
    let rect = officer.call("GET", &format!("/element/{qr}/rect"), None);
    assert!(rect["width"].as_f64().unwrap() >= 200.0 && rect["height"].as_f64().unwrap() >= 200.0, "{rect}");
    let secret = officer.text("#totp-secret");
    officer.type_into("#code", &totp_now(&secret));
    officer.click(r#"form[action="/second-factor"] button"#);
    officer.wait_for("Service desk queue");
    officer.click(r#"a[href^="/officer/applications/"]"#);
    officer.click(r#"#document_type option[value="passport"]"#);
    officer.type_into("#issuing_authority", "Stadt Köln");
    officer.type_into("#document_number", "C01X00T47");
    // A date input takes the date as typed in the browser's locale (en-US: MM/DD/YYYY).
    officer.type_into("#document_expires", "03012031");
    officer.click(r#"input[name="in_person"]"#);
    officer.click(r#"form[action$="/identity"] button"#);
    officer.wait_for("C01X00T47");
    officer.click(r#"form[action$="/approve"] button"#);
    officer.wait_for("Service desk queue");

    // The applicant sets a .p12 password and downloads a compat file.
    applicant.go(&application_url);
    let password = "Blue-Otter-Canyon-42";
    applicant.type_into("#password", password);
    applicant.type_into("#password2", password);
    // The advisor: Apple Mail on macOS 13 ticked, format left on "as my mail clients
    // need": the compatible format.
    applicant.click(r#"input[name="client_apple-mail-old"]"#);
    applicant.click(r#"form[action$="/p12"] button"#);
    let start = Instant::now();
    let p12 = loop {
        let found = std::fs::read_dir(&downloads)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "p12"));
        if let Some(p) = found {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no .p12 was downloaded");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::fs::write(dir.path().join("p12pass"), password).unwrap();
    let opened = tool(
        "openssl",
        &["pkcs12", "-in", p12.to_str().unwrap(), "-passin", "file:p12pass", "-nokeys", "-clcerts"],
        dir.path(),
    );
    assert_eq!(opened.code, 0, "{}", opened.stderr);
    assert!(String::from_utf8_lossy(&opened.stdout).contains("BEGIN CERTIFICATE"));
    let info = tool(
        "openssl",
        &["pkcs12", "-in", p12.to_str().unwrap(), "-passin", "file:p12pass", "-info", "-noout"],
        dir.path(),
    );
    assert!(info.stderr.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "not the compat format: {}", info.stderr);
    applicant.go(&application_url);
    applicant.click(r#"a[href="/install"]"#);
    applicant.wait_for("Apple Mail (macOS 13 or older)");
    let serial = p12.file_stem().unwrap().to_str().unwrap().trim_start_matches("certificate-").to_string();

    // The directory shows it.
    applicant.go(&format!("{base}/directory?email={jane}"));
    applicant.wait_for(&serial);
    assert!(applicant.text("#directory-result").contains(&serial), "{}", applicant.source());

    // Renewal (identity and mailbox carried over), approved by the officer, with the
    // applicant's own key: a DER CSR file chosen in the form, which Chromium sends as
    // multipart/form-data.
    applicant.go(&format!("{base}/"));
    applicant.click(&format!(r#"form[action="/certificates/{serial}/renew"] button"#));
    applicant.wait_for("Your application<");
    let renewal_url = applicant.url();
    officer.go(&format!("{base}/officer"));
    let renewal_id = renewal_url.rsplit('/').next().unwrap().to_string();
    officer.click(&format!(r#"a[href="/officer/applications/{renewal_id}"]"#));
    officer.click(r#"form[action$="/approve"] button"#);
    officer.wait_for("Service desk queue");
    let der = certdesk_test_support::csr::CsrOptions { der: true, ..Default::default() };
    certdesk_test_support::csr::openssl_csr(dir.path(), "own", &der);
    applicant.go(&renewal_url);
    applicant.type_into("#csr_file", dir.path().join("own.der").to_str().unwrap());
    applicant.click(r#"form[action$="/csr"] button"#);
    applicant.wait_for("certificate issued");
    assert!(applicant.url().contains("?issued="), "{}", applicant.url());

    // The applicant revokes; the CRL lists it.
    applicant.go(&format!("{base}/"));
    applicant.click(&format!(r#"form[action="/certificates/{serial}/revoke"] option[value="key-compromise"]"#));
    applicant.click(&format!(r#"form[action="/certificates/{serial}/revoke"] input[name="confirm"]"#));
    applicant.click(&format!(r#"form[action="/certificates/{serial}/revoke"] button"#));
    applicant.wait_for("The certificate is revoked");
    // The language link on a page reached by a POST: the same page's content in German
    // is not there to GET, so the link leads to a German page of ours, never a blank one.
    applicant.click(r#"a[hreflang="de"]"#);
    applicant.wait_for(r#"<html lang="de">"#);
    assert!(applicant.source().contains("Zertifikat"), "{}", applicant.source());
    let (status, crl) = http(port, "GET", "/crl/issuing.crl", None);
    assert_eq!(status, 200);
    std::fs::write(dir.path().join("served.crl"), crl).unwrap();
    let text = tool("openssl", &["crl", "-in", "served.crl", "-inform", "DER", "-noout", "-text"], dir.path());
    assert!(String::from_utf8_lossy(&text.stdout).to_ascii_lowercase().contains(&serial), "{}", text.stderr);
}

/// Issue 14: the portal over HTTPS in Chromium, which trusts the test TLS CA through its
/// NSS database (no certificate errors ignored): the mailed sign-in link is https://,
/// the session cookie is Secure and HttpOnly, HSTS is sent, and an officer's TOTP
/// enrolment shows the QR code.
#[test]
fn sign_in_over_https_in_chromium() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian chromium is needed (.ci/run installs it)");
    let ca = Ca::new("p384");
    tls_certificate(&ca, "web");
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let config_path = ca.path("data/certdesk.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(config.contains("\n[portal]\n"), "{config}");
    std::fs::write(&config_path, config.replace("\n[portal]\n", &format!("\n[portal]\npublic_url = \"{base}\"\n")))
        .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let _serve = serve_process(
        ca.dir.path(),
        &["--data", "data", "--passphrase-file", "pass", "serve", "--listen", &listen, "--tls-cert", "web.crt"]
            .into_iter()
            .chain(["--tls-key", "web.key", "--admin-email", "admin@example.org"])
            .collect::<Vec<_>>(),
        &[],
    );

    // Chromium on Linux takes locally trusted roots from $HOME/.pki/nssdb.
    let home = ca.path("home");
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    ca.tool("certutil", &["-N", "-d", &db, "--empty-password"]).ok();
    ca.tool("certutil", &["-A", "-d", &db, "-n", "certdesk test TLS CA", "-t", "C,,", "-i", "tlsca.pem"]).ok();
    let downloads = ca.path("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let driver_port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={driver_port}"))
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is needed (Debian chromium-driver; .ci/run installs it)");
    let _driver = Killed(driver);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let outbox = ca.path("data/outbox");
    let jane = "jane.doe@example.org";
    let applicant = Browser::new(driver_port, &downloads);
    applicant.go(&format!("{base}/"));
    applicant.type_into("#email", jane);
    applicant.click(r#"form[action="/signin"] button"#);
    applicant.wait_for("sign-in link is on its way");
    let link = mail_line(&outbox, jane, "/signin/");
    assert!(link.starts_with(&format!("{base}/signin/")), "{link}");
    applicant.go(&link);
    applicant.click("button[type=submit]");
    applicant.wait_for("Your applications");
    assert!(applicant.url().starts_with(&base), "{}", applicant.url());
    let cookies = applicant.call("GET", "/cookie", None);
    let cookies = cookies.as_array().unwrap();
    assert!(!cookies.is_empty(), "no session cookie");
    for cookie in cookies {
        assert_eq!((cookie["secure"].as_bool(), cookie["httpOnly"].as_bool()), (Some(true), Some(true)), "{cookie}");
    }

    let added = ca.run(&["user", "add", "--email", "desk@example.org", "--role", "officer"]).ok();
    let officer_link = String::from_utf8_lossy(&added.stdout).trim().to_string();
    assert!(officer_link.starts_with(&base), "{officer_link}");
    let officer = Browser::new(driver_port, &downloads);
    officer.go(&officer_link);
    officer.click("button[type=submit]");
    officer.wait_for("authenticator app");
    let qr = officer.find("#totp-qr svg");
    let rect = officer.call("GET", &format!("/element/{qr}/rect"), None);
    assert!(rect["width"].as_f64().unwrap() >= 200.0, "{rect}");
    let secret = officer.text("#totp-secret");
    officer.type_into("#code", &totp_now(&secret));
    officer.click(r#"form[action="/second-factor"] button"#);
    officer.wait_for("Service desk queue");
}
