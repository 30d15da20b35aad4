//! Keeping the mirror's open files and packs bounded.
//!
//! Every fetch writes one new pack file, and libgit2 keeps each pack it has
//! read open (a descriptor and its mapped windows) for as long as the
//! `Repository` lives: `GIT_OPT_SET_MWINDOW_FILE_LIMIT` defaults to
//! unlimited. A controller that fetched for days ran out of descriptors
//! (`Too many open files`) after a few hundred commits under a lowered
//! limit. So after each fetch the mirror is reopened (the old handle's packs
//! close with it), and once more than [`MAX_PACKS`] packs have piled up they
//! are folded into one, keeping every object (old commits included: they
//! serve "the last good commit" across force-pushes). That is `git gc`'s
//! `gc.autoPackLimit` rule (50 there), which libgit2 does not run itself.

use std::path::Path;

use git2::Repository;

/// Packs allowed in the mirror before they are folded into one.
pub const MAX_PACKS: usize = 8;

/// The `*.pack` files under `objects/pack`.
pub fn pack_files(repo_path: &Path) -> Vec<std::path::PathBuf> {
    let mut packs: Vec<_> = std::fs::read_dir(repo_path.join("objects/pack"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    packs.sort();
    packs
}

/// Fold every object of `repo` into one new pack and remove the old packs
/// and loose objects' packs. Returns the number of objects written.
pub fn repack(repo: &Repository) -> Result<usize, git2::Error> {
    let path = repo.path().to_path_buf();
    let old = pack_files(&path);
    let odb = repo.odb()?;
    let mut ids = Vec::new();
    odb.foreach(|id| {
        ids.push(*id);
        true
    })?;
    let mut pb = repo.packbuilder()?;
    for id in &ids {
        pb.insert_object(*id, None)?;
    }
    let dir = path.join("objects/pack");
    pb.write(&dir, 0o444)?;
    let written = pb.written();
    let name = pb.name()?.map(str::to_string).unwrap_or_default();
    drop(pb);
    drop(odb);
    for p in old {
        if p.file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.ends_with(&name))
        {
            continue;
        }
        // `.idx` and the other companions of the pack, then the pack itself.
        for ext in ["idx", "rev", "keep", "promisor", "mtimes", "pack"] {
            let _ = std::fs::remove_file(p.with_extension(ext));
        }
    }
    Ok(written)
}

/// After a fetch: fold the packs when there are too many, and reopen the
/// repository so that nothing the old handle opened stays open.
pub fn after_fetch(repo: &mut Repository) -> Result<(), git2::Error> {
    let path = repo.path().to_path_buf();
    if pack_files(&path).len() > MAX_PACKS {
        // A failed fold loses nothing (old packs go only once the new one
        // is written); the next fetch tries again.
        match repack(repo) {
            Ok(n) => tracing::debug!(objects = n, "mirror packs folded into one"),
            Err(e) => tracing::warn!(error = %e, "cannot fold the mirror's packs"),
        }
    }
    *repo = Repository::open_bare(&path)?;
    Ok(())
}
