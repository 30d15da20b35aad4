//! The `keelson` binary: parse arguments, hand off to `keelson::cli`.

use std::ffi::{c_int, c_long};

/// mimalloc instead of glibc's malloc: a no-op reconcile spent a third of
/// its samples in malloc and free (thousands of small JSON maps and
/// strings). See the README's "Dependencies and why" and
/// `keelson::controller::memory` for what it means for `keelson run`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's option API (include/mimalloc.h: `void mi_option_set(mi_option_t,
// long)`, `mi_option_t` a C enum). The static library the allocator above
// links provides it; libmimalloc-sys declares it only behind a feature that
// adds a dependency.
unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (include/mimalloc.h
/// of the v3 sources libmimalloc-sys builds): milliseconds before freed
/// pages go back to the kernel; 0 is at once. libmimalloc-sys names no
/// constant for it; the test below pins the index by its default.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Give freed pages back at once, unless `MIMALLOC_PURGE_DELAY` is set.
/// mimalloc's default (1 s) kept the pages an environment freed resident
/// while the next was planned: a no-op reconcile at 3,000 apps × 3 peaked
/// at 124-126 MiB RSS, 100-104 MiB with no delay, at the same CPU; the
/// controller's soak (`tests/ha/soak.rs`, 75 environments) held 95-108 MB,
/// 81-85 MB with no delay.
fn purge_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an option's value; 0 is a valid
        // purge delay ("0 for immediate purging").
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> std::process::ExitCode {
    purge_at_once();
    keelson::cli::main()
}

#[cfg(test)]
mod tests {
    use super::*;

    // include/mimalloc.h: `long mi_option_get(mi_option_t)`.
    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
    }

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // The index is purge_delay's if it holds purge_delay's default
        // (1,000 ms in mimalloc v3's options.c; no neighbour defaults to it),
        // unless the environment set it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: mi_option_get only reads an option's value.
            assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
        }
        purge_at_once();
        // SAFETY: as above.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 0);
    }
}
