//! Shared helpers: a CA in a temporary directory, and runners for external tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use certdesk_test_support::csr::{openssl_csr, CsrOptions, KeyKind};

pub const PASSPHRASE: &str = "correct horse battery staple";
pub const P12_PASSWORD: &str = "Tq7#mv!2pLx9-river";

pub struct Ca {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {}", self.stderr);
        self
    }
}

/// Runs an external tool; panics (fails the test) if it is missing: CI installs them all.
pub fn tool(program: &str, args: &[&str], cwd: &Path) -> Run {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by this test (.ci/run installs it): {e}"));
    Run::from(output)
}

/// Runs an external tool with `input` on its standard input.
pub fn tool_stdin(program: &str, args: &[&str], cwd: &Path, input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed by this test (.ci/run installs it): {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// `certdesk --data d --passphrase-file PASS init --org X EXTRA...` in `cwd`.
pub fn init_in(cwd: &Path, passphrase_file: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--data", "d", "--passphrase-file", passphrase_file, "init", "--org", "X"];
    args.extend_from_slice(extra);
    certdesk_in(cwd, &args)
}

pub fn certdesk_in(cwd: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_certdesk"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CERTDESK_DATA")
        .env_remove("CERTDESK_CA_PASSPHRASE")
        .output()
        .unwrap();
    Run::from(output)
}

/// [`certdesk_in`] with `input` on stdin.
pub fn certdesk_stdin(cwd: &Path, args: &[&str], input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_certdesk"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CERTDESK_DATA")
        .env_remove("CERTDESK_CA_PASSPHRASE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// The proxy variables `certdesk` reads (through ureq), upper and lower case.
const PROXY_VARIABLES: [&str; 8] =
    ["ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"];

/// `certdesk_in` with these proxy variables and no others from the test's environment.
pub fn certdesk_with_proxy_env(cwd: &Path, args: &[&str], proxy_env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_certdesk"));
    command.args(args).current_dir(cwd).env_remove("CERTDESK_DATA").env_remove("CERTDESK_CA_PASSPHRASE");
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command.envs(proxy_env.iter().copied());
    Run::from(command.output().unwrap())
}

impl Ca {
    /// A fresh data directory `data` inside a temp dir, with the passphrase in `pass`.
    pub fn new(key: &str) -> Self {
        Self::with_init_args(&["--key", key])
    }

    /// A CA made by `init` with these arguments added (e.g. `--database-url`).
    pub fn with_init_args(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pass"), format!("{PASSPHRASE}\n")).unwrap();
        std::fs::write(dir.path().join("p12pass"), format!("{P12_PASSWORD}\n")).unwrap();
        let ca = Ca { dir };
        let mut args = vec!["init", "--country", "DE"];
        if !extra.contains(&"--org") {
            args.extend_from_slice(&["--org", "Example University"]);
        }
        if !extra.contains(&"--org-id") {
            args.extend_from_slice(&["--org-id", "VATDE-123456789"]);
        }
        if !extra.contains(&"--base-url") {
            args.extend_from_slice(&["--base-url", "http://pki.example.org"]);
        }
        args.extend_from_slice(extra);
        // scripts/test's second run (CERTDESK_TEST_CA_KEYS=softhsm, SOFTHSM2_CONF set):
        // the CA's keys on a SoftHSM2 token of its own, whose PIN is PASSPHRASE.
        let label = format!("ca{}", ca.dir.path().file_name().unwrap().to_string_lossy().replace('.', "-"));
        let on_token = std::env::var("CERTDESK_TEST_CA_KEYS").is_ok_and(|v| v == "softhsm");
        if on_token && !extra.contains(&"--pkcs11-module") {
            tool(
                "softhsm2-util",
                &["--init-token", "--free", "--label", &label, "--pin", PASSPHRASE, "--so-pin", "12345678"],
                ca.dir.path(),
            )
            .ok();
            args.extend_from_slice(&["--pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", &label]);
        }
        ca.run(&args).ok();
        ca.run(&["ca", "chain", "--out", "chain.pem"]).ok();
        ca
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs certdesk with `--data data --passphrase-file pass`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--data", "data", "--passphrase-file", "pass"];
        all.extend_from_slice(args);
        certdesk_in(self.dir.path(), &all)
    }

    pub fn tool(&self, program: &str, args: &[&str]) -> Run {
        tool(program, args, self.dir.path())
    }

    /// Makes a key (`NAME.key`) and a CSR (`NAME.csr`) with OpenSSL.
    pub fn csr(&self, name: &str, key: KeyKind) -> PathBuf {
        let options = CsrOptions { key, subject: "/CN=ignored", ..CsrOptions::default() };
        openssl_csr(self.dir.path(), name, &options).csr
    }

    /// Issues for a CSR and returns the certificate path.
    pub fn issue_csr(&self, csr: &Path, profile: &str, out: &str) -> PathBuf {
        self.run(&[
            "issue",
            "--csr",
            csr.to_str().unwrap(),
            "--email",
            "jane.doe@example.org",
            "--given-name",
            "Jane",
            "--surname",
            "Doe",
            "--profile",
            profile,
            "--out",
            out,
        ])
        .ok();
        self.path(out)
    }

    /// Issues with a server-generated key into a .p12 (password from `p12pass`).
    pub fn issue_p12(&self, key: &str, format: &str, out: &str) -> Run {
        self.issue_p12_with("p12pass", key, format, out)
    }

    /// Issues with a server-generated key into a .p12, password from `password_file`.
    pub fn issue_p12_with(&self, password_file: &str, key: &str, format: &str, out: &str) -> Run {
        let person = ["--email", "jane.doe@example.org", "--given-name", "Jane", "--surname", "Doe"];
        let mut args = vec!["issue"];
        args.extend_from_slice(&person);
        args.extend_from_slice(&["--key", key, "--p12", out, "--password-file", password_file, "--p12-format", format]);
        self.run(&args)
    }

    /// The number of audit records (from `audit verify`).
    pub fn audit_records(&self) -> usize {
        let run = self.run(&["audit", "verify"]).ok();
        let text = String::from_utf8(run.stdout).unwrap();
        text.split_whitespace().nth(3).unwrap().parse().unwrap()
    }

    /// Serial (hex) of a PEM certificate file, via OpenSSL.
    pub fn serial_of(&self, cert: &Path) -> String {
        let run = self.tool("openssl", &["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"]).ok();
        String::from_utf8(run.stdout).unwrap().trim().trim_start_matches("serial=").to_ascii_lowercase()
    }

    /// Jane's certificate (`jane.pem`) and, with `key`, her unencrypted key (`jane.key`)
    /// out of `jane.p12` (password file `p12pass`), through OpenSSL.
    pub fn jane_pem(&self, key: bool) {
        let mut outputs = vec![("-clcerts", "jane.pem")];
        if key {
            outputs.push(("-nocerts", "jane.key"));
        }
        for (what, out) in outputs {
            let mut args = vec!["pkcs12", "-in", "jane.p12", "-passin", "file:p12pass", "-nodes", what, "-out", out];
            if what == "-clcerts" {
                args.push("-nokeys");
            }
            self.tool("openssl", &args).ok();
        }
    }

    /// Splits `chain.pem` into `issuing.pem` and `root.pem`.
    pub fn split_chain(&self) {
        let chain = std::fs::read_to_string(self.path("chain.pem")).unwrap();
        let end = "-----END CERTIFICATE-----\n";
        let issuing_end = chain.find(end).unwrap() + end.len();
        std::fs::write(self.path("issuing.pem"), &chain[..issuing_end]).unwrap();
        std::fs::write(self.path("root.pem"), &chain[issuing_end..]).unwrap();
    }

    /// Files in the temp dir (to show nothing was left behind).
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

pub fn pkilint() -> String {
    std::env::var("CERTDESK_PKILINT").unwrap_or_else(|_| "lint_cabf_smime_cert".into())
}

/// pkilint's findings (WARNING and above) on a certificate file in `dir`, detecting the
/// profile: empty when clean. A run that fails to lint at all fails the test.
pub fn pkilint_findings(dir: &Path, cert: &str) -> String {
    let run = tool(&pkilint(), &["lint", "-s", "WARNING", "-d", cert], dir);
    let out = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(!run.stderr.contains("usage:") && !run.stderr.contains("Traceback"), "pkilint did not run: {}", run.stderr);
    out + &run.stderr
}

/// A TLS server certificate for localhost and 127.0.0.1 (`NAME.crt`, `NAME.key`) from a
/// test CA (`tlsca.pem`, made on first use), all by OpenSSL.
pub fn tls_certificate(ca: &Ca, name: &str) {
    if !ca.path("tlsca.pem").exists() {
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
                "tlsca.key",
                "-out",
                "tlsca.pem",
                "-subj",
                "/CN=certdesk test TLS CA",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        )
        .ok();
    }
    std::fs::write(
        ca.path("tls-ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    let (key, csr, crt) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
    ca.tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    )
    .ok();
    ca.tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "tlsca.pem",
            "-CAkey",
            "tlsca.key",
            "-set_serial",
            &format!("{}", name.len() * 1000 + name.bytes().map(usize::from).sum::<usize>()),
            "-days",
            "2",
            "-extfile",
            "tls-ext.cnf",
            "-out",
            &crt,
        ],
    )
    .ok();
}

/// [`certdesk_in`] with these environment variables set.
pub fn certdesk_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_certdesk"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CERTDESK_DATA")
        .env_remove("CERTDESK_CA_PASSPHRASE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run::from(output)
}

/// [`tool`] with these environment variables set.
pub fn tool_env(cwd: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by this test (.ci/run installs it): {e}"));
    Run::from(output)
}

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `certdesk ARGS` (a `serve`) in `cwd` with `env` set and `CERTDESK_CA_PASSPHRASE`
/// removed, returned once it says `serving on`; its stderr is drained after that so it
/// never blocks on a full pipe.
pub fn serve_process(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Killed {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_certdesk"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CERTDESK_CA_PASSPHRASE")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("serve exited before listening").unwrap();
        if line.contains("serving on http") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Killed(child)
}

/// Issues `agentN@example.org` a certificate and key in `agentN.p12` (password file
/// `p12pass`), a key of `key` (`rsa3072`, `p256`, ...).
pub fn issue_agent(ca: &Ca, n: usize, key: &str) {
    let email = format!("agent{n}@example.org");
    let p12 = format!("agent{n}.p12");
    let surname = format!("Number{n}");
    let args = ["--given-name", "Agent", "--surname", &surname, "--key", key, "--password-file", "p12pass"];
    let mut all = vec!["issue", "--email", &email, "--p12", &p12];
    all.extend_from_slice(&args);
    ca.run(&all).ok();
}

/// Makes `agentN@example.org` an officer with a certificate: a key recovery agent to be
/// (`escrow init --agents`).
pub fn add_agent(ca: &Ca, n: usize, key: &str) {
    ca.run(&["user", "add", "--email", &format!("agent{n}@example.org"), "--role", "officer"]).ok();
    issue_agent(ca, n, key);
}
