//! Server-rendered HTML with [`maud`]: every spliced value is escaped by construction,
//! and [`PreEscaped`] is used only for the style sheet below. The page layout is usable
//! without JavaScript (labelled fields, a skip link, visible focus, high contrast).

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::texts::Texts;
use certdesk_desk::mail::Lang;

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

/// The signed-in user as the layout shows it.
pub struct User<'a> {
    /// The address.
    pub email: &'a str,
    /// The role's name (`applicant`, `officer`, `admin`).
    pub role: &'a str,
    /// The session's CSRF token (for the sign-out form).
    pub csrf: &'a str,
}

/// A whole page: the layout around `body`.
pub struct Page<'a> {
    /// The texts of the page's language.
    pub texts: &'static Texts,
    /// Organisation name.
    pub organization: &'a str,
    /// Title (plain text).
    pub title: &'a str,
    /// The signed-in user.
    pub user: Option<User<'a>>,
    /// The content.
    pub body: Markup,
}

impl Page<'_> {
    /// Renders the page.
    pub fn render(self) -> String {
        let t = self.texts;
        let role = self.user.as_ref().map(|u| u.role).unwrap_or_default();
        let page = html! {
            (DOCTYPE)
            html lang=(t.lang.tag()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " – certdesk" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    a.skip href="#main" { (t.skip_to_content) }
                    header {
                        strong { "certdesk · " (self.organization) }
                        nav aria-label=(t.nav_label) {
                            a href="/" { (t.nav_home) }
                            a href="/directory" { (t.nav_directory) }
                            @if self.user.is_some() {
                                a href="/recoveries" { (t.nav_recovery) }
                            }
                            @if role == "officer" || role == "admin" {
                                a href="/officer" { (t.nav_officer) }
                            }
                            @if role == "admin" {
                                a href="/admin" { (t.nav_admin) }
                            }
                        }
                        @match t.lang {
                            Lang::De => a href="?lang=en" hreflang="en" lang="en" { "English" },
                            _ => a href="?lang=de" hreflang="de" lang="de" { "Deutsch" },
                        }
                        " "
                        @if let Some(user) = &self.user {
                            span { (user.email) }
                            " "
                            form.inline method="post" action="/signout" {
                                (csrf_field(user.csrf))
                                button.secondary type="submit" { (t.sign_out) }
                            }
                        }
                    }
                    main #main {
                        h1 { (self.title) }
                        (self.body)
                    }
                }
            }
        };
        page.into_string()
    }
}

/// A hidden CSRF field.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// Unix seconds in the organisation's zone, named: `2026-12-07 09:00 CET`.
pub fn when(zone: &certdesk_core::zone::OrgZone, unix: i64) -> String {
    zone.local(unix).map(|l| l.iso_minutes()).unwrap_or_default()
}

/// The organisation's calendar day of Unix seconds: `2026-12-07`.
pub fn day(zone: &certdesk_core::zone::OrgZone, unix: i64) -> String {
    zone.local(unix).map(|l| l.iso_date()).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pages_declare_their_language_and_escape_what_they_show() {
        let page = Page {
            texts: &crate::texts::DE,
            organization: "Uni <X>",
            title: "A & B",
            user: Some(User { email: "x\"@example.org", role: "applicant", csrf: "<t>" }),
            body: html! { p { "<script>" } },
        };
        let html = page.render();
        assert!(html.contains(r#"<html lang="de">"#) && html.contains("A &amp; B") && html.contains("Uni &lt;X&gt;"));
        assert!(html.contains("&lt;script&gt;") && html.contains("x&quot;@example.org") && html.contains("&lt;t&gt;"));
        assert!(html.contains("Zum Inhalt springen"));
    }
}
