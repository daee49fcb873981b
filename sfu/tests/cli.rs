//! The `sfu` command line: --help, config errors that name the key,
//! --print-config that reads back.

#[test]
fn command_line() {
    service::cli_check::check(env!("CARGO_BIN_EXE_sfu"));
}
