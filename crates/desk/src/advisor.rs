//! The client advisor: which .p12 format and key type every mail client a person uses
//! can import, and short install steps for each client (import, use it for signing and
//! encryption, keep the old certificate for old mail). The portal's download form, the
//! certificate-ready mail, the install guide page and `certdesk enroll`/`issue
//! --client` all take their advice from here.
//!
//! The rule, from what the clients read (and what our interop tests show with the tools
//! that stand for them: NSS `pk12util` for Thunderbird, `gpgsm` for Kleopatra/KMail,
//! Java `keytool` for Android's key store, OpenSSL for the rest):
//! - **format**: `compat` (3DES, SHA-1 MAC) as soon as one client cannot read AES-256
//!   with PBKDF2: Apple Mail before macOS 14 and iOS before 17 (their PKCS#12 import
//!   knows only the legacy algorithms), Outlook on Windows before Windows 10 1709 (and
//!   Server 2016 and older), GnuPG 2.2 (Kleopatra/KMail on older distributions), Android (the system
//!   key store of older releases), and any client we do not know; `modern` otherwise.
//! - **key**: RSA 3072, the form's default. Every client listed signs and decrypts with
//!   RSA; ECDH decryption of S/MIME mail (what an ECDSA certificate's holder needs to
//!   read mail encrypted to them) is missing from several of them, so the advisor never
//!   recommends P-256, which stays a choice for people who know their clients.
//! - **no client named**: the modern format, as for a current client (the form's
//!   default before the advisor existed); `other` is the way to say "unknown".

use certdesk_core::mail_settings::Lang;
use certdesk_pki::key::KeyAlgorithm;
use certdesk_pki::pkcs12::Format;

/// A mail client a person may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MailClient {
    /// Mozilla Thunderbird (any system).
    Thunderbird,
    /// Outlook on Windows 10 (version 1709 or newer) or 11.
    Outlook,
    /// Outlook on older Windows (10 before 1709, 8.1, 7, Server 2016 and older).
    OutlookOldWindows,
    /// Apple Mail on macOS 14 (Sonoma) or newer.
    AppleMail,
    /// Apple Mail on macOS 13 (Ventura) or older.
    AppleMailOld,
    /// iPhone or iPad with iOS/iPadOS 17 or newer.
    Ios,
    /// iPhone or iPad with iOS/iPadOS 16 or older.
    IosOld,
    /// Android (system key store, e.g. with FairEmail or Nine).
    Android,
    /// KMail or Kleopatra with GnuPG 2.4 or newer.
    Kleopatra,
    /// KMail or Kleopatra with GnuPG 2.2.
    KleopatraOld,
    /// Another client.
    Other,
}

impl MailClient {
    /// Every client, in the order the form lists them.
    pub const ALL: [MailClient; 11] = [
        MailClient::Thunderbird,
        MailClient::Outlook,
        MailClient::OutlookOldWindows,
        MailClient::AppleMail,
        MailClient::AppleMailOld,
        MailClient::Ios,
        MailClient::IosOld,
        MailClient::Android,
        MailClient::Kleopatra,
        MailClient::KleopatraOld,
        MailClient::Other,
    ];

    /// The name in forms, URLs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MailClient::Thunderbird => "thunderbird",
            MailClient::Outlook => "outlook",
            MailClient::OutlookOldWindows => "outlook-old-windows",
            MailClient::AppleMail => "apple-mail",
            MailClient::AppleMailOld => "apple-mail-old",
            MailClient::Ios => "ios",
            MailClient::IosOld => "ios-old",
            MailClient::Android => "android",
            MailClient::Kleopatra => "kleopatra",
            MailClient::KleopatraOld => "kleopatra-old",
            MailClient::Other => "other",
        }
    }

    /// The client of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name.trim())
    }

    /// Whether this client can read only the legacy .p12 algorithms.
    pub fn needs_compat(self) -> bool {
        !matches!(
            self,
            MailClient::Thunderbird
                | MailClient::Outlook
                | MailClient::AppleMail
                | MailClient::Ios
                | MailClient::Kleopatra
        )
    }

    /// The client as people know it.
    pub fn label(self, lang: Lang) -> &'static str {
        let de = lang == Lang::De;
        match self {
            MailClient::Thunderbird => "Thunderbird",
            MailClient::Outlook if de => "Outlook (Windows 11, Windows 10 ab Version 1709)",
            MailClient::Outlook => "Outlook (Windows 11, Windows 10 version 1709 or newer)",
            MailClient::OutlookOldWindows if de => "Outlook (älteres Windows)",
            MailClient::OutlookOldWindows => "Outlook (older Windows)",
            MailClient::AppleMail if de => "Apple Mail (macOS 14 oder neuer)",
            MailClient::AppleMail => "Apple Mail (macOS 14 or newer)",
            MailClient::AppleMailOld if de => "Apple Mail (macOS 13 oder älter)",
            MailClient::AppleMailOld => "Apple Mail (macOS 13 or older)",
            MailClient::Ios if de => "iPhone/iPad (iOS 17 oder neuer)",
            MailClient::Ios => "iPhone/iPad (iOS 17 or newer)",
            MailClient::IosOld if de => "iPhone/iPad (iOS 16 oder älter)",
            MailClient::IosOld => "iPhone/iPad (iOS 16 or older)",
            MailClient::Android => "Android",
            MailClient::Kleopatra if de => "KMail/Kleopatra (GnuPG 2.4 oder neuer)",
            MailClient::Kleopatra => "KMail/Kleopatra (GnuPG 2.4 or newer)",
            MailClient::KleopatraOld => "KMail/Kleopatra (GnuPG 2.2)",
            MailClient::Other if de => "ein anderes Programm",
            MailClient::Other => "another client",
        }
    }

    /// The install steps: import the .p12, use it for signing and encryption, keep the
    /// old certificate for old mail.
    pub fn steps(self, lang: Lang) -> [&'static str; 3] {
        match (self, lang) {
            (MailClient::Thunderbird, Lang::De) => [
                "Einstellungen → Datenschutz & Sicherheit → Zertifikate verwalten → Ihre Zertifikate → \
                 Importieren: die .p12-Datei wählen und ihr Passwort eingeben.",
                "Konten-Einstellungen → Ihr Konto → Ende-zu-Ende-Verschlüsselung → S/MIME: das neue \
                 Zertifikat als persönliches Zertifikat zum Unterschreiben und zum Verschlüsseln auswählen.",
                "Das alte Zertifikat unter „Ihre Zertifikate“ nicht löschen: Thunderbird braucht es, um \
                 alte verschlüsselte Nachrichten zu öffnen.",
            ],
            (MailClient::Thunderbird, _) => [
                "Settings → Privacy & Security → Manage Certificates → Your Certificates → Import: choose \
                 the .p12 file and enter its password.",
                "Account Settings → your account → End-To-End Encryption → S/MIME: select the new \
                 certificate as personal certificate for digital signing and for encryption.",
                "Do not delete the old certificate from Your Certificates: Thunderbird needs it to open \
                 old encrypted messages.",
            ],
            (MailClient::Outlook | MailClient::OutlookOldWindows, Lang::De) => [
                "Die .p12-Datei doppelklicken: Der Zertifikatimport-Assistent legt sie für den aktuellen \
                 Benutzer ab; das Passwort eingeben.",
                "Outlook: Datei → Optionen → Trust Center → Einstellungen für das Trust Center → \
                 E-Mail-Sicherheit → Einstellungen: das neue Zertifikat zum Signieren und zum \
                 Verschlüsseln wählen (SHA256, AES 256 Bit).",
                "Das alte Zertifikat im Windows-Zertifikatspeicher (certmgr.msc → Eigene Zertifikate) \
                 lassen: Outlook öffnet damit alte verschlüsselte Nachrichten.",
            ],
            (MailClient::Outlook | MailClient::OutlookOldWindows, _) => [
                "Double-click the .p12 file: the Certificate Import Wizard stores it for the current user; \
                 enter its password.",
                "Outlook: File → Options → Trust Center → Trust Center Settings → Email Security → \
                 Settings: choose the new certificate for signing and for encryption (SHA256, AES 256-bit).",
                "Leave the old certificate in the Windows certificate store (certmgr.msc → Personal): \
                 Outlook opens old encrypted messages with it.",
            ],
            (MailClient::AppleMail | MailClient::AppleMailOld, Lang::De) => [
                "Die .p12-Datei doppelklicken: Die Schlüsselbundverwaltung legt sie nach Eingabe des \
                 Passworts im Schlüsselbund „Anmeldung“ ab.",
                "Mail wählt das Zertifikat für Ihre Adresse selbst: In einer neuen Nachricht erscheinen \
                 die Symbole zum Signieren und Verschlüsseln.",
                "Das alte Zertifikat in der Schlüsselbundverwaltung (Meine Zertifikate) behalten: Mail \
                 braucht es für alte verschlüsselte Nachrichten.",
            ],
            (MailClient::AppleMail | MailClient::AppleMailOld, _) => [
                "Double-click the .p12 file: Keychain Access adds it to the login keychain after you \
                 enter its password.",
                "Mail picks the certificate for your address by itself: a new message shows the sign \
                 and encrypt buttons.",
                "Keep the old certificate in Keychain Access (My Certificates): Mail needs it for old \
                 encrypted messages.",
            ],
            (MailClient::Ios | MailClient::IosOld, Lang::De) => [
                "Die .p12-Datei auf sicherem Weg aufs Gerät bringen (AirDrop oder die App Dateien) und \
                 antippen; Einstellungen → Profil geladen → Installieren, Gerätecode und Passwort eingeben.",
                "Einstellungen → Mail → Accounts → Ihr Account → Account → Erweitert → S/MIME einschalten; \
                 Signieren und Standardmäßig verschlüsseln: das neue Zertifikat wählen.",
                "Das Profil mit dem alten Zertifikat installiert lassen: Es öffnet alte verschlüsselte \
                 Nachrichten.",
            ],
            (MailClient::Ios | MailClient::IosOld, _) => [
                "Bring the .p12 file to the device a safe way (AirDrop or the Files app) and tap it; \
                 Settings → Profile Downloaded → Install, then enter the device passcode and its password.",
                "Settings → Mail → Accounts → your account → Account → Advanced → turn on S/MIME; for Sign \
                 and Encrypt by Default choose the new certificate.",
                "Leave the profile with the old certificate installed: it opens old encrypted messages.",
            ],
            (MailClient::Android, Lang::De) => [
                "Die .p12-Datei aufs Gerät kopieren; Einstellungen → Sicherheit → Verschlüsselung & \
                 Anmeldedaten → Zertifikat installieren → Nutzerzertifikat für VPN und Apps, Passwort \
                 eingeben.",
                "In Ihrer Mail-App mit S/MIME (z. B. FairEmail, Nine) das Zertifikat in den \
                 Kontoeinstellungen zum Signieren und Verschlüsseln wählen.",
                "Das alte Zertifikat installiert lassen: Die App öffnet damit alte verschlüsselte \
                 Nachrichten.",
            ],
            (MailClient::Android, _) => [
                "Copy the .p12 file to the device; Settings → Security → Encryption & credentials → \
                 Install a certificate → VPN & app user certificate, and enter its password.",
                "In your mail app with S/MIME (e.g. FairEmail, Nine) choose the certificate for signing \
                 and encryption in the account's settings.",
                "Leave the old certificate installed: the app opens old encrypted messages with it.",
            ],
            (MailClient::Kleopatra | MailClient::KleopatraOld, Lang::De) => [
                "Kleopatra → Datei → Importieren: die .p12-Datei wählen und ihr Passwort eingeben (oder \
                 gpgsm --import zertifikat.p12).",
                "KMail → Einstellungen → KMail einrichten → Identitäten → Bearbeiten → Kryptographie: das \
                 neue Zertifikat als S/MIME-Signatur- und -Verschlüsselungszertifikat wählen.",
                "Das alte Zertifikat in Kleopatra behalten: gpgsm braucht seinen Schlüssel für alte \
                 verschlüsselte Nachrichten.",
            ],
            (MailClient::Kleopatra | MailClient::KleopatraOld, _) => [
                "Kleopatra → File → Import: choose the .p12 file and enter its password (or gpgsm \
                 --import certificate.p12).",
                "KMail → Settings → Configure KMail → Identities → Modify → Cryptography: choose the new \
                 certificate as S/MIME signing and encryption certificate.",
                "Keep the old certificate in Kleopatra: gpgsm needs its key for old encrypted messages.",
            ],
            (MailClient::Other, Lang::De) => [
                "Die .p12-Datei mit ihrem Passwort in den Zertifikatspeicher des Programms importieren.",
                "Das neue Zertifikat zum Signieren und zum Verschlüsseln wählen.",
                "Das alte Zertifikat behalten: Es wird für alte verschlüsselte Nachrichten gebraucht.",
            ],
            (MailClient::Other, _) => [
                "Import the .p12 file with its password into the client's certificate store.",
                "Choose the new certificate for signing and for encryption.",
                "Keep the old certificate: it is needed for old encrypted messages.",
            ],
        }
    }
}

/// What the advisor chose for a set of clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advice {
    /// The .p12 format every client can import.
    pub format: Format,
    /// The key type every client can use for signing and decryption.
    pub key: KeyAlgorithm,
    /// The clients that need the compatible format (empty: `modern`).
    pub compat_for: Vec<MailClient>,
}

/// The format and key type for a person who uses `clients` (none named: the modern
/// format, as for a current client).
pub fn advise(clients: &[MailClient]) -> Advice {
    let mut compat_for: Vec<MailClient> = clients.iter().copied().filter(|c| c.needs_compat()).collect();
    compat_for.sort();
    compat_for.dedup();
    let format = if compat_for.is_empty() { Format::Modern } else { Format::Compat };
    Advice { format, key: KeyAlgorithm::Rsa3072, compat_for }
}

/// Clients from their names (a form's or the command line's); an unknown name is an
/// error that names it.
pub fn parse_clients<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<MailClient>, String> {
    let mut clients = Vec::new();
    for name in names {
        let client = MailClient::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = MailClient::ALL.iter().map(|c| c.name()).collect();
            format!("unknown mail client {name:?}; known: {}", known.join(", "))
        })?;
        if !clients.contains(&client) {
            clients.push(client);
        }
    }
    Ok(clients)
}

/// The install steps of `clients` as plain text (mail, command line): each client's
/// name, then its numbered steps.
pub fn install_text(clients: &[MailClient], lang: Lang) -> String {
    let mut out = String::new();
    for client in clients {
        out.push_str(client.label(lang));
        out.push_str(":\n");
        for (i, step) in client.steps(lang).iter().enumerate() {
            out.push_str(&format!("  {}. {step}\n", i + 1));
        }
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn one_old_client_makes_the_compat_format_and_the_key_is_always_rsa() {
        assert_eq!(advise(&[]).format, Format::Modern);
        let current = [MailClient::Thunderbird, MailClient::Outlook, MailClient::AppleMail, MailClient::Ios];
        assert_eq!(advise(&current), Advice { format: Format::Modern, key: KeyAlgorithm::Rsa3072, compat_for: vec![] });
        for old in [
            MailClient::OutlookOldWindows,
            MailClient::AppleMailOld,
            MailClient::IosOld,
            MailClient::Android,
            MailClient::KleopatraOld,
            MailClient::Other,
        ] {
            let mut clients = current.to_vec();
            clients.push(old);
            let advice = advise(&clients);
            assert_eq!((advice.format, advice.compat_for), (Format::Compat, vec![old]), "{old:?}");
        }
        // Every combination: compat exactly when one of the legacy-only clients (listed
        // here, not taken from the code under test) is in it; always RSA.
        const LEGACY_ONLY: [&str; 6] =
            ["outlook-old-windows", "apple-mail-old", "ios-old", "android", "kleopatra-old", "other"];
        for mask in 0u32..(1 << MailClient::ALL.len()) {
            let clients: Vec<MailClient> =
                MailClient::ALL.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, c)| *c).collect();
            let advice = advise(&clients);
            let legacy = clients.iter().any(|c| LEGACY_ONLY.contains(&c.name()));
            assert_eq!(advice.format == Format::Compat, legacy, "{clients:?}");
            assert_eq!(advice.key, KeyAlgorithm::Rsa3072);
        }
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_named() {
        for client in MailClient::ALL {
            assert_eq!(MailClient::from_name(client.name()), Some(client));
            for lang in [Lang::En, Lang::De] {
                assert!(!client.label(lang).is_empty());
                assert!(client.steps(lang).iter().all(|s| s.ends_with('.')));
            }
        }
        assert_eq!(parse_clients(["outlook", "outlook", "ios"]).unwrap(), vec![MailClient::Outlook, MailClient::Ios]);
        let err = parse_clients(["outlook", "eudora"]).unwrap_err();
        assert!(err.contains("\"eudora\"") && err.contains("thunderbird"), "{err}");
    }

    #[test]
    fn install_text_lists_each_client_with_numbered_steps_in_its_language() {
        let en = install_text(&[MailClient::Thunderbird, MailClient::Android], Lang::En);
        assert!(en.starts_with("Thunderbird:\n  1. Settings"), "{en}");
        assert!(en.contains("Android:\n  1. Copy") && en.contains("  3. Leave the old certificate"), "{en}");
        let de = install_text(&[MailClient::KleopatraOld], Lang::De);
        assert!(de.starts_with("KMail/Kleopatra (GnuPG 2.2):\n  1. Kleopatra → Datei"), "{de}");
    }
}
