//! Release builds of the `certdesk` binary on x86_64 Linux (where rustc links with lld)
//! place the functions the `smime` commands run next to each other, in the order of
//! `symbol-order.txt` (made by `scripts/gen-symbol-order`). The kernel maps code in
//! 64 KiB windows around each page fault, so packing these functions roughly halves
//! the commands' resident memory; the behaviour of the code is unchanged.

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=CERTDESK_NO_SYMBOL_ORDER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = std::path::Path::new(&manifest_dir).join("symbol-order.txt");
    if target == "x86_64-unknown-linux-gnu"
        && profile == "release"
        && order.is_file()
        && std::env::var_os("CERTDESK_NO_SYMBOL_ORDER").is_none()
    {
        println!("cargo:rustc-link-arg-bin=certdesk=-Wl,--symbol-ordering-file={}", order.display());
        // Names the binary no longer has (after code changes) are skipped quietly.
        println!("cargo:rustc-link-arg-bin=certdesk=-Wl,--no-warn-symbol-ordering");
    }
}
