//! The keepalived.conf reader: rampart's built-in VRRP speaker runs an operator's unchanged
//! keepalived.conf (`rampart --vrrp keepalived.conf`). It reads the file as keepalived 2.2
//! does, runs the `vrrp_instance` blocks, ignores with a [`Warning`] what rampart replaces
//! (health-check scripts, notifications, e-mail), and refuses with a [`KeepalivedError`]
//! naming the file, line and keyword anything keepalived would reject or that would change
//! VRRP behaviour in a way rampart cannot honour. No I/O beyond reading the file and the files
//! it includes.
//!
//! The path of a file: `lex` splits it into tokens (splicing in `include`d files), `tree`
//! builds the blocks, `config` reads the top level and `global_defs`, `instance` each
//! `vrrp_instance` (with `values` for the values), producing the `model`.

mod config;
mod error;
mod instance;
mod lex;
mod model;
mod tree;
mod values;

use std::path::Path;

pub use error::{KeepalivedError, KeepalivedErrorKind, Warning};
pub use model::{AuthPassword, StartState, VirtualAddress, VrrpConfig, VrrpInstance, VrrpVersion};

use error::{Fault, Files};
use lex::Reader;

/// Reads and validates the keepalived.conf at `path`, and the files it includes.
pub fn load(path: &Path) -> Result<VrrpConfig, KeepalivedError> {
    let text = read(path).map_err(|kind| KeepalivedError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        keyword: None,
        kind: Box::new(kind),
    })?;
    let mut read_included = |path: &Path| {
        read(path).map_err(|kind| match kind {
            KeepalivedErrorKind::Unreadable { reason } => KeepalivedErrorKind::IncludeUnreadable {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    };
    build(&text, path, &mut read_included)
}

/// Validates keepalived.conf text; `file` names it in errors, warnings and
/// [`VrrpConfig::file`]. `include` is refused: it needs the file system, so use [`load`].
pub fn parse(text: &str, file: &Path) -> Result<VrrpConfig, KeepalivedError> {
    build(text, file, &mut |_: &Path| {
        Err(KeepalivedErrorKind::IncludeWithoutFiles)
    })
}

fn read(path: &Path) -> Result<String, KeepalivedErrorKind> {
    let bytes = std::fs::read(path).map_err(|error| KeepalivedErrorKind::Unreadable {
        reason: error.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let utf8 = error.utf8_error();
        let byte = error
            .as_bytes()
            .get(utf8.valid_up_to())
            .copied()
            .unwrap_or_default();
        KeepalivedErrorKind::InvalidUtf8 { byte }
    })
}

fn build(text: &str, file: &Path, read: &mut Reader<'_>) -> Result<VrrpConfig, KeepalivedError> {
    let mut files = Files::default();
    let main = files.add(file.to_path_buf());
    let mut notes = Vec::new();
    let result = lex::tokens(text, main, &mut files, read)
        .and_then(tree::statements)
        .and_then(|statements| config::config(&statements, &files, &mut notes));
    match result {
        Ok(mut config) => {
            config.warnings = notes
                .into_iter()
                .map(|note| note.into_warning(&files))
                .collect();
            Ok(config)
        }
        Err(fault) => Err(Fault::into_error(fault, &files)),
    }
}
