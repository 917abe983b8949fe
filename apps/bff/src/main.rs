//! `portico`: see `portico help`.

fn main() -> std::process::ExitCode {
    portico_bff::cli::main()
}
