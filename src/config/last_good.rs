//! The last good configuration: after every successful load by `serve` (at start and on each
//! reload) the validated text is kept next to the file as `<file>.last-good`. When the file
//! is broken at the next start, `serve` starts from that copy, logs the error of the file
//! with its `file:line` loudly, and keeps watching the file so that fixing it reloads.
//! `check` never falls back: it reports the file as it is.

use super::{Config, ConfigError, validate};
use std::path::{Path, PathBuf};

/// `<file>.last-good`.
pub fn path_for(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".last-good");
    PathBuf::from(name)
}

/// Reads and validates `file`; on success keeps its text as the last good copy (a copy
/// that cannot be written is logged, not an error).
pub fn load_and_keep(file: &Path) -> Result<Config, ConfigError> {
    let text = read(file)?;
    let cfg = parse(&text, file)?;
    keep(file, &text);
    Ok(cfg)
}

/// [`load_and_keep`], falling back to the last good copy when `file` is broken: the
/// configuration and the error of `file` (`None` when the file itself loaded).
pub fn load_or_last_good(file: &Path) -> Result<(Config, Option<ConfigError>), ConfigError> {
    let error = match load_and_keep(file) {
        Ok(cfg) => return Ok((cfg, None)),
        Err(e) => e,
    };
    let copy = path_for(file);
    let Ok(text) = std::fs::read_to_string(&copy) else {
        return Err(error);
    };
    match parse(&text, file) {
        Ok(cfg) => Ok((cfg, Some(error))),
        Err(e) => {
            tracing::error!(
                "{}: the last good copy does not load either: {e}",
                copy.display()
            );
            Err(error)
        }
    }
}

fn read(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })
}

/// Validates text that belongs to `file` (relative paths follow its directory).
fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut cfg = validate::parse(text, file, base)?;
    cfg.path = Some(file.to_path_buf());
    Ok(cfg)
}

/// Writes the copy (through a temporary file and a rename, so that a reader never sees
/// half of it) unless it already holds `text`.
fn keep(file: &Path, text: &str) {
    let copy = path_for(file);
    if std::fs::read_to_string(&copy).is_ok_and(|t| t == text) {
        return;
    }
    let mut tmp = copy.as_os_str().to_owned();
    tmp.push(format!(".{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &copy));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(
            "cannot keep the last good configuration in {}: {e}",
            copy.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_falls_back_to_the_last_good_copy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.toml");
        std::fs::write(&file, "[dns]\nquery_log = true\n").unwrap();
        let (cfg, err) = load_or_last_good(&file).unwrap();
        assert!(cfg.dns.query_log && err.is_none());
        assert_eq!(
            std::fs::read_to_string(path_for(&file)).unwrap(),
            "[dns]\nquery_log = true\n"
        );
        std::fs::write(&file, "[dns]\nquery_log = maybe\n").unwrap();
        let (cfg, err) = load_or_last_good(&file).unwrap();
        assert!(cfg.dns.query_log);
        assert_eq!(cfg.path.as_deref(), Some(file.as_path()));
        let err = err.unwrap().to_string();
        assert!(err.starts_with(&format!("{}:2:", file.display())), "{err}");
        // The broken text never becomes the last good copy.
        assert!(load_and_keep(&file).is_err());
        assert!(
            std::fs::read_to_string(path_for(&file))
                .unwrap()
                .contains("true")
        );
        // Without a copy the error stands.
        std::fs::remove_file(path_for(&file)).unwrap();
        assert!(load_or_last_good(&file).is_err());
    }
}
