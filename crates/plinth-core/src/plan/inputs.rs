//! Fingerprints of the files a plan's changes read at apply time (a function's code, a
//! site's folder), so a saved plan applies exactly what was planned: if one changed since,
//! `apply PLAN` refuses and names it, instead of uploading what is on disk now.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::plan::{Action, ResourceChange};
use crate::resource::Registry;

/// What each input (a file or folder, as the type names it) held when the plan was made:
/// its files (relative to a folder input, `/`-separated; `""` for a file input) → SHA-256,
/// or `MISSING`.
pub type Fingerprints = BTreeMap<String, BTreeMap<String, String>>;

const MISSING: &str = "missing";

/// The fingerprints of every input the plan's creates, updates and replacements read.
pub fn fingerprint(
    changes: &[ResourceChange],
    registry: &Registry,
    base_dir: &Path,
) -> Fingerprints {
    let mut out = Fingerprints::new();
    for c in changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace))
    {
        let (Some(rt), Some(after)) = (registry.get(&c.type_name), &c.after) else {
            continue;
        };
        for input in rt.disk_inputs(after) {
            let files = files_of(&base_dir.join(&input));
            out.insert(input, files);
        }
    }
    out
}

/// The inputs that differ from `recorded`: each file changed, added to a folder, or gone.
pub fn changed_since(recorded: &Fingerprints, base_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (input, files) in recorded {
        let now = files_of(&base_dir.join(input));
        let shown = |file: &str| {
            if file.is_empty() {
                input.clone()
            } else {
                format!("{}/{file}", input.trim_end_matches('/'))
            }
        };
        for (file, hash) in files {
            match now.get(file) {
                Some(h) if h == hash => {}
                Some(h) if h != MISSING => out.push(format!("{} (changed)", shown(file))),
                _ => out.push(format!("{} (deleted)", shown(file))),
            }
        }
        for file in now.keys().filter(|f| !files.contains_key(*f)) {
            if now[file] != MISSING {
                out.push(format!("{} (added)", shown(file)));
            }
        }
    }
    out
}

/// A folder's files, or a file's own hash under `""`.
fn files_of(path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, Path::new(""), &mut files);
        for relative in files {
            let hash = hash_file(&path.join(&relative)).unwrap_or_else(|| MISSING.into());
            out.insert(slashed(&relative), hash);
        }
    } else {
        out.insert(
            String::new(),
            hash_file(path).unwrap_or_else(|| MISSING.into()),
        );
    }
    out
}

/// Every file under `dir` (following links to files, not to folders: they could loop).
fn walk(dir: &Path, relative: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir.join(relative)) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = relative.join(entry.file_name());
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let full = dir.join(&path);
        if full.is_dir() {
            if !is_link {
                walk(dir, &path, out);
            }
        } else if full.is_file() {
            out.push(path);
        }
    }
}

fn hash_file(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(format!("{:x}", hasher.finalize()))
}

fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_an_added_and_a_deleted_file_are_each_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("css")).expect("mkdir");
        std::fs::write(site.join("index.html"), "<h1>v1</h1>").expect("write");
        std::fs::write(site.join("css/a.css"), "a{}").expect("write");
        std::fs::write(dir.path().join("items.yaml"), "- id: 1").expect("write");
        let mut recorded = Fingerprints::new();
        for input in ["site", "items.yaml"] {
            recorded.insert(input.to_string(), files_of(&dir.path().join(input)));
        }
        assert_eq!(
            recorded["site"].keys().collect::<Vec<_>>(),
            ["css/a.css", "index.html"]
        );
        assert!(changed_since(&recorded, dir.path()).is_empty());

        std::fs::write(site.join("index.html"), "<h1>v2</h1>").expect("write");
        std::fs::write(site.join("new.html"), "new").expect("write");
        std::fs::remove_file(site.join("css/a.css")).expect("rm");
        std::fs::remove_file(dir.path().join("items.yaml")).expect("rm");
        assert_eq!(
            changed_since(&recorded, dir.path()),
            [
                "items.yaml (deleted)",
                "site/css/a.css (deleted)",
                "site/index.html (changed)",
                "site/new.html (added)"
            ]
        );
    }

    #[test]
    fn an_absolute_input_is_checked_where_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = dir.path().join("abs-site");
        std::fs::create_dir_all(&site).expect("mkdir");
        std::fs::write(site.join("index.html"), "v1").expect("write");
        let input = site.display().to_string();
        let mut recorded = Fingerprints::new();
        recorded.insert(input.clone(), files_of(&site));
        let elsewhere = tempfile::tempdir().expect("tempdir");
        assert!(changed_since(&recorded, elsewhere.path()).is_empty());
        std::fs::write(site.join("index.html"), "v2").expect("write");
        assert_eq!(
            changed_since(&recorded, elsewhere.path()),
            [format!("{input}/index.html (changed)")]
        );
    }
}
