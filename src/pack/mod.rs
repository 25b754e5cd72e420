//! The evidence pack of one session (`veriff-archiver report`): a folder, readable by its
//! owner only, holding a self-contained page of the evidence (`report.html`, laid out by
//! `templates/report.html` from [`page::Page`]) and the audit beside it (`verify.json`).
//!
//! Writing never replaces anything: the folder must be new or empty, and each file is
//! created new (0600) in a folder made 0700.

mod export;
mod page;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use export::{ExportPage, ExportRow};
pub use page::{CONTENT_SECURITY_POLICY, Page, inline_mime};

/// Largest image inlined into the page.
pub const MAX_INLINE_IMAGE_BYTES: u64 = 32 * 1024 * 1024;

/// Why a pack cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The folder exists and holds something.
    #[error(
        "{}: the folder is not empty; refusing to write an evidence pack into it (give a new \
         or empty folder)",
        .0.display()
    )]
    NotEmpty(PathBuf),
    /// The path exists and is a file.
    #[error("{}: exists and is not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// The file system refused.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `dir` is new, or an empty folder: call it before any work, so that a bad
/// destination costs nothing.
pub fn check_out_dir(dir: &Path) -> Result<(), PackError> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(dir)(e)),
        Ok(meta) if !meta.is_dir() => Err(PackError::NotAFolder(dir.to_path_buf())),
        Ok(_) => match fs::read_dir(dir).map_err(io(dir))?.next() {
            Some(_) => Err(PackError::NotEmpty(dir.to_path_buf())),
            None => Ok(()),
        },
    }
}

/// Creates the folder (0700) and the files (0600, never over an existing file, each
/// synced to disk); returns the folder's absolute path.
pub fn write(dir: &Path, files: &[(&str, &[u8])]) -> Result<PathBuf, PackError> {
    check_out_dir(dir)?;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    for (name, bytes) in files {
        add_file(dir, name, bytes)?;
    }
    Ok(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// Adds one file (0600, never over an existing one) to a pack's folder made by [`write`].
pub fn add_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PackError> {
    let path = dir.join(name);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    // Exactly 0600, whatever the umask took away at creation.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io(&path))?;
    file.write_all(bytes).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_pack_is_written_owner_only_into_a_new_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pack/inner");
        check_out_dir(&dir).unwrap();
        let written = write(&dir, &[("a.json", b"{}"), ("b.html", b"<p>")]).unwrap();
        assert!(written.is_absolute());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("a.json")), 0o600);
        assert_eq!(fs::read(dir.join("b.html")).unwrap(), b"<p>");
    }

    #[test]
    fn an_empty_folder_is_used_and_anything_else_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        write(&empty, &[("a", b"1")]).unwrap();

        let again = write(&empty, &[("a", b"2")]).unwrap_err();
        assert!(matches!(again, PackError::NotEmpty(_)), "{again}");
        assert!(again.to_string().contains("the folder is not empty"));
        assert_eq!(fs::read(empty.join("a")).unwrap(), b"1", "nothing replaced");

        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        let refused = check_out_dir(&file).unwrap_err();
        assert!(refused.to_string().ends_with("exists and is not a folder"));
    }
}
