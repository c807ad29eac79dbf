#![doc = include_str!("../README.md")]

mod attribute;
pub mod ber;
pub mod crl;
pub mod csr;
pub mod issuance;
pub mod key;
pub mod lint;
pub mod ocsp;
pub mod oid;
pub mod password;
pub mod path;
pub mod pbes2;
pub mod pem;
pub mod pkcs12;
pub mod profile;
mod request;
pub mod subject;
mod x509;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    /// How a top-level module names the crate root, and how a submodule of one does.
    const TOP: &[&str] = &["crate::", "super::"];
    const NESTED: &[&str] = &["crate::", "super::super::"];
    const ABOVE_LEAVES: &[&str] = &["subject", "request", "lint", "issuance"];

    /// The module layering, lowest first; a module never names one to its right:
    /// leaves (`attribute`, `x509`) → `subject` → `request` → `lint` → `issuance`.
    /// Naming a higher module would bring back an import cycle. Each row: the file, its
    /// text, how it names the crate root, and the modules it must not name.
    const LAYERS: [(&str, &str, &[&str], &[&str]); 6] = [
        ("attribute.rs", include_str!("attribute.rs"), TOP, ABOVE_LEAVES),
        ("x509.rs", include_str!("x509.rs"), TOP, ABOVE_LEAVES),
        ("subject.rs", include_str!("subject.rs"), TOP, &["request", "lint", "issuance"]),
        ("request.rs", include_str!("request.rs"), TOP, &["lint", "issuance"]),
        ("lint.rs", include_str!("lint.rs"), TOP, &["issuance"]),
        ("lint/internet.rs", include_str!("lint/internet.rs"), NESTED, &["issuance"]),
    ];

    /// The crate modules `source` names in code (comment lines are skipped): the first
    /// segment after each of `roots`, or of each item of a `{...}` group after it.
    fn named_modules(source: &str, roots: &[&str]) -> Vec<String> {
        let code = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let mut names: Vec<String> = Vec::new();
        for root in roots {
            for (at, _) in code.match_indices(root) {
                let rest = &code[at + root.len()..];
                let Some(group) = rest.trim_start().strip_prefix('{') else {
                    names.push(ident(rest));
                    continue;
                };
                let (mut depth, mut item) = (0, String::new());
                for c in group.chars() {
                    match c {
                        '}' if depth == 0 => break,
                        ',' if depth == 0 => {
                            names.push(ident(&item));
                            item.clear();
                            continue;
                        }
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    item.push(c);
                }
                names.push(ident(&item));
            }
        }
        names.retain(|n| !n.is_empty());
        names
    }

    #[test]
    fn lower_modules_do_not_name_higher_ones() {
        let mut violations = Vec::new();
        for (file, source, roots, forbidden) in LAYERS {
            for name in named_modules(source, roots) {
                if forbidden.contains(&name.as_str()) {
                    violations.push(format!("src/{file} names crate::{name}"));
                }
            }
        }
        assert!(violations.is_empty(), "module layering broken (an import cycle): {violations:#?}");
    }

    #[test]
    fn every_lint_submodule_is_checked() {
        for (file, source, ..) in LAYERS.iter().filter(|l| l.0 == "lint.rs" || l.0.starts_with("lint/")) {
            let dir = file.trim_end_matches(".rs");
            for line in source.lines() {
                let Some(decl) = line.trim().strip_suffix(';') else { continue };
                let mut words = decl.split_whitespace().rev();
                let (Some(name), Some("mod")) = (words.next(), words.next()) else { continue };
                let path = format!("{dir}/{name}.rs");
                assert!(LAYERS.iter().any(|l| l.0 == path), "add src/{path} to LAYERS");
            }
        }
    }

    #[test]
    fn named_modules_sees_paths_groups_and_super() {
        let source = "use crate::{\n    issuance::{prepare, IssuerInfo},\n    oid,\n};\n\
                      // crate::lint is only mentioned here\n\
                      let x = crate::subject::rfc4514(n);\nuse super::request::SubscriberRequest;\n";
        assert_eq!(named_modules(source, TOP), ["issuance", "oid", "subject", "request"]);
        assert_eq!(named_modules("use super::super::issuance::x;\nuse super::HttpUri;", NESTED), ["issuance"]);
    }
}
