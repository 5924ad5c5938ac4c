//! Which state an environment uses: the one rule every command follows, whatever backend
//! the state is on.

use std::path::{Path, PathBuf};

/// The scheme of state kept on S3.
pub const S3_SCHEME: &str = "s3://";

/// What names a state: `--state`, `--state-dir` (the last one given), and the stack file's
/// `state:` (a folder there is relative to the stack file).
#[derive(Clone, Copy, Debug)]
pub struct Named<'a> {
    pub flag: Option<&'a str>,
    pub dirs: &'a [PathBuf],
    pub stack: Option<&'a str>,
    /// The stack file's folder.
    pub stack_dir: &'a Path,
}

/// Where the state is named, or `None` for the default folder beside the stack file
/// (`.plinth`). `--state` wins; then a stack's `s3://` state, which a `--state-dir` may not
/// quietly replace (two instructors would then keep two states of one class); then
/// `--state-dir`; then a folder the stack names.
pub fn resolve(named: &Named<'_>) -> Result<Option<String>, String> {
    if let Some(flag) = named.flag {
        return Ok(Some(flag.to_string()));
    }
    let from_stack = named.stack.map(|s| match s.starts_with(S3_SCHEME) {
        true => s.to_string(),
        false => named.stack_dir.join(s).display().to_string(),
    });
    let dir = named.dirs.last();
    match (from_stack, dir) {
        (Some(url), Some(dir)) if url.starts_with(S3_SCHEME) => Err(format!(
            "the stack keeps its state on {url}, and --state-dir (or PLINTH_STATE_DIR) names the folder {}: give --state {} to use that folder on purpose",
            dir.display(),
            dir.display()
        )),
        (_, Some(dir)) => Ok(Some(dir.display().to_string())),
        (from_stack, None) => Ok(from_stack),
    }
}

/// Whether a named location is on S3.
pub fn is_s3(location: &str) -> bool {
    location.starts_with(S3_SCHEME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(flag: Option<&'a str>, dirs: &'a [PathBuf], stack: Option<&'a str>) -> Named<'a> {
        Named {
            flag,
            dirs,
            stack,
            stack_dir: Path::new("labs"),
        }
    }

    #[test]
    fn the_command_line_wins_then_a_stacks_bucket_then_a_folder() {
        let dirs = [PathBuf::from("a"), PathBuf::from("b")];
        let s3 = Some("s3://class/fall");
        assert_eq!(
            resolve(&named(None, &[], None)),
            Ok(None),
            "beside the stack file"
        );
        assert_eq!(
            resolve(&named(Some("s3://other/x"), &dirs, s3)),
            Ok(Some("s3://other/x".into()))
        );
        assert_eq!(
            resolve(&named(None, &[], s3)),
            Ok(Some("s3://class/fall".into()))
        );
        assert_eq!(
            resolve(&named(None, &dirs, None)),
            Ok(Some("b".into())),
            "the last one"
        );
        assert_eq!(
            resolve(&named(None, &[], Some("state"))),
            Ok(Some("labs/state".into())),
            "relative to the stack file"
        );
        assert_eq!(
            resolve(&named(None, &dirs, Some("state"))),
            Ok(Some("b".into()))
        );
    }

    #[test]
    fn a_folder_does_not_quietly_replace_a_stacks_bucket() {
        let dirs = [PathBuf::from("mine")];
        let err = resolve(&named(None, &dirs, Some("s3://class/fall"))).expect_err("refused");
        assert!(
            err.contains("give --state mine to use that folder on purpose"),
            "{err}"
        );
        assert!(is_s3("s3://class/fall") && !is_s3("labs/state"));
    }
}
