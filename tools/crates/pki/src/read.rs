//! Reading one small file, and why loading a certificate, key, manifest or directory
//! fails: shared by [`crate::load`] and [`crate::manifest`], which need each other's
//! results but not each other.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Certificates and keys are small; anything larger is refused before it is parsed.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// How deep `verify` descends into directories.
pub(crate) const MAX_DEPTH: usize = 32;

/// Why a certificate, key, manifest or directory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be opened or read (missing, unreadable, a symlink loop, …).
    #[error("{}: cannot read ({source}); check the path and its permissions", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is far larger than any certificate or key.
    #[error("{}: too large to be a certificate or key (got {size} bytes, expected at most {MAX_FILE_BYTES})", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    /// A directory was given where a file is needed.
    #[error("{}: is a directory (expected a file)", path.display())]
    IsDirectory { path: PathBuf },
    /// The PEM framing is broken (missing END line, bad base64, …).
    #[error("{}: malformed PEM ({detail}); re-export the file", path.display())]
    BadPem { path: PathBuf, detail: String },
    /// No certificate in the file.
    #[error("{}: no certificate found (got {found}, expected a PEM CERTIFICATE block or one DER certificate)", path.display())]
    NoCertificate { path: PathBuf, found: String },
    /// A certificate's DER does not parse.
    #[error("{}: certificate {index} is not valid X.509 DER ({detail})", path.display())]
    BadCertificate {
        path: PathBuf,
        index: usize,
        detail: String,
    },
    /// No private key in the file, or a key that cannot be decoded.
    #[error("{}: not a usable private key (got {found}, expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)", path.display())]
    BadKey { path: PathBuf, found: String },
    /// A directory that holds no certificate at all.
    #[error("{}: no certificates found (expected *.pem, *.crt, *.cer or *.der files, or a manifest.json)", path.display())]
    EmptyDirectory { path: PathBuf },
    /// A directory symlink that leads back to a directory already walked.
    #[error("{}: symbolic link loop (leads back to {}); remove the link", path.display(), target.display())]
    SymlinkLoop { path: PathBuf, target: PathBuf },
    /// Directories nested deeper than anything rampart writes.
    #[error("{}: directories nested more than {MAX_DEPTH} levels deep; give a shallower path", path.display())]
    TooDeep { path: PathBuf },
    /// A manifest that is not the one `certtool issue` writes.
    #[error("{}: not a certtool manifest ({detail})", path.display())]
    Manifest { path: PathBuf, detail: String },
}

impl LoadError {
    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Read { path, .. }
            | LoadError::TooLarge { path, .. }
            | LoadError::IsDirectory { path }
            | LoadError::BadPem { path, .. }
            | LoadError::NoCertificate { path, .. }
            | LoadError::BadCertificate { path, .. }
            | LoadError::BadKey { path, .. }
            | LoadError::EmptyDirectory { path }
            | LoadError::SymlinkLoop { path, .. }
            | LoadError::TooDeep { path }
            | LoadError::Manifest { path, .. } => path,
        }
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`].
pub fn read_small(path: &Path) -> Result<Vec<u8>, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(LoadError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_file() {
        // A FIFO or device would block or never end.
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` guards against a file that grows between stat and read.
    fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}
