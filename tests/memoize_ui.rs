//! Signatures and options `#[memoize]` cannot support are compile errors that say why.

#[test]
fn unsupported_signatures_are_compile_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/memoize/*.rs");
}
