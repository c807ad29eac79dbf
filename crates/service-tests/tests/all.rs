//! Integration tests of the service library: the store conformance suite (SQLite
//! always, PostgreSQL when `CERTDESK_TEST_POSTGRES_URL` is set) and the authority.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

mod all {
    mod authority;
    mod boundaries;
    mod checkpoint;
    mod common;
    mod http;
    mod oidc;
    mod pages;
    mod portal;
    mod recovery;
    mod store;
    mod web_fixture;
}
