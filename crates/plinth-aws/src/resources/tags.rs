//! Tag helpers shared by the types: the core hands every taggable type its complete `tags`
//! map (stack tags, its own and the `plinth:*` ones); types only translate it.

use std::collections::BTreeMap;

use plinth_core::value::Props;
use serde_json::{Map, Value};

/// The `tags` property as an ordered map of strings.
pub fn tags_of(props: &Props) -> BTreeMap<String, String> {
    props
        .get("tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `tags` property without AWS's own `aws:` tags, which nobody may set or remove.
pub fn user_tags(props: &Props) -> BTreeMap<String, String> {
    without_reserved(tags_of(props))
}

/// Whether a tag is AWS's own (`aws:…`): nobody may set or remove it, so it is not ours to
/// diff.
pub fn is_reserved(key: &str) -> bool {
    key.starts_with("aws:")
}

/// Tags without AWS's own (see [`is_reserved`]).
pub fn without_reserved(mut tags: BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.retain(|key, _| !is_reserved(key));
    tags
}

/// A tag map as a JSON object, in key order (the canonical form).
pub fn tags_value<I: IntoIterator<Item = (String, String)>>(tags: I) -> Value {
    let sorted: BTreeMap<String, String> = tags.into_iter().collect();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<Map<_, _>>(),
    )
}

/// Tags to add or change and keys to remove, to turn `before` into `after`.
pub fn tag_changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// The tags that say which stack, workspace and logical resource something belongs to.
pub const OWNER_TAGS: &[&str] = &["plinth:stack", "plinth:workspace", "plinth:resource"];

/// Whether `found` (tags AWS reports) carries the same `plinth:*` owner tags as the desired
/// properties' `tags` (and the desired ones carry at least one, so nothing foreign is adopted).
pub fn owned_by(found: &BTreeMap<String, String>, desired: &Props) -> bool {
    let wanted = tags_of(desired);
    OWNER_TAGS.iter().any(|k| wanted.contains_key(*k))
        && OWNER_TAGS.iter().all(|k| found.get(*k) == wanted.get(*k))
}

/// For `find`: what was found, when its owner tags say it is this stack's resource (an
/// interrupted create to adopt), and nothing otherwise: nobody else's resource is adopted.
pub fn ours(
    found: plinth_core::resource::Observed,
    desired: &Props,
) -> Option<plinth_core::resource::Observed> {
    owned_by(&tags_of(&found.props), desired).then_some(found)
}

/// What marks a resource that takes no tags (an origin access control, a cache policy) as
/// this stack's, in its description or comment: `plinth:` and 12 hex digits of a hash of its
/// stack, workspace and logical name, short enough for AWS's length limits. `None` outside an
/// environment.
pub fn owner_marker(ctx: &plinth_core::resource::OpContext) -> Option<String> {
    use sha2::{Digest, Sha256};
    if ctx.stack.is_empty() {
        return None;
    }
    let owner = format!("{}/{}/{}", ctx.stack, ctx.workspace, ctx.name);
    let digest = hex::encode(Sha256::digest(owner.as_bytes()));
    Some(format!("plinth:{}", &digest[..MARKER_DIGITS]))
}

const MARKER_DIGITS: usize = 12;
/// How much of a description or comment the marker takes: ` (plinth:` + 12 digits + `)`.
pub const MARKER_LENGTH: usize = 10 + MARKER_DIGITS;

/// `text` carrying `marker`: `Site OAC (plinth:0123456789ab)`, or the marker alone.
pub fn marked(text: &str, marker: Option<&str>) -> String {
    match marker {
        None => text.to_string(),
        Some(marker) if text.is_empty() => marker.to_string(),
        Some(marker) => format!("{text} ({marker})"),
    }
}

/// `text` as the person wrote it, without a plinth marker, and the marker it carried.
pub fn unmarked(text: &str) -> (String, Option<String>) {
    let is_marker = |m: &str| {
        m.strip_prefix("plinth:").is_some_and(|digits| {
            digits.len() == MARKER_DIGITS && digits.chars().all(|c| c.is_ascii_hexdigit())
        })
    };
    if is_marker(text) {
        return (String::new(), Some(text.to_string()));
    }
    if let Some(rest) = text.strip_suffix(')') {
        if let Some((before, marker)) = rest.rsplit_once(" (") {
            if is_marker(marker) {
                return (before.to_string(), Some(marker.to_string()));
            }
        }
    }
    (text.to_string(), None)
}
