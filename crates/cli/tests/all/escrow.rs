//! `certdesk escrow init | show | check-shares` (issue 15, docs/design/key-escrow.md):
//! an escrow key split 2-of-3 among three officers, each share sent as S/MIME to its
//! agent's certificate and read back with certdesk and OpenSSL; bad agents and
//! thresholds refused with nothing made; shares checked by name; no share in the data
//! directory.

use super::common::*;

fn escrow(ca: &Ca, args: &[&str]) -> Run {
    let mut all = vec!["escrow"];
    all.extend_from_slice(args);
    ca.run(&all)
}

#[test]
fn an_escrow_key_is_split_among_agents_who_read_their_shares() {
    let ca = Ca::new("p384");
    for n in 1..=3 {
        ca.run(&["user", "add", "--email", &format!("agent{n}@example.org"), "--role", "officer"]).ok();
    }
    issue_agent(&ca, 1, "rsa3072");
    issue_agent(&ca, 2, "rsa3072");
    let agents = "agent1@example.org,Agent2@Example.org,agent3@example.org";

    // Refused, nothing made: a threshold above the agents, an agent twice, agent3 with no
    // certificate yet, someone who is not staff, a directory that is not empty.
    for (args, says) in [
        (vec!["--agents", agents, "--threshold", "4"], "a threshold of 4 of 3 agents"),
        (vec!["--agents", agents, "--threshold", "1"], "a threshold of 1 of 3 agents"),
        (vec!["--agents", "agent1@example.org,AGENT1@example.org", "--threshold", "2"], "is named twice"),
        (vec!["--agents", agents, "--threshold", "2"], "agent3@example.org has no current certificate"),
        (
            vec!["--agents", "agent1@example.org,jane.doe@example.org", "--threshold", "2"],
            "jane.doe@example.org is not an officer or administrator",
        ),
    ] {
        let mut all = vec!["init"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["--out", "refused"]);
        let run = escrow(&ca, &all);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    issue_agent(&ca, 3, "rsa3072");
    std::fs::create_dir(ca.path("busy")).unwrap();
    std::fs::write(ca.path("busy/keep.txt"), "mine").unwrap();
    let run = escrow(&ca, &["init", "--agents", agents, "--threshold", "2", "--out", "busy"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    std::fs::create_dir(ca.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink(ca.path("elsewhere"), ca.path("link")).unwrap();
    let run = escrow(&ca, &["init", "--agents", agents, "--threshold", "2", "--out", "link"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a symbolic link"), "{}", run.stderr);
    assert!(std::fs::read_dir(ca.path("elsewhere")).unwrap().next().is_none());
    assert!(!ca.path("refused").exists() || std::fs::read_dir(ca.path("refused")).unwrap().next().is_none());
    let shown = escrow(&ca, &["show"]).ok();
    assert!(shown.stderr.contains("no escrow key"), "{}", shown.stderr);

    // 2 of 3.
    let run = escrow(&ca, &["init", "--agents", agents, "--threshold", "2", "--out", "shares"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let key_id = String::from_utf8(run.stdout).unwrap().trim().to_string();
    assert_eq!(key_id.len(), 64, "{key_id}");
    let mut names: Vec<String> = std::fs::read_dir(ca.path("shares"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["escrow-certificate.pem", "share-1.eml", "share-2.eml", "share-3.eml"]);
    // The escrow certificate: P-384, for key agreement, not a CA.
    let text = ca.tool("openssl", &["x509", "-in", "shares/escrow-certificate.pem", "-noout", "-text"]).ok();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("NIST CURVE: P-384") && text.contains("Key Agreement") && text.contains("CA:FALSE"),
        "{text}"
    );

    // Each agent reads their share with certdesk; agent 1 with OpenSSL too; agent 2's
    // key does not open agent 1's message.
    for n in 1..=3 {
        let message = format!("shares/share-{n}.eml");
        let out = format!("share{n}.txt");
        let p12 = format!("agent{n}.p12");
        let run =
            ca.run(&["smime", "decrypt", "--p12", &p12, "--password-file", "p12pass", "--in", &message, "--out", &out]);
        assert_eq!(run.code, 0, "agent {n}: {}", run.stderr);
        let share = std::fs::read_to_string(ca.path(&out)).unwrap();
        assert!(share.contains("-----BEGIN CERTDESK ESCROW SHARE-----"), "{share}");
        assert!(share.contains(&format!("agent {n} of 3")), "{share}");
    }
    ca.tool("openssl", &["pkcs12", "-in", "agent1.p12", "-passin", "file:p12pass", "-nodes", "-out", "agent1.pem"])
        .ok();
    let run =
        ca.tool("openssl", &["cms", "-decrypt", "-in", "shares/share-1.eml", "-inkey", "agent1.pem", "-out", "o1.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_to_string(ca.path("o1.txt")).unwrap().contains("CERTDESK ESCROW SHARE"));
    let run = ca.run(&[
        "smime",
        "decrypt",
        "--p12",
        "agent2.p12",
        "--password-file",
        "p12pass",
        "--in",
        "shares/share-1.eml",
        "--out",
        "stolen.txt",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!ca.path("stolen.txt").exists());

    // A drill: each share checked on its own against what init kept (one agent alone can
    // do it, from the decrypted message on stdin); the same twice, a changed one and
    // garbage are refused.
    let run = escrow(&ca, &["check-shares", "share1.txt", "share3.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("the share of agent 3 (agent3@example.org) is the one handed out"), "{}", run.stderr);
    let share2 = std::fs::read(ca.path("share2.txt")).unwrap();
    let run = tool_stdin(
        env!("CARGO_BIN_EXE_certdesk"),
        &["--data", "data", "escrow", "check-shares", "-"],
        ca.dir.path(),
        &share2,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("agent 2"), "{}", run.stderr);
    let run = escrow(&ca, &["check-shares", "share2.txt", "share2.txt"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is given twice"), "{}", run.stderr);
    let share3 = std::fs::read_to_string(ca.path("share3.txt")).unwrap();
    let body_line = share3.lines().skip_while(|l| !l.starts_with("-----BEGIN")).nth(2).unwrap().to_string();
    let flipped_line: String = body_line
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    std::fs::write(ca.path("forged.txt"), share3.replace(&body_line, &flipped_line)).unwrap();
    let run = escrow(&ca, &["check-shares", "share1.txt", "forged.txt"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // (The changed character may fall in the share's bytes or in the agent's address.)
    assert!(run.stderr.contains("the share of agent 3 ("), "{}", run.stderr);
    assert!(run.stderr.contains("is not the one handed out at init"), "{}", run.stderr);
    assert!(run.stderr.contains("1 of 2 share(s) are not the ones handed out"), "{}", run.stderr);
    std::fs::write(ca.path("garbage.txt"), "no share here").unwrap();
    let run = escrow(&ca, &["check-shares", "garbage.txt"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not an escrow share"), "{}", run.stderr);

    // What is kept: the key with its agents; no share anywhere in the data directory.
    let shown = String::from_utf8(escrow(&ca, &["show"]).ok().stdout).unwrap();
    assert!(shown.contains(&format!("{key_id}  2 of 3")) && shown.contains("in use"), "{shown}");
    assert_eq!(shown.matches("  agent ").count(), 3, "{shown}");
    let share_lines: Vec<String> = ["share1.txt", "share2.txt", "share3.txt"]
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(ca.path(f)).unwrap();
            text.lines()
                .skip_while(|l| !l.starts_with("-----BEGIN"))
                .skip(1)
                .take(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    for file in certdesk_test_support::files_under(&ca.path("data")) {
        let bytes = std::fs::read(&file).unwrap();
        for line in &share_lines {
            assert!(!bytes.windows(line.len()).any(|w| w == line.as_bytes()), "a share is in {}", file.display());
        }
    }
    // A new escrow key retires the one before.
    let run = escrow(&ca, &["init", "--agents", agents, "--threshold", "3", "--out", "shares2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("is retired for new certificates"), "{}", run.stderr);
    let shown = String::from_utf8(escrow(&ca, &["show"]).ok().stdout).unwrap();
    assert!(shown.contains(&format!("{key_id}  2 of 3")) && shown.contains("retired"), "{shown}");
    // Shares of the first key still check against it.
    escrow(&ca, &["check-shares", "share1.txt"]).ok();
    // Every init and every check has its audit record, and the chain verifies.
    ca.run(&["audit", "verify"]).ok();
    let script = "import sqlite3; c = sqlite3.connect('data/certdesk.db'); \
                  print(' '.join(r[0] for r in c.execute(\"SELECT action FROM audit_log WHERE action LIKE 'escrow.%' \
                  ORDER BY seq\")))";
    let actions = String::from_utf8(ca.tool("python3", &["-c", script]).ok().stdout).unwrap();
    assert_eq!(
        actions.trim(),
        "escrow.init escrow.check escrow.check escrow.check escrow.check escrow.check escrow.init escrow.check",
        "one record per share checked; refused input before the store is opened, none"
    );
}

/// The escrow key of a test, put together from the shares of agents 1 and 2 (each
/// decrypted from its message with the agent's .p12), as PKCS#8 DER.
fn recovered_escrow_key(ca: &Ca, shares_dir: &str) -> Vec<u8> {
    let mut shares = Vec::new();
    for n in 1..=2 {
        let out = format!("{shares_dir}-share{n}.txt");
        ca.run(&[
            "smime",
            "decrypt",
            "--p12",
            &format!("agent{n}.p12"),
            "--password-file",
            "p12pass",
            "--in",
            &format!("{shares_dir}/share-{n}.eml"),
            "--out",
            &out,
        ])
        .ok();
        shares.push(certdesk_ca::escrow::share::EscrowShare::parse(&std::fs::read(ca.path(&out)).unwrap()).unwrap());
    }
    let url = certdesk_core::datadir::DataDir::new(ca.path("data")).sqlite_url();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = certdesk_store::Store::open(&url).await.unwrap();
        let key = store.current_escrow_key().await.unwrap().unwrap();
        let records = certdesk_ca::escrow::stored_share_records(&store, &key.key_id).await.unwrap();
        store.close().await;
        certdesk_ca::escrow::recover_key(&key.certificate, usize::from(key.threshold), &shares, &records)
            .unwrap()
            .to_vec()
    })
}

/// What the store keeps of escrow: (serial, key id, blob) of every escrowed key.
fn escrowed(ca: &Ca) -> Vec<certdesk_store::EscrowedKeyRecord> {
    let url = certdesk_core::datadir::DataDir::new(ca.path("data")).sqlite_url();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = certdesk_store::Store::open(&url).await.unwrap();
        let kept = store.escrowed_keys().await.unwrap();
        store.close().await;
        kept
    })
}

fn issue_p12(ca: &Ca, local: &str, extra: &[&str]) -> Run {
    issue_p12_key(ca, local, "p256", extra)
}

fn issue_p12_key(ca: &Ca, local: &str, key: &str, extra: &[&str]) -> Run {
    let email = format!("{local}@example.org");
    let p12 = format!("{local}.p12");
    let mut args = vec![
        "issue",
        "--email",
        &email,
        "--given-name",
        "Jane",
        "--surname",
        "Doe",
        "--key",
        key,
        "--p12",
        &p12,
        "--password-file",
        "p12pass",
    ];
    args.extend_from_slice(extra);
    ca.run(&args)
}

/// Step 4 of docs/design/key-escrow.md: a profile escrows once an administrator turns
/// it on (refused without an escrow key); from then on every key certdesk makes for it
/// is stored encrypted to the escrow certificate in the commit of its certificate, and
/// OpenSSL, with the escrow key put together from two shares, decrypts it to the key of
/// the certificate and of the subscriber's .p12. Keys of other profiles, of a CSR, and
/// from before escrow was on are not escrowed. The holder is told.
#[test]
fn keys_certdesk_makes_are_escrowed_at_issuance_when_the_profile_says_so() {
    let ca = Ca::new("p384");
    for n in 1..=3 {
        add_agent(&ca, n, "rsa3072");
    }
    // No escrow key yet: a profile cannot escrow; a bad profile or mode is a usage error.
    let run = escrow(&ca, &["profile", "sponsor-strict", "on"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("there is no escrow key"), "{}", run.stderr);
    let run = escrow(&ca, &["profile", "no-such-profile", "on"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = escrow(&ca, &["profile", "sponsor-strict", "maybe"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("expected `on`"), "{}", run.stderr);

    escrow(
        &ca,
        &[
            "init",
            "--agents",
            "agent1@example.org,agent2@example.org,agent3@example.org",
            "--threshold",
            "2",
            "--out",
            "shares",
        ],
    )
    .ok();
    // Before escrow is on: not escrowed.
    let run = issue_p12(&ca, "before", &[]).ok();
    assert!(!run.stderr.contains("escrow"), "{}", run.stderr);
    let run = escrow(&ca, &["profile", "sponsor-strict", "on"]).ok();
    assert!(run.stderr.contains("escrowed from now on"), "{}", run.stderr);
    let run = escrow(&ca, &["profile", "sponsor-strict", "on"]).ok();
    assert!(run.stderr.contains("already on"), "{}", run.stderr);
    let shown = String::from_utf8(escrow(&ca, &["show"]).ok().stdout).unwrap();
    assert!(shown.contains("profiles that escrow: sponsor-strict") && shown.contains("escrowed keys: 0"), "{shown}");

    // Escrowed: the holder is told; the blob is in the store beside the certificate.
    let run = issue_p12(&ca, "jane.doe", &["--profile", "sponsor-strict"]).ok();
    assert!(run.stderr.contains("a copy of this key is kept encrypted to escrow key"), "{}", run.stderr);
    // Not escrowed: another profile; a key of the subscriber's own (CSR).
    issue_p12(&ca, "other", &["--profile", "sponsor-multipurpose"]).ok();
    let csr = ca.csr("own", KeyKind::P256);
    ca.run(&[
        "issue",
        "--csr",
        csr.to_str().unwrap(),
        "--email",
        "own@example.org",
        "--given-name",
        "Own",
        "--surname",
        "Key",
        "--profile",
        "sponsor-strict",
        "--out",
        "own.pem",
    ])
    .ok();
    let kept = escrowed(&ca);
    assert_eq!(kept.len(), 1, "{kept:?}");
    ca.tool("openssl", &["pkcs12", "-in", "jane.doe.p12", "-passin", "file:p12pass", "-nodes", "-out", "jane.pem"])
        .ok();
    assert_eq!(
        kept[0].serial.trim_start_matches("00"),
        ca.serial_of(&ca.path("jane.pem")).trim_start_matches("00"),
        "the escrowed key is jane's"
    );

    // OpenSSL opens the blob (AuthEnvelopedData, AES-256-GCM, ECDH P-384) with the escrow
    // key from two shares: the key of the certificate and of the .p12.
    std::fs::write(ca.path("escrow.der"), recovered_escrow_key(&ca, "shares")).unwrap();
    std::fs::write(ca.path("blob.der"), &kept[0].blob).unwrap();
    let run = ca.tool(
        "openssl",
        &[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            "blob.der",
            "-inkey",
            "escrow.der",
            "-keyform",
            "DER",
            "-binary",
            "-out",
            "escrowed.der",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let public = |args: &[&str]| String::from_utf8(ca.tool("openssl", args).ok().stdout).unwrap();
    let escrowed_public = public(&["pkey", "-inform", "DER", "-in", "escrowed.der", "-pubout"]);
    assert!(escrowed_public.contains("BEGIN PUBLIC KEY"), "{escrowed_public}");
    assert_eq!(escrowed_public, public(&["x509", "-in", "jane.pem", "-noout", "-pubkey"]));
    assert_eq!(escrowed_public, public(&["pkey", "-in", "jane.pem", "-pubout"]));

    // The audit record of the issuance names the escrow key; turning escrow off is
    // recorded too and stops it.
    escrow(&ca, &["profile", "sponsor-strict", "off"]).ok();
    issue_p12(&ca, "after", &["--profile", "sponsor-strict"]).ok();
    assert_eq!(escrowed(&ca).len(), 1);
    ca.run(&["audit", "verify"]).ok();
    let script = "import sqlite3, json; c = sqlite3.connect('data/certdesk.db'); \
                  print('\\n'.join(r[0] + ' ' + r[1] + ' ' + str(json.loads(r[2]).get('mode' if r[0] == 'profile.escrow' else 'escrow_key')) \
                  for r in c.execute(\"SELECT action, subject, details FROM audit_log WHERE action IN ('profile.escrow', 'certificate.issue') ORDER BY seq\")))";
    let log = String::from_utf8(ca.tool("python3", &["-c", script]).ok().stdout).unwrap();
    let key_id = &kept[0].key_id;
    assert!(log.contains(&format!("certificate.issue {} {key_id}", kept[0].serial)), "{log}");
    assert!(
        log.contains("profile.escrow sponsor-strict on") && log.contains("profile.escrow sponsor-strict off"),
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.starts_with("certificate.issue") && l.ends_with(key_id.as_str())).count(),
        1,
        "only one issuance was escrowed: {log}"
    );
}

/// A profile that escrows with no escrow key in use (the database changed by hand, say)
/// is refused before anything is generated, signed or recorded, and no file is written.
#[test]
fn an_escrowing_profile_without_an_escrow_key_issues_nothing() {
    let ca = Ca::new("p384");
    let script = "import sqlite3; c = sqlite3.connect('data/certdesk.db'); \
                  c.execute(\"INSERT INTO profile_escrow VALUES ('sponsor-strict', 'on', 'x', 1)\"); c.commit()";
    ca.tool("python3", &["-c", script]).ok();
    let run = issue_p12(&ca, "jane.doe", &["--profile", "sponsor-strict"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("escrows the keys the desk makes, but there is no escrow key"), "{}", run.stderr);
    assert!(!ca.path("jane.doe.p12").exists());
    assert!(!ca.files().iter().any(|f| f.contains("jane.doe.p12")), "{:?}", ca.files());
    let script = "import sqlite3; c = sqlite3.connect('data/certdesk.db'); \
                  print(c.execute('SELECT (SELECT count(*) FROM certificates) + (SELECT count(*) FROM issuance_intents)').fetchone()[0])";
    assert_eq!(String::from_utf8(ca.tool("python3", &["-c", script]).ok().stdout).unwrap().trim(), "0");
    // Another profile still issues.
    issue_p12(&ca, "jane.doe", &["--profile", "sponsor-multipurpose"]).ok();
}

/// Step 5: a profile that escrows `separate`ly gets two keys in the one .p12, each with
/// its certificate: one for signing only, never escrowed, one for key management only,
/// escrowed. pkilint finds both clean (RSA and EC); OpenSSL signs and verifies with the
/// one and encrypts to and decrypts with the other; the escrowed key is the encryption
/// key; the audit records name each other.
#[test]
fn a_separate_profile_gets_a_signing_key_never_escrowed_and_an_escrowed_encryption_key() {
    let ca = Ca::new("p384");
    for n in 1..=2 {
        add_agent(&ca, n, "rsa3072");
    }
    escrow(&ca, &["init", "--agents", "agent1@example.org,agent2@example.org", "--threshold", "2", "--out", "shares"])
        .ok();
    let run = escrow(&ca, &["profile", "sponsor-strict", "separate"]).ok();
    assert!(run.stderr.contains("come as two from now on"), "{}", run.stderr);
    std::fs::write(ca.path("message.txt"), "Subject: plan\r\n\r\nThe plan for 2027.\r\n").unwrap();
    for (local, key, management) in [("ec.user", "p256", "Key Agreement"), ("rsa.user", "rsa3072", "Key Encipherment")]
    {
        let run = issue_p12_key(&ca, local, key, &["--profile", "sponsor-strict"]).ok();
        assert!(run.stderr.contains("a certificate for signing only"), "{}", run.stderr);
        assert!(run.stderr.contains("a copy of the encryption key is kept"), "{}", run.stderr);
        let p12 = std::fs::read(ca.path(&format!("{local}.p12"))).unwrap();
        let password = std::fs::read_to_string(ca.path("p12pass")).unwrap();
        let contents = certdesk_pki::pkcs12::read(&p12, password.trim_end_matches('\n')).unwrap();
        assert_eq!(contents.pairs.len(), 2, "{local}: two keys");
        let mut usages = Vec::new();
        for (i, pair) in contents.pairs.iter().enumerate() {
            let cert = format!("{local}-{i}.pem");
            let der = format!("{local}-{i}.der");
            std::fs::write(ca.path(&der), pair.leaf.as_ref().unwrap()).unwrap();
            ca.tool("openssl", &["x509", "-inform", "DER", "-in", &der, "-out", &cert]).ok();
            std::fs::write(ca.path(&format!("{local}-{i}.key")), &*pair.key_pkcs8_der).unwrap();
            let findings = pkilint_findings(ca.dir.path(), &cert);
            assert!(findings.trim().is_empty(), "pkilint on {cert}:\n{findings}");
            let text = ca.tool("openssl", &["x509", "-in", &cert, "-noout", "-ext", "keyUsage"]).ok();
            usages.push(String::from_utf8(text.stdout).unwrap().lines().nth(1).unwrap_or_default().trim().to_string());
        }
        // The first key encrypts (escrowed), the second signs.
        assert_eq!(usages, [management.to_string(), "Digital Signature".to_string()], "{local}");
        let (enc, sign) = (format!("{local}-0"), format!("{local}-1"));
        let run = ca.tool(
            "openssl",
            &[
                "cms",
                "-sign",
                "-in",
                "message.txt",
                "-signer",
                &format!("{sign}.pem"),
                "-inkey",
                &format!("{sign}.key"),
                "-keyform",
                "DER",
                "-out",
                "signed.eml",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let run = ca.tool(
            "openssl",
            &[
                "cms",
                "-verify",
                "-in",
                "signed.eml",
                "-CAfile",
                "chain.pem",
                "-purpose",
                "smimesign",
                "-out",
                "/dev/null",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        ca.tool(
            "openssl",
            &["cms", "-encrypt", "-aes256", "-in", "message.txt", "-out", "enc.eml", &format!("{enc}.pem")],
        )
        .ok();
        let out = ca
            .tool(
                "openssl",
                &[
                    "cms",
                    "-decrypt",
                    "-in",
                    "enc.eml",
                    "-inkey",
                    &format!("{enc}.key"),
                    "-keyform",
                    "DER",
                    "-recip",
                    &format!("{enc}.pem"),
                ],
            )
            .ok();
        assert!(String::from_utf8_lossy(&out.stdout).contains("The plan for 2027."));
        // Only the encryption key is escrowed.
        let enc_serial = ca.serial_of(&ca.path(&format!("{enc}.pem")));
        let sign_serial = ca.serial_of(&ca.path(&format!("{sign}.pem")));
        let kept = escrowed(&ca);
        assert!(kept.iter().any(|k| k.serial.trim_start_matches("00") == enc_serial.trim_start_matches("00")));
        assert!(!kept.iter().any(|k| k.serial.trim_start_matches("00") == sign_serial.trim_start_matches("00")));
    }
    assert_eq!(escrowed(&ca).len(), 2, "one escrowed key per person");
    // The audit records of each pair name each other.
    let script = "import sqlite3, json; c = sqlite3.connect('data/certdesk.db'); \
                  print(sum(1 for r in c.execute(\"SELECT details FROM audit_log WHERE action = 'certificate.issue'\") \
                  if json.loads(r[0]).get('issued_with')))";
    let paired = String::from_utf8(ca.tool("python3", &["-c", script]).ok().stdout).unwrap();
    assert_eq!(paired.trim(), "4");
    ca.run(&["audit", "verify"]).ok();
}
