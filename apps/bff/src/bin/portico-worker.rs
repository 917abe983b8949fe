//! `portico-worker`: the background worker on its own, the same as `portico worker`.

fn main() -> std::process::ExitCode {
    portico_bff::cli::main_with(&["worker".to_owned()])
}
