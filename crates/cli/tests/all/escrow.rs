//! `certdesk escrow init | show | check-shares` (issue 15, docs/design/key-escrow.md):
//! an escrow key split 2-of-3 among three officers, each share sent as S/MIME to its
//! agent's certificate and read back with certdesk and OpenSSL; bad agents and
//! thresholds refused with nothing made; shares checked by name; no share in the data
//! directory.

use super::common::*;

fn issue_agent(ca: &Ca, n: usize) {
    let email = format!("agent{n}@example.org");
    let p12 = format!("agent{n}.p12");
    ca.run(&[
        "issue",
        "--email",
        &email,
        "--given-name",
        "Agent",
        "--surname",
        &format!("Number{n}"),
        "--key",
        "rsa3072",
        "--p12",
        &p12,
        "--password-file",
        "p12pass",
    ])
    .ok();
}

fn escrow(ca: &Ca, args: &[&str]) -> Run {
    let mut all = vec!["escrow"];
    all.extend_from_slice(args);
    ca.run(&all)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn an_escrow_key_is_split_among_agents_who_read_their_shares() {
    let ca = Ca::new("p384");
    for n in 1..=3 {
        ca.run(&["user", "add", "--email", &format!("agent{n}@example.org"), "--role", "officer"]).ok();
    }
    issue_agent(&ca, 1);
    issue_agent(&ca, 2);
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
    issue_agent(&ca, 3);
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
    for file in files_under(&ca.path("data")) {
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
