//! Server-rendered HTML: escaping, the page layout (usable without JavaScript:
//! labelled fields, a skip link, visible focus, high contrast), and the language
//! choice (English and German).

use std::fmt::Write;

use certdesk_desk::mail::Lang;

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Picks the English or German text.
pub fn t(lang: Lang, en: &'static str, de: &'static str) -> &'static str {
    match lang {
        Lang::De => de,
        _ => en,
    }
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:0 1rem 3rem;color:#111;background:#fff;line-height:1.5}
a{color:#0645ad}a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #b35c00;outline-offset:2px}
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:baseline;border-bottom:2px solid #222;padding:.5rem 0;margin-bottom:1rem}
header nav a{margin-right:1rem}.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
label{display:block;font-weight:600;margin-top:.8rem}input,select,textarea{font:inherit;padding:.3rem;border:2px solid #444;max-width:100%}
textarea{width:100%;min-height:8rem;font-family:monospace}button{font:inherit;margin-top:.8rem;padding:.4rem 1rem;border:2px solid #0b3d91;background:#0b3d91;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b3d91}.error{border-left:6px solid #b00020;background:#fde8ea;padding:.5rem 1rem}
.ok{border-left:6px solid #1b6e20;background:#e6f4e7;padding:.5rem 1rem}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left;vertical-align:top}code{word-break:break-all}
fieldset{border:2px solid #999;margin-top:1rem}.inline{display:inline}
";

/// A whole page. `user` is the signed-in address (shown with a sign-out button and
/// the role's links); `body` is trusted HTML built with [`esc`].
pub struct Page<'a> {
    /// Language.
    pub lang: Lang,
    /// Organisation name.
    pub organization: &'a str,
    /// Title (plain text).
    pub title: &'a str,
    /// Signed-in user, role name and CSRF token.
    pub user: Option<(&'a str, &'a str, &'a str)>,
    /// The content.
    pub body: String,
}

impl Page<'_> {
    /// Renders the page.
    pub fn render(&self) -> String {
        let lang = self.lang;
        let mut nav = String::new();
        let _ = write!(nav, r#"<a href="/">{}</a>"#, t(lang, "Home", "Start"));
        let _ = write!(nav, r#"<a href="/directory">{}</a>"#, t(lang, "Directory", "Verzeichnis"));
        if let Some((_, role, _)) = self.user {
            if role == "officer" || role == "admin" {
                let _ = write!(nav, r#"<a href="/officer">{}</a>"#, t(lang, "Service desk", "Servicetheke"));
            }
            if role == "admin" {
                let _ = write!(nav, r#"<a href="/admin">{}</a>"#, t(lang, "Administration", "Verwaltung"));
            }
        }
        let other = match lang {
            Lang::De => r#"<a href="?lang=en" hreflang="en" lang="en">English</a>"#,
            _ => r#"<a href="?lang=de" hreflang="de" lang="de">Deutsch</a>"#,
        };
        let account = match self.user {
            Some((email, _, csrf)) => format!(
                r#"<span>{}</span> <form class="inline" method="post" action="/signout"><input type="hidden" name="csrf" value="{}"><button class="secondary" type="submit">{}</button></form>"#,
                esc(email),
                esc(csrf),
                t(lang, "Sign out", "Abmelden")
            ),
            None => String::new(),
        };
        format!(
            r##"<!DOCTYPE html>
<html lang="{tag}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – certdesk</title><style>{STYLE}</style></head>
<body><a class="skip" href="#main">{skip}</a>
<header><strong>certdesk · {org}</strong><nav aria-label="{navlabel}">{nav}</nav>{other} {account}</header>
<main id="main"><h1>{title}</h1>
{body}
</main></body></html>"##,
            tag = lang.tag(),
            title = esc(self.title),
            skip = t(lang, "Skip to content", "Zum Inhalt springen"),
            org = esc(self.organization),
            navlabel = t(lang, "Main", "Hauptmenü"),
            body = self.body,
        )
    }
}

/// A hidden CSRF field.
pub fn csrf_field(token: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(token))
}

/// A `YYYY-MM-DD HH:MM UTC` rendering of Unix seconds.
pub fn when(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

/// A `YYYY-MM-DD` rendering of Unix seconds.
pub fn day(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn pages_declare_their_language_and_escape_the_title() {
        let page = Page { lang: Lang::De, organization: "Uni <X>", title: "A & B", user: None, body: String::new() };
        let html = page.render();
        assert!(html.contains(r#"<html lang="de">"#) && html.contains("A &amp; B") && html.contains("Uni &lt;X&gt;"));
        assert!(html.contains("Zum Inhalt springen"));
    }
}
