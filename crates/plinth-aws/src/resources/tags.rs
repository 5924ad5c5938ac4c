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
    let mut tags = tags_of(props);
    tags.retain(|key, _| !key.starts_with("aws:"));
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
