//! Issue 14: the nginx recipe of docs/operations/deployment.md, as written there (ports,
//! paths and the upstream address replaced), in front of `serve`: the portal over HTTPS
//! with HSTS, CRLs, CA certificates and OCSP over plain HTTP, everything else redirected.

use std::process::{Command, Stdio};

use super::common::*;
use super::serve::{http_get, start, wait_for};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_documented_nginx_recipe_works_in_front_of_serve() {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists());
    let nginx = nginx.expect("nginx is needed (Debian nginx-light; .ci/run installs it)");
    let ca = Ca::new("p384");
    tls_certificate(&ca, "proxy");
    ca.split_chain();
    let server = start(&ca);
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations/deployment.md")).unwrap();
    let block = doc.split("```nginx\n").nth(1).unwrap().split("```").next().unwrap();
    let (https, http) = (free_port(), free_port());
    let dir = ca.dir.path();
    let site = block
        .lines()
        .filter(|l| !l.contains("listen [::]"))
        .map(|l| {
            l.replace("listen 443 ssl;", &format!("listen 127.0.0.1:{https} ssl;"))
                .replace("listen 80;", &format!("listen 127.0.0.1:{http};"))
                .replace("/etc/ssl/certdesk/fullchain.pem", &dir.join("proxy.crt").display().to_string())
                .replace("/etc/ssl/certdesk/privkey.pem", &dir.join("proxy.key").display().to_string())
                .replace("127.0.0.1:8080", &server.addr)
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(site.contains(&server.addr) && site.contains(&format!("127.0.0.1:{https}")), "{site}");
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let temp = prefix.display().to_string();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {temp}/nginx.pid;\nerror_log {temp}/logs/error.log;\nevents {{}}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {temp}/body;\nproxy_temp_path {temp}/proxy;\n\
         fastcgi_temp_path {temp}/fastcgi;\nuwsgi_temp_path {temp}/uwsgi;\nscgi_temp_path {temp}/scgi;\n{site}\n}}\n"
    );
    std::fs::write(prefix.join("nginx.conf"), &conf).unwrap();
    let child = Command::new(nginx)
        .args(["-p", &temp, "-c", &prefix.join("nginx.conf").display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _nginx = Killed(child);
    assert!(
        wait_for(|| std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()),
        "nginx did not start: {}",
        std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
    );

    // HTTPS: the portal's readiness, with HSTS; curl checks the chain and the name.
    let run = ca.tool(
        "curl",
        &["-sS", "--cacert", "tlsca.pem", "-D", "-", "--max-time", "10", &format!("https://localhost:{https}/ready")],
    );
    let out = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}{}", run.stderr);
    assert!(out.to_ascii_lowercase().contains("strict-transport-security: max-age=31536000"), "{out}");
    assert!(out.contains("\"status\":\"ready\""), "{out}");

    // Plain HTTP: CRLs and CA certificates, OCSP; the rest redirected to HTTPS.
    let plain = format!("127.0.0.1:{http}");
    for path in ["/crl/issuing.crl", "/crl/root.crl", "/ca/chain.pem"] {
        assert_eq!(http_get(&plain, path).0, 200, "{path}");
    }
    let csr = ca.csr("k", KeyKind::P256);
    ca.issue_csr(&csr, "strict", "leaf.pem");
    let url = format!("http://{plain}/ocsp");
    let answer = ca.tool(
        "openssl",
        &["ocsp", "-issuer", "issuing.pem", "-CAfile", "chain.pem", "-url", &url, "-cert", "leaf.pem"],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&answer.stdout), answer.stderr);
    assert!(text.contains("Response verify OK") && text.contains("leaf.pem: good"), "{text}");
    for path in ["/", "/api/v1/me", "/signin/abc"] {
        let (status, head, _) = http_get(&plain, path);
        assert_eq!(status, 301, "{path}: {head}");
        assert!(head.contains("Location: https://"), "{head}");
    }
}
