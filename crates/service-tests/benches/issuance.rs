//! Issuance benchmark: certificates per second from CSRs (lint, serial reservation,
//! signature, database write with audit record) beside the raw signing rate of the
//! same CA key in the same run, and PKCS#12 creation time per format.
//!
//! Run with `scripts/bench` (or `cargo bench -p certdesk-service-tests --bench issuance -- N`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

/// The allocator of the `certdesk` binary (crates/cli), so the figures are those of what
/// ships: issuance hands memory between threads (to and from the signing thread).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use certdesk_ca::authority::{init, Authority, InitOptions, IssueInput, IssueRequest};
use certdesk_ca::issuer::Issuer;
use certdesk_pki::key::{AcceptedPublicKey, KeyAlgorithm, PrivateKey, Signer};
use certdesk_pki::pkcs12;
use certdesk_pki::profile::ProfileId;
use certdesk_pki::subject::{EmailAddress, NameField, Person};

use certdesk_core::clock::SystemClock;
use certdesk_core::datadir::DataDir;
use zeroize::Zeroizing;

const PASS: &str = "correct horse battery staple";

fn person(i: usize) -> Person {
    Person {
        email: EmailAddress::parse(&format!("user{i}@example.org")).unwrap(),
        given_name: NameField::parse("given name", "Bench").unwrap(),
        surname: NameField::parse("surname", &format!("User{i}")).unwrap(),
    }
}

/// SoftHSM2's module (Debian `softhsm2`).
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711";

/// A SoftHSM2 token `bench` in `dir` (SOFTHSM2_CONF is set for this process, before any
/// PKCS#11 call); `None` when SoftHSM2 is not installed.
fn softhsm_token(dir: &std::path::Path) -> Option<certdesk_ca::authority::TokenInit> {
    if !std::path::Path::new(SOFTHSM).exists() {
        return None;
    }
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\n", dir.join("tokens").display()),
    )
    .unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let made = std::process::Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", "123456"])
        .output()
        .ok()?;
    made.status.success().then(|| certdesk_ca::authority::TokenInit {
        module: SOFTHSM.into(),
        token: "bench".into(),
        key_label: format!("bench-{}", std::process::id()),
        existing: false,
    })
}

/// Issues `n` certificates each way; with `grown` > 0, once more after `grown` others.
async fn run(ca_key: KeyAlgorithm, n: usize, on_token: bool, grown: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let token = if on_token {
        match softhsm_token(dir.path()) {
            Some(token) => Some(token),
            None => {
                println!("(SoftHSM2 not installed: the run with the key on a token is skipped)");
                return;
            }
        }
    } else {
        None
    };
    let secret = if token.is_some() { PIN } else { PASS };
    let options = InitOptions {
        organization: "Bench University".into(),
        country: "DE".into(),
        organization_identifier: Some("VATDE-123456789".into()),
        base_url: "http://pki.example.org".into(),
        key: ca_key,
        database_url: None,
        pkcs11: token,
        offline_root: None,
        rsa_pss: false,
    };
    init(&data, options, Zeroizing::new(secret.into()), &SystemClock, "bench").await.unwrap();
    let authority = Authority::open(data.clone(), Arc::new(SystemClock)).await.unwrap();
    let issuer = authority.unlock(Zeroizing::new(secret.into())).await.unwrap();
    let raw_key = certdesk_ca::issuer::unlock_ca_key(&std::fs::read(data.issuing_key()).unwrap(), secret).unwrap();

    // Subscriber keys are made by the applicants, not by the CA: prepare them untimed.
    // Their CSRs are validated when submitted, before issuance: untimed too.
    let keys: Vec<_> = (0..n.min(50))
        .map(|_| PrivateKey::generate(KeyAlgorithm::P256).unwrap().accepted_public_key().unwrap())
        .collect();
    let tbs_like = vec![0x5au8; 900];
    let sign_rate = || {
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(raw_key.sign(&tbs_like).unwrap());
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let raw_rate = sign_rate();

    // Phase 1 alone: build + lint (no signature, no database).
    let start = Instant::now();
    for i in 0..n {
        let request = certdesk_pki::issuance::SubscriberRequest {
            person: person(i),
            organization: authority.config().organization.clone(),
            public_key: keys[i % keys.len()].clone(),
            key_use: certdesk_pki::issuance::KeyUse::default(),
        };
        let profile = authority.config().profile(ProfileId::SponsorStrict).unwrap();
        let now = time::OffsetDateTime::now_utc();
        std::hint::black_box(
            certdesk_pki::issuance::prepare(profile, issuer.info(), &request, now, &SystemRandom::new()).unwrap(),
        );
    }
    let prepare_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;

    // One durable commit per certificate (what `certdesk issue` does).
    let single_n = n / 4;
    let start = Instant::now();
    for i in 0..single_n {
        let input = IssueInput { person: person(i), profile: ProfileId::SponsorStrict };
        let key = keys[i % keys.len()].clone();
        authority.issue(&issuer, request(input), key, "bench").await.unwrap();
    }
    let single_rate = single_n as f64 / start.elapsed().as_secs_f64();

    // Group commit: batches of 100 per transaction (bulk enrolment, concurrent requests),
    // one after the other, then `issue_batches` (several batches under way at once).
    // Batches of 100 for people `first..first + count`.
    let batches_of = |first: usize, count: usize| -> Batches {
        (first..first + count)
            .step_by(100)
            .map(|from| {
                (from..(from + 100).min(first + count))
                    .map(|i| {
                        let input = IssueInput { person: person(i), profile: ProfileId::SponsorStrict };
                        (request(input), keys[i % keys.len()].clone())
                    })
                    .collect()
            })
            .collect()
    };
    let batches = || batches_of(0, n);
    let all = batches();
    let start = Instant::now();
    for batch in all {
        authority.issue_batch(&issuer, batch, "bench").await.unwrap();
    }
    let batch_rate = n as f64 / start.elapsed().as_secs_f64();
    let all = batches();
    let start = Instant::now();
    for result in authority.issue_batches(&issuer, all, "bench").await {
        result.unwrap();
    }
    let pipelined_rate = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "CA {:<8} {:<7} raw signing {:>7.0}/s | prepare+lint {:>5.1} us/cert | issue, commit each {:>6.0}/s ({:>4.1}%) | 100 per commit {:>6.0}/s ({:>4.1}%) | 100 per commit, {} under way {:>6.0}/s ({:>4.1}%)",
        ca_key.name(),
        if on_token { "SoftHSM" } else { "file" },
        raw_rate,
        prepare_us,
        single_rate,
        100.0 * single_rate / raw_rate,
        batch_rate,
        100.0 * batch_rate / raw_rate,
        certdesk_ca::authority::BATCHES_IN_FLIGHT,
        pipelined_rate,
        100.0 * pipelined_rate / raw_rate
    );
    if grown > 0 {
        // The machine's speed drifts during a run (a VM: the raw rate differs by up to a
        // third between its start and end): pipelined runs each between two raw
        // measurements, compared with their mean; the median of 3 rounds.
        let held = n / 4 + 2 * n;
        print_paired(ca_key, held, &mut paired_rounds(&authority, &issuer, &sign_rate, &batches).await);
        // The same into a store that already holds `grown` more certificates, as a CA
        // does after some years: its indexes are much larger than a batch.
        let long = round(&authority, &issuer, &sign_rate, batches_of(n, grown)).await;
        // A long run: filling and draining the pipeline count for little, SQLite's
        // checkpoints (the log copied into the database file every 1,000 pages, within
        // a commit) for their share.
        println!(
            "CA {:<8} file    {grown} at once, 100 per commit, {} under way: {:.0}/s ({:.1}% of the raw rate around it; key busy {:.1}%, signing at {:.1}%)",
            ca_key.name(),
            certdesk_ca::authority::BATCHES_IN_FLIGHT,
            long.rate,
            long.pct,
            long.key_busy,
            long.signing_speed
        );
        let held = held + 3 * n + grown;
        print_paired(ca_key, held, &mut paired_rounds(&authority, &issuer, &sign_rate, &batches).await);
    }
}

/// What `issue_batches` takes.
type Batches = Vec<Vec<(IssueRequest, AcceptedPublicKey)>>;

/// One pipelined run: its rate as a percentage of the raw rate around it, its rate, the
/// share of its time the signing thread held a batch ("key busy"), and how fast that
/// thread got through its batches (percentage of the raw rate, "signing at"). The first
/// percentage is the product of the last two by definition: below 100% because the key
/// waited for the work around it, or because the thread signed slower beside that work
/// than alone (waits for a core included).
#[derive(Clone, Copy)]
struct Round {
    pct: f64,
    rate: f64,
    key_busy: f64,
    signing_speed: f64,
}

/// `issue_batches` on `all`, between two raw signing runs.
async fn round(authority: &Authority, issuer: &Issuer, sign_rate: &dyn Fn() -> f64, all: Batches) -> Round {
    let n = all.iter().map(Vec::len).sum::<usize>();
    let before = sign_rate();
    let signed = issuer.signing_stats();
    let start = Instant::now();
    for result in authority.issue_batches(issuer, all, "bench").await {
        result.unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    let busy = (issuer.signing_stats().busy - signed.busy).as_secs_f64();
    let raw = (before + sign_rate()) / 2.0;
    let rate = n as f64 / wall;
    Round { pct: 100.0 * rate / raw, rate, key_busy: 100.0 * busy / wall, signing_speed: 100.0 * n as f64 / busy / raw }
}

/// Three runs of `issue_batches` on `batches()`, each between two raw signing runs.
async fn paired_rounds(
    authority: &Authority,
    issuer: &Issuer,
    sign_rate: &dyn Fn() -> f64,
    batches: &dyn Fn() -> Batches,
) -> Vec<Round> {
    let mut rounds = Vec::new();
    for _ in 0..3 {
        rounds.push(round(authority, issuer, sign_rate, batches()).await);
    }
    rounds
}

/// Prints the pipelined rounds and their median; `held`: certificates in the store
/// before the first round.
fn print_paired(ca_key: KeyAlgorithm, held: usize, rounds: &mut [Round]) {
    rounds.sort_by(|a, b| a.pct.total_cmp(&b.pct));
    let text: Vec<String> = rounds
        .iter()
        .map(|r| {
            format!("{:.0}/s {:.1}% (key busy {:.1}%, signing at {:.1}%)", r.rate, r.pct, r.key_busy, r.signing_speed)
        })
        .collect();
    let median = rounds.get(rounds.len() / 2).map_or(0.0, |r| r.pct);
    println!(
        "CA {:<8} file    store holding {held:>6}: 100 per commit, {} under way, each run between two raw runs: {} | median {median:.1}% of the raw rate",
        ca_key.name(),
        certdesk_ca::authority::BATCHES_IN_FLIGHT,
        text.join(", ")
    );
}

fn p12_times() {
    let key = PrivateKey::generate(KeyAlgorithm::Rsa3072).unwrap();
    let cert = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/leaf.der")).ok();
    let Some(cert) = cert else {
        println!("(benches/data/leaf.der missing: PKCS#12 timing skipped)");
        return;
    };
    for (format, name) in [(pkcs12::Format::Modern, "modern"), (pkcs12::Format::Compat, "compat")] {
        let options = pkcs12::WriteOptions { format, iterations: 600_000, friendly_name: Some("bench".into()) };
        let start = Instant::now();
        let rounds = 3;
        for _ in 0..rounds {
            std::hint::black_box(
                pkcs12::write(key.pkcs8_der(), &cert, &[], "Tq7#mv!2pLx9-river", &options, &SystemRandom::new())
                    .unwrap(),
            );
        }
        println!(
            "PKCS#12 {name:<7} 600000 iterations: {:>7.1} ms per file",
            start.elapsed().as_secs_f64() * 1000.0 / rounds as f64
        );
    }
}

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CRL generation (build + sign) with many entries.
fn crl_times() {
    use certdesk_pki::crl::{build_crl, CrlContent, RevocationReason, RevokedEntry};
    use certdesk_pki::issuance::{build_ca_certificate, CaCertificateRequest, IssuerInfo, PublicationUrls};
    let key = PrivateKey::generate(KeyAlgorithm::P384).unwrap();
    let org = certdesk_pki::subject::Organization::new("Bench", "DE", None).unwrap();
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let request = CaCertificateRequest {
        subject: certdesk_pki::subject::ca_name("Bench CA", &org).unwrap(),
        public_key: key.public_key().clone(),
        not_before: now,
        not_after: now + time::Duration::days(365),
        path_len: Some(0),
        email_protection_only: true,
        crl_url: None,
    };
    let rng = SystemRandom::new();
    let ca = build_ca_certificate(&request, None, &key, &rng).unwrap();
    let urls = PublicationUrls { crl: String::new(), ca_issuers: String::new(), ocsp: String::new() };
    let issuer = IssuerInfo::from_certificate(&ca, key.signature_algorithm(), urls).unwrap();
    for n in [100_000usize, 1_000_000] {
        let entries: Vec<RevokedEntry> = (0..n)
            .map(|_| RevokedEntry {
                serial: certdesk_pki::issuance::random_serial(&rng).unwrap(),
                revoked_at: now,
                reason: RevocationReason::KeyCompromise,
            })
            .collect();
        let before = peak_mib();
        let start = Instant::now();
        let content =
            CrlContent { number: 1, this_update: now, next_update: now + time::Duration::days(7), entries: &entries };
        let der = build_crl(&issuer, &content, &key).unwrap();
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "CRL {n:>9} entries: {elapsed:>6.2} s, {:>6.1} MB DER, peak RSS {:>7.1} MiB (entries alone {:>6.1} MiB before building)",
            der.len() as f64 / 1e6,
            peak_mib(),
            before
        );
    }
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("issuing {n} certificates per CA key type");
    // An optional word limits the run: `p384`, `p384-file`, `rsa4096`, `token`, `p12` or
    // `crl` (for profiling).
    let only: Option<String> = std::env::args().skip(1).find(|a| a.parse::<usize>().is_err() && !a.starts_with('-'));
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("p384") || wanted("p384-file") {
        rt.block_on(run(KeyAlgorithm::P384, n, false, 20 * n));
    }
    if wanted("rsa4096") {
        rt.block_on(run(KeyAlgorithm::Rsa4096, n / 4, false, 0));
    }
    // The same with the CA key on a PKCS#11 token (SoftHSM2), in the same run.
    if wanted("p384") || wanted("token") {
        rt.block_on(run(KeyAlgorithm::P384, n, true, 0));
    }
    if wanted("p12") {
        p12_times();
    }
    if wanted("crl") {
        crl_times();
    }
}

/// A request as `certdesk issue` makes it (CAA off).
fn request(input: IssueInput) -> IssueRequest {
    IssueRequest { input, caa: "not checked ([ca] caa = off)".into(), application: None }
}
