//! Extracting `.tgz` / `.tar.gz` / `.tar` / `.zip` archives into a fresh folder, safely: entries
//! with absolute paths or `..`, links that lead outside, and special files (devices, fifos) are
//! refused. Symlinks are made last, after every file is written, so nothing is ever written
//! through a link; then each one is resolved for real and must land inside the folder.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::DataError;

/// The archive formats [`extract`] reads, by file-name suffix.
pub(crate) const SUFFIXES: [&str; 4] = [".tgz", ".tar.gz", ".tar", ".zip"];

/// Extracts `archive` into `into`, an existing empty folder. On error `into` may hold part of
/// the archive (never anything outside it); the caller removes it.
pub(crate) fn extract(archive: &Path, into: &Path) -> Result<(), DataError> {
    let name = archive
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_lowercase();
    let file = File::open(archive).map_err(DataError::io("opening", archive))?;
    let mut ex = Extractor {
        archive,
        root: into,
        symlinks: Vec::new(),
    };
    if name.ends_with(".zip") {
        ex.zip(file)?;
    } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
        ex.tar(flate2::read::GzDecoder::new(BufReader::new(file)))?;
    } else if name.ends_with(".tar") {
        ex.tar(BufReader::new(file))?;
    } else {
        return Err(DataError::Other(format!(
            "{}: unknown archive type; expected one of {}",
            archive.display(),
            SUFFIXES.join(", ")
        )));
    }
    ex.make_symlinks()
}

struct Extractor<'a> {
    archive: &'a Path,
    root: &'a Path,
    /// (path in the archive, link target), made at the end.
    symlinks: Vec<(PathBuf, PathBuf)>,
}

impl Extractor<'_> {
    fn tar(&mut self, reader: impl Read) -> Result<(), DataError> {
        use tar::EntryType as T;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(|e| self.damaged(e))? {
            let mut entry = entry.map_err(|e| self.damaged(e))?;
            let raw = entry.path().map_err(|e| self.damaged(e))?.into_owned();
            let kind = entry.header().entry_type();
            if matches!(kind, T::XGlobalHeader | T::XHeader) {
                continue; // metadata (pax headers), not a file
            }
            let Some(rel) = self.safe_path(&raw)? else {
                continue;
            };
            let link = || -> Result<PathBuf, DataError> {
                let target = entry.link_name().map_err(|e| self.damaged(e))?;
                target.map(|t| t.into_owned()).ok_or_else(|| {
                    self.unsafe_entry(&raw, "is a link without a target".to_string())
                })
            };
            let old_style_dir = kind == T::Regular && entry.path_bytes().ends_with(b"/");
            match kind {
                T::Directory => self.dir(&rel)?,
                _ if old_style_dir => self.dir(&rel)?,
                T::Symlink => {
                    let target = link()?;
                    self.symlink(rel, target)?;
                }
                T::Link => {
                    let target = link()?;
                    self.hard_link(&rel, &target)?;
                }
                T::Regular | T::Continuous => self.file(&rel, &mut entry)?,
                T::Char | T::Block | T::Fifo => {
                    return Err(self.unsafe_entry(&raw, "is a device or fifo".into()))
                }
                other => {
                    let msg = format!("has an unsupported type ({other:?})");
                    return Err(self.unsafe_entry(&raw, msg));
                }
            }
        }
        Ok(())
    }

    fn zip(&mut self, file: File) -> Result<(), DataError> {
        const S_IFMT: u32 = 0o170000;
        const S_IFREG: u32 = 0o100000;
        const S_IFDIR: u32 = 0o040000;
        let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| self.damaged(e))?;
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).map_err(|e| self.damaged(e))?;
            let raw = PathBuf::from(f.name().map_err(|e| self.damaged(e))?.into_owned());
            let Some(rel) = self.safe_path(&raw)? else {
                continue;
            };
            let file_type = f.unix_mode().unwrap_or(0) & S_IFMT;
            if f.is_symlink() {
                let mut target = String::new();
                f.read_to_string(&mut target).map_err(|e| self.damaged(e))?;
                self.symlink(rel, PathBuf::from(target))?;
            } else if f.is_dir() || file_type == S_IFDIR {
                self.dir(&rel)?;
            } else if file_type == 0 || file_type == S_IFREG {
                self.file(&rel, &mut f)?;
            } else {
                return Err(self.unsafe_entry(&raw, "is a device or fifo".into()));
            }
        }
        Ok(())
    }

    /// The entry's path without `.` components; refuses absolute paths and `..`. `None` for
    /// the archive's root itself (`./`).
    fn safe_path(&self, raw: &Path) -> Result<Option<PathBuf>, DataError> {
        let mut rel = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.unsafe_entry(raw, "contains `..`".into()));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.unsafe_entry(raw, "is an absolute path".into()));
                }
            }
        }
        Ok((!rel.as_os_str().is_empty()).then_some(rel))
    }

    fn dir(&self, rel: &Path) -> Result<(), DataError> {
        let path = self.root.join(rel);
        fs::create_dir_all(&path).map_err(DataError::io("creating folder", path))
    }

    fn file(&self, rel: &Path, data: &mut dyn Read) -> Result<(), DataError> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(DataError::io("creating folder", parent))?;
        }
        if path.symlink_metadata().is_ok_and(|m| m.is_file()) {
            // a repeated entry: the later copy wins, as with tar itself; never write through a
            // hard link made earlier
            fs::remove_file(&path).map_err(DataError::io("replacing", &path))?;
        }
        let mut out = File::create(&path).map_err(DataError::io("writing", &path))?;
        io::copy(data, &mut out).map_err(|e| {
            DataError::Other(format!(
                "extracting {} from {}: {e}. The archive may be damaged (delete it, or pass \
                 force_download) or the disk full",
                rel.display(),
                self.archive.display()
            ))
        })?;
        Ok(())
    }

    /// A hard link's target is another path in the archive, extracted before it, and a file.
    fn hard_link(&self, rel: &Path, target: &Path) -> Result<(), DataError> {
        let outside = |_| self.unsafe_entry(rel, format!("is a hard link to {target:?}, outside"));
        let Some(target_rel) = self.safe_path(target).map_err(outside)? else {
            return Err(self.unsafe_entry(rel, "is a hard link to the archive's root".into()));
        };
        let from = self.root.join(&target_rel);
        if !from.symlink_metadata().is_ok_and(|m| m.is_file()) {
            let msg =
                format!("is a hard link to {target:?}, which is not a file extracted before it");
            return Err(self.unsafe_entry(rel, msg));
        }
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(DataError::io("creating folder", parent))?;
        }
        fs::hard_link(&from, &path).map_err(DataError::io("linking", path))
    }

    /// Checks a symlink's target by its path (relative, staying inside) and queues it.
    fn symlink(&mut self, rel: PathBuf, target: PathBuf) -> Result<(), DataError> {
        let outside = || self.unsafe_entry(&rel, format!("is a symlink to {target:?}, outside"));
        let mut depth = rel.components().count() - 1; // the folder the link sits in
        for c in target.components() {
            match c {
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                Component::ParentDir if depth > 0 => depth -= 1,
                _ => return Err(outside()),
            }
        }
        self.symlinks.push((rel, target));
        Ok(())
    }

    /// Makes the queued symlinks, then resolves each through the real folder (which catches
    /// links that escape through other links) and refuses any that leave it or lead nowhere.
    fn make_symlinks(&self) -> Result<(), DataError> {
        let root = fs::canonicalize(self.root).map_err(DataError::io("reading", self.root))?;
        for (rel, target) in &self.symlinks {
            // never place a link inside a folder that is itself a link
            let mut dir = self.root.to_path_buf();
            for c in rel.parent().into_iter().flat_map(Path::components) {
                dir.push(c);
                if dir
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
                {
                    let msg = "lies under another symlink".to_string();
                    return Err(self.unsafe_entry(rel, msg));
                }
            }
            fs::create_dir_all(&dir).map_err(DataError::io("creating folder", &dir))?;
            let path = self.root.join(rel);
            if path.symlink_metadata().is_ok() {
                let msg = "is a symlink over a file or folder of the same name".to_string();
                return Err(self.unsafe_entry(rel, msg));
            }
            make_symlink(target, &path).map_err(DataError::io("making symlink", &path))?;
        }
        for (rel, target) in &self.symlinks {
            let ok = fs::canonicalize(self.root.join(rel)).is_ok_and(|p| p.starts_with(&root));
            if !ok {
                let msg = format!("is a symlink to {target:?}, which leads outside or nowhere");
                return Err(self.unsafe_entry(rel, msg));
            }
        }
        Ok(())
    }

    fn unsafe_entry(&self, entry: &Path, reason: String) -> DataError {
        DataError::UnsafeArchive {
            archive: self.archive.to_path_buf(),
            entry: entry.display().to_string(),
            reason,
        }
    }

    fn damaged(&self, e: impl std::fmt::Display) -> DataError {
        DataError::Other(format!(
            "cannot read the archive {}: {e}. It may be damaged or incomplete: delete it (or pass \
             force_download) and run again",
            self.archive.display()
        ))
    }
}

#[cfg(unix)]
fn make_symlink(target: &Path, path: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn make_symlink(_target: &Path, _path: &Path) -> io::Result<()> {
    Err(io::Error::other(
        "symlinks in archives are only supported on Unix",
    ))
}
