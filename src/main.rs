//! The `keelson` binary: parse arguments, hand off to `keelson::cli`.

/// mimalloc instead of glibc's malloc: a no-op reconcile spent a third of
/// its samples in malloc and free (thousands of small JSON maps and
/// strings). See the README's "Dependencies and why" and
/// `keelson::controller::memory` for what it means for `keelson run`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keelson::cli::main()
}
