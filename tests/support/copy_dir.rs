//! Copy a directory tree (the example repository into a test's tempdir).
//! Shared by several test binaries through `#[path]`.

use std::path::Path;

/// Copy `from` into `to` recursively, creating `to`; panics on any error.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
