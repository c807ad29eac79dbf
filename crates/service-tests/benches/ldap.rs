//! LDAP directory benchmark (issue 16): certdesk's read-only LDAP server beside OpenLDAP
//! `slapd` (Debian slapd, back-mdb with equality and substring indexes) serving the same
//! people, in one run, with the same load client.
//!
//! Two lookups, as mail clients send them: Thunderbird's certificate lookup by address
//! (`(mail=ADDR)`, asking for `userCertificate;binary`) and its address-book
//! autocompletion (`(|(cn=PREFIX*)(mail=PREFIX*)(sn=PREFIX*))`, asking for cn and mail),
//! and the same with a substring anywhere (an address book set to "contains").
//! For each: searches per second, p50 and p99 latency, and the server's CPU time per
//! search (read from /proc, so that a load client that shares the machine's two cores
//! cannot hide a slow server). Before timing, both servers must give the same number of
//! entries for the same sample of searches.
//!
//! Usage: `scripts/bench-ldap [PEOPLE] [SECONDS] [CONNECTIONS]` (10000, 5, 16).
//! certdesk's server runs in a child process of this benchmark (`--serve-ours`), with the
//! people loaded through `Directory::replace`, as `serve` loads them at each refresh.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certdesk_desk::directory::DirectoryPerson;
use certdesk_web::ldap::{Directory, LdapSettings, Transport};
use ldap3_proto::proto::{LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope, LdapSubstringFilter};
use ldap3_proto::LdapCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Encoder;

const BASE: &str = "ou=people,dc=example,dc=org";
const ADMIN: &str = "cn=admin,dc=example,dc=org";

const GIVEN: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Karla", "Lukas", "Mia",
    "Noah", "Olga", "Paul", "Rosa", "Simon", "Tilda", "Uwe", "Vera", "Willi", "Yara", "Zoe", "Jane", "Max", "Erika",
    "Ali", "Mehmet", "Fatma", "Jan", "Piotr", "Ewa", "Luca", "Giulia", "Sofia", "Marta", "Nils", "Ole", "Ines",
];
const SYLLABLES: &[&str] = &["ba", "ke", "mi", "lo", "ru", "sa", "te", "vo", "ni", "da", "ho", "gu"];
const ENDINGS: &[&str] = &["mann", "er", "son", "ski", "berg"];

/// One person of the benchmark's directory.
struct Someone {
    mail: String,
    given: String,
    surname: String,
}

/// The same `count` people on every call (a fixed pseudo-random sequence).
fn people(count: usize) -> Vec<Someone> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    (0..count)
        .map(|i| {
            let given = GIVEN[next(GIVEN.len())].to_string();
            let mut surname: String = (0..3).map(|_| SYLLABLES[next(SYLLABLES.len())]).collect();
            surname.push_str(ENDINGS[next(ENDINGS.len())]);
            let mut chars = surname.chars();
            let surname = chars.next().map(|c| c.to_ascii_uppercase().to_string()).unwrap_or_default() + chars.as_str();
            let mail = format!("{}.{}.{i}@example.org", given.to_lowercase(), surname.to_lowercase());
            Someone { mail, given, surname }
        })
        .collect()
}

/// A certificate for the entries (the same one for everyone: its size is what counts).
fn certificate(dir: &Path) -> Vec<u8> {
    let path = dir.join("cert.der");
    if let Ok(der) = std::fs::read(&path) {
        return der;
    }
    let ca = certdesk_test_support::openssl_test_ca(
        "Bench CA",
        |_| "/CN=Bench Person".to_string(),
        |_| {
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n\
             subjectAltName=email:bench@example.org\n"
                .to_string()
        },
    );
    let der = ca.party("rsa").cert_der.clone();
    std::fs::write(&path, &der).expect("write the certificate");
    der
}

/// The searches of one kind: (request, entries expected when known).
struct Kind {
    name: &'static str,
    requests: Vec<LdapSearchRequest>,
}

fn equality(people: &[Someone]) -> Kind {
    let requests = people
        .iter()
        .map(|p| search(LdapFilter::Equality("mail".into(), p.mail.clone()), &["userCertificate;binary"]))
        .collect();
    Kind { name: "equality  (mail=ADDR)", requests }
}

fn substring(people: &[Someone]) -> Kind {
    let requests = people
        .iter()
        .map(|p| {
            let prefix: String = p.surname.to_lowercase().chars().take(6).collect();
            let item = |attr: &str| {
                LdapFilter::Substring(
                    attr.into(),
                    LdapSubstringFilter { initial: Some(prefix.clone()), any: Vec::new(), final_: None },
                )
            };
            search(LdapFilter::Or(vec![item("cn"), item("mail"), item("sn")]), &["cn", "mail"])
        })
        .collect();
    Kind { name: "substring (|(cn=P*)(mail=P*)(sn=P*))", requests }
}

/// A substring anywhere in the name or address (what an address book sends when set to
/// "contains"): no index of either server helps as much as for a prefix.
fn contains(people: &[Someone]) -> Kind {
    let requests = people
        .iter()
        .map(|p| {
            let middle: String = p.surname.to_lowercase().chars().skip(2).take(5).collect();
            let item = |attr: &str| {
                LdapFilter::Substring(
                    attr.into(),
                    LdapSubstringFilter { initial: None, any: vec![middle.clone()], final_: None },
                )
            };
            search(LdapFilter::Or(vec![item("cn"), item("mail"), item("sn")]), &["cn", "mail"])
        })
        .collect();
    Kind { name: "contains  (|(cn=*M*)(mail=*M*)(sn=*M*))", requests }
}

fn search(filter: LdapFilter, attrs: &[&str]) -> LdapSearchRequest {
    LdapSearchRequest {
        base: BASE.into(),
        scope: LdapSearchScope::Subtree,
        aliases: ldap3_proto::proto::LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter,
        attrs: attrs.iter().map(|a| a.to_string()).collect(),
    }
}

/// The length of the first BER element in `buf` (header and content), when complete.
fn element_length(buf: &[u8]) -> Option<usize> {
    let first = *buf.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let octets = (first & 0x7f) as usize;
    let bytes = buf.get(2..2 + octets)?;
    Some(2 + octets + bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize))
}

/// The protocol-op tag of an LDAP message and, for SearchResultDone, its result code.
fn op_of(message: &[u8]) -> (u8, Option<u8>) {
    // SEQUENCE header, then messageID INTEGER, then the op.
    let header = if message[1] < 0x80 { 2 } else { 2 + (message[1] & 0x7f) as usize };
    let id_len = message[header + 1] as usize;
    let op = header + 2 + id_len;
    let tag = message[op];
    if tag == 0x65 {
        let op_header = if message[op + 1] < 0x80 { 2 } else { 2 + (message[op + 1] & 0x7f) as usize };
        // resultCode ENUMERATED: tag, length 1, value.
        return (tag, message.get(op + op_header + 2).copied());
    }
    (tag, None)
}

/// One connection of the load client: sends searches one after the other and reads each
/// answer to its SearchResultDone; returns (latencies in µs, entries per search).
async fn client(
    addr: std::net::SocketAddr,
    requests: Arc<Vec<LdapSearchRequest>>,
    start: usize,
    stride: usize,
    until: Option<Instant>,
    count: Option<usize>,
) -> (Vec<u32>, Vec<usize>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let mut codec = LdapCodec::default();
    let mut out = BytesMut::new();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut latencies = Vec::new();
    let mut entries = Vec::new();
    let mut index = start;
    let mut msgid = 1;
    loop {
        if until.is_some_and(|u| Instant::now() >= u) || count.is_some_and(|c| entries.len() >= c) {
            break;
        }
        let request = requests[index % requests.len()].clone();
        index += stride;
        msgid += 1;
        out.clear();
        codec
            .encode(LdapMsg { msgid, op: LdapOp::SearchRequest(request), ctrl: Vec::new() }, &mut out)
            .expect("encode");
        let sent = Instant::now();
        stream.write_all(&out).await.expect("send");
        let mut found = 0;
        'answer: loop {
            while let Some(len) = element_length(&buf) {
                if buf.len() < len {
                    break;
                }
                let (tag, code) = op_of(&buf[..len]);
                buf.drain(..len);
                match tag {
                    0x64 => found += 1,
                    0x65 => {
                        assert_eq!(code, Some(0), "the search did not succeed");
                        break 'answer;
                    }
                    _ => {}
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        entries.push(found);
    }
    (latencies, entries)
}

/// CPU time (user + system) a process used so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    let per_second: u64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100);
    Duration::from_micros(ticks * 1_000_000 / per_second)
}

/// Resident memory of a process in MiB, from /proc.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Server {
    name: &'static str,
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until_listening(addr: std::net::SocketAddr, child: &mut Child, what: &str) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} ended before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on {addr} within 30 s");
}

fn start_ours(dir: &Path, count: usize) -> Server {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let port = free_port();
    let mut child = Command::new(exe)
        .args(["--serve-ours", &port.to_string(), &count.to_string(), dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start certdesk's LDAP server");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_until_listening(addr, &mut child, "certdesk's LDAP server");
    Server { name: "certdesk", child, addr }
}

/// The child process: certdesk's LDAP server with `count` people, until stdin closes.
fn serve_ours(port: u16, count: usize, dir: &Path) {
    let der = certificate(dir);
    let far = time::OffsetDateTime::now_utc().unix_timestamp() + 365 * 86_400;
    let settings = LdapSettings {
        base: BASE.into(),
        size_limit: 500,
        time_limit: Duration::from_secs(10),
        bind: None,
        require_bind: false,
        idle_timeout: Duration::from_secs(300),
        per_minute: 0,
        burst: 0,
        max_connections: 4096,
        max_connections_per_client: 4096,
    };
    let directory = Directory::new(settings, None).expect("directory settings");
    directory.replace(
        people(count)
            .into_iter()
            .map(|p| DirectoryPerson {
                common_name: format!("{} {}", p.given, p.surname),
                mail: p.mail,
                given_name: Some(p.given),
                surname: Some(p.surname),
                certificates: vec![(der.clone(), far)],
            })
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        // Ends when the benchmark closes our stdin (or dies).
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().lock().read_line(&mut line).is_ok_and(|n| n > 0) {}
        });
        let clock: Arc<dyn certdesk_core::clock::Clock> = Arc::new(certdesk_core::clock::SystemClock);
        certdesk_web::ldap::serve(listener, Arc::new(directory), Transport::Plain, clock, async {
            let _ = stdin_closed.await;
        })
        .await;
    });
}

fn ldif_value(attr: &str, value: &[u8]) -> String {
    use base64::Engine;
    format!("{attr}:: {}\n", base64::engine::general_purpose::STANDARD.encode(value))
}

fn start_slapd(dir: &Path, count: usize) -> Server {
    let slapd_dir = dir.join("slapd");
    let _ = std::fs::remove_dir_all(&slapd_dir);
    std::fs::create_dir_all(slapd_dir.join("db")).unwrap();
    let conf = format!(
        "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
         pidfile {d}/slapd.pid\nloglevel 0\nsizelimit 500\n\
         database mdb\nmaxsize 1073741824\nsuffix \"dc=example,dc=org\"\n\
         rootdn \"{ADMIN}\"\nrootpw secret\ndirectory {d}/db\n\
         index objectClass eq\nindex mail eq,sub\nindex cn,sn,givenName eq,sub\n",
        d = slapd_dir.display()
    );
    let conf_path = slapd_dir.join("slapd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let der = certificate(dir);
    let mut ldif = String::from(
        "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n",
    );
    for p in people(count) {
        ldif.push_str(&format!(
            "dn: mail={},{BASE}\nobjectClass: inetOrgPerson\nmail: {}\ncn: {} {}\ngivenName: {}\nsn: {}\n",
            p.mail, p.mail, p.given, p.surname, p.given, p.surname
        ));
        ldif.push_str(&ldif_value("userCertificate;binary", &der));
        ldif.push('\n');
    }
    let ldif_path = slapd_dir.join("people.ldif");
    std::fs::write(&ldif_path, ldif).unwrap();
    let loaded = Command::new("/usr/sbin/slapadd")
        .args(["-q", "-f", conf_path.to_str().unwrap(), "-l", ldif_path.to_str().unwrap()])
        .output()
        .expect("slapadd (Debian slapd; scripts/install-test-tools installs it)");
    assert!(loaded.status.success(), "slapadd: {}", String::from_utf8_lossy(&loaded.stderr));
    let port = free_port();
    let mut child = Command::new("/usr/sbin/slapd")
        .args(["-f", conf_path.to_str().unwrap(), "-h", &format!("ldap://127.0.0.1:{port}/"), "-d", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("slapd (Debian slapd)");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_until_listening(addr, &mut child, "slapd");
    Server { name: "slapd", child, addr }
}

/// What one timed run measured.
struct Figures {
    searches: usize,
    per_second: f64,
    p50: u32,
    p99: u32,
    cpu_per_search: f64,
}

fn run(runtime: &tokio::runtime::Runtime, server: &Server, kind: &Kind, connections: usize, seconds: u64) -> Figures {
    let requests = Arc::new(kind.requests.clone());
    let load = |until: Instant| {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..connections)
                .map(|c| tokio::spawn(client(server.addr, requests.clone(), c * 7919, connections, Some(until), None)))
                .collect();
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.expect("client").0);
            }
            all
        })
    };
    // A second of warm-up, then the timed run.
    load(Instant::now() + Duration::from_secs(1));
    let cpu_before = cpu_time(server.child.id());
    let started = Instant::now();
    let mut latencies = load(started + Duration::from_secs(seconds));
    let elapsed = started.elapsed();
    let cpu = cpu_time(server.child.id()).saturating_sub(cpu_before);
    latencies.sort_unstable();
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    Figures {
        searches: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        cpu_per_search: cpu.as_secs_f64() * 1e6 / latencies.len().max(1) as f64,
    }
}

/// The entries each of the first `n` searches of `kind` returns.
fn entries(runtime: &tokio::runtime::Runtime, server: &Server, kind: &Kind, n: usize) -> Vec<usize> {
    let requests = Arc::new(kind.requests.clone());
    runtime.block_on(client(server.addr, requests, 0, 1, None, Some(n))).1
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("--serve-ours") {
        let port = args[1].parse().expect("port");
        let count = args[2].parse().expect("people");
        serve_ours(port, count, &PathBuf::from(&args[3]));
        return;
    }
    let number = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let count = number(0, 10_000);
    let seconds = number(1, 5) as u64;
    let connections = number(2, 16);
    assert!(Path::new("/usr/sbin/slapd").exists(), "slapd is needed: scripts/install-test-tools installs it");
    let work = tempfile::tempdir().expect("temporary directory");
    certificate(work.path());
    let everyone = people(count);
    let kinds = [equality(&everyone), substring(&everyone), contains(&everyone)];
    let setup = Instant::now();
    let slapd = start_slapd(work.path(), count);
    println!("slapd: {count} people loaded (slapadd) and serving in {:.1} s", setup.elapsed().as_secs_f64());
    let setup = Instant::now();
    let ours = start_ours(work.path(), count);
    println!(
        "certdesk: {count} people loaded (Directory::replace) and serving in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    // Both must give the same answers before they are timed.
    for kind in &kinds {
        let sample = 300.min(kind.requests.len());
        let theirs = entries(&runtime, &slapd, kind, sample);
        let mine = entries(&runtime, &ours, kind, sample);
        assert_eq!(mine, theirs, "{}: certdesk and slapd disagree on the number of entries", kind.name);
        let total: usize = mine.iter().sum();
        println!("{}: {sample} searches give the same entries on both ({total} in all)", kind.name);
    }

    println!(
        "\n{count} people, {seconds} s per run, {connections} connections, one client thread, this machine ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<38} {:>9} {:>12} {:>8} {:>8} {:>14}",
        "lookup", "server", "searches/s", "p50 µs", "p99 µs", "server CPU µs"
    );
    let mut stdout = std::io::stdout();
    for kind in &kinds {
        let mut rates = Vec::new();
        for server in [&slapd, &ours] {
            let f = run(&runtime, server, kind, connections, seconds);
            println!(
                "{:<38} {:>9} {:>12.0} {:>8} {:>8} {:>14.1}   ({} searches)",
                kind.name, server.name, f.per_second, f.p50, f.p99, f.cpu_per_search, f.searches
            );
            stdout.flush().ok();
            rates.push((f.per_second, f.cpu_per_search));
        }
        println!(
            "{:<38} certdesk/slapd: {:.2}x the searches per second, {:.2}x the CPU per search",
            "",
            rates[1].0 / rates[0].0,
            rates[1].1 / rates[0].1.max(0.001)
        );
    }
    println!(
        "\nresident memory after the runs: slapd {:.0} MiB, certdesk {:.0} MiB",
        rss_mib(slapd.child.id()),
        rss_mib(ours.child.id())
    );
}
