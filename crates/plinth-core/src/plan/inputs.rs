//! Fingerprints of the files a plan's changes read at apply time (a function's code, a
//! site's folder), so a saved plan applies exactly what was planned: if one changed since,
//! `apply PLAN` refuses and names it, instead of uploading what is on disk now.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::plan::{Action, ResourceChange};
use crate::resource::Registry;

/// What a file or folder held when the plan was made: each file (path relative to the
/// stack's folder, `/`-separated) → its SHA-256; a missing input → `MISSING`.
pub type Fingerprints = BTreeMap<String, String>;

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
            add(&mut out, base_dir, Path::new(&input));
        }
    }
    out
}

/// The inputs that differ from `recorded`: changed, added to a recorded folder, or gone.
pub fn changed_since(recorded: &Fingerprints, base_dir: &Path) -> Vec<String> {
    if recorded.is_empty() {
        return Vec::new();
    }
    let mut now = Fingerprints::new();
    for root in roots(recorded) {
        add(&mut now, base_dir, Path::new(&root));
    }
    let mut out = Vec::new();
    let shown = |path: &str| path.replacen("//", "/", 1);
    for (path, hash) in recorded {
        match now.get(path) {
            Some(h) if h == hash => {}
            Some(h) if h == MISSING => out.push(format!("{} (deleted)", shown(path))),
            Some(_) => out.push(format!("{} (changed)", shown(path))),
            None => out.push(format!("{} (deleted)", shown(path))),
        }
    }
    for path in now.keys().filter(|p| !recorded.contains_key(*p)) {
        out.push(format!("{} (added)", shown(path)));
    }
    out
}

/// The inputs as the types named them: a recorded file, or the folder it was found in.
fn roots(recorded: &Fingerprints) -> Vec<String> {
    let mut roots: Vec<String> = Vec::new();
    for path in recorded.keys() {
        let root = match path.split_once("//") {
            Some((folder, _)) => folder.to_string(),
            None => path.clone(),
        };
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    roots
}

fn add(out: &mut Fingerprints, base_dir: &Path, input: &Path) {
    let full = base_dir.join(input);
    let name = slashed(input);
    if full.is_dir() {
        let mut files = Vec::new();
        walk(&full, Path::new(""), &mut files);
        for relative in files {
            let hash = hash_file(&full.join(&relative)).unwrap_or_else(|| MISSING.into());
            // `folder//file`: the folder as the stack names it, then the file in it.
            out.insert(format!("{name}//{}", slashed(&relative)), hash);
        }
    } else {
        out.insert(name, hash_file(&full).unwrap_or_else(|| MISSING.into()));
    }
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
        add(&mut recorded, dir.path(), Path::new("site"));
        add(&mut recorded, dir.path(), Path::new("items.yaml"));
        assert_eq!(
            recorded.keys().collect::<Vec<_>>(),
            ["items.yaml", "site//css/a.css", "site//index.html"]
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
}
