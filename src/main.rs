//! The `keelson` binary: parse arguments, hand off to `keelson::cli`.

fn main() -> std::process::ExitCode {
    keelson::cli::main()
}
