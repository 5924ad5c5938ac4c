//! `name_prefix`: a unique name a stack gives as a prefix (Terraform's `name_prefix`). The
//! plan completes it with a random suffix once, shows the name as "(known after apply)"
//! until it exists, and keeps the name the state holds from then on. A replacement gets a
//! new suffix, so the new resource can be made before the old one goes.

use serde_json::{json, Value};

use crate::schema::{prefix_key, TypeSchema};
use crate::value::{contains_unknown, Props, UNKNOWN};

/// Characters plinth appends to a prefix.
pub const SUFFIX_LEN: usize = 8;

/// A name to generate: the property and the prefix the stack gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefixed {
    pub prop: &'static str,
    pub prefix: String,
    /// The whole name's limit.
    pub max: usize,
    /// Whether the resource already has a name of this prefix (in the state).
    pub existing: bool,
}

/// Takes each `<name>_prefix` out of `desired` and puts the name in its place: the one
/// `prior` (the state's properties) holds when it has this prefix, otherwise unknown until
/// apply. Errors are for the person (both given, a prefix too long).
pub fn take(
    schema: &TypeSchema,
    desired: &mut Props,
    prior: Option<&Props>,
) -> Result<Vec<Prefixed>, String> {
    let mut prefixed = Vec::new();
    for prop in &schema.properties {
        let (Some(max), Some(key)) = (prop.prefix_max, prefix_key(prop.name)) else {
            continue;
        };
        let Some(value) = desired.remove(key) else {
            continue;
        };
        if desired.contains_key(prop.name) {
            return Err(format!("give `{}` or `{key}`, not both", prop.name));
        }
        let Some(prefix) = value.as_str().filter(|_| !contains_unknown(&value)) else {
            return Err(format!("`{key}` must be a string known when planning"));
        };
        if prefix.len() + SUFFIX_LEN > max {
            return Err(format!(
                "`{key}` has at most {} characters: plinth adds {SUFFIX_LEN} to it and a name has at most {max}",
                max - SUFFIX_LEN
            ));
        }
        let held = prior
            .and_then(|p| p.get(prop.name))
            .and_then(Value::as_str)
            .filter(|name| holds(name, prefix));
        desired.insert(prop.name.to_string(), json!(held.unwrap_or(UNKNOWN)));
        prefixed.push(Prefixed {
            prop: prop.name,
            prefix: prefix.to_string(),
            max,
            existing: held.is_some(),
        });
    }
    Ok(prefixed)
}

/// Whether `name` is `prefix` completed by plinth.
fn holds(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|suffix| {
        suffix.len() == SUFFIX_LEN && suffix.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// A new name for the prefix: the prefix and 8 random lowercase hexadecimal digits (valid
/// in every AWS name: bucket names are lowercase).
pub fn generate(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &random[..SUFFIX_LEN])
}

/// What the type's own checks say of a name made from `prefix` (its characters): `desired`
/// with a sample name in place.
pub fn sample(desired: &Props, prefixed: &Prefixed) -> Props {
    let mut sample = desired.clone();
    sample.insert(
        prefixed.prop.to_string(),
        json!(format!("{}{}", prefixed.prefix, "0".repeat(SUFFIX_LEN))),
    );
    sample
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{with_name_prefixes, Prop, Shape, TypeKind};

    fn schema() -> TypeSchema {
        TypeSchema {
            type_name: "fake.bucket",
            description: "",
            kind: TypeKind::Managed,
            taggable: false,
            properties: with_name_prefixes(vec![Prop::new("name", Shape::String)
                .required()
                .prefixable(20)]),
            attributes: vec![],
        }
    }

    fn props(value: Value) -> Props {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_prefix_is_unknown_until_the_state_holds_a_name_of_it() {
        let mut desired = props(json!({"name_prefix": "lab-"}));
        let prefixed = take(&schema(), &mut desired, None).expect("takes");
        assert_eq!(desired["name"], json!(UNKNOWN));
        assert!(!desired.contains_key("name_prefix"));
        assert!(!prefixed[0].existing);

        let prior = props(json!({"name": "lab-0a1b2c3d"}));
        let mut desired = props(json!({"name_prefix": "lab-"}));
        let prefixed = take(&schema(), &mut desired, Some(&prior)).expect("takes");
        assert_eq!(desired["name"], json!("lab-0a1b2c3d"));
        assert!(prefixed[0].existing);

        // Another prefix: a new name (the name replaces).
        let mut desired = props(json!({"name_prefix": "week-"}));
        take(&schema(), &mut desired, Some(&prior)).expect("takes");
        assert_eq!(desired["name"], json!(UNKNOWN));
    }

    #[test]
    fn a_prefix_too_long_or_beside_a_name_is_refused() {
        let mut both = props(json!({"name_prefix": "a-", "name": "b"}));
        assert!(take(&schema(), &mut both, None)
            .unwrap_err()
            .contains("not both"));
        let mut long = props(json!({"name_prefix": "a-very-long-prefix"}));
        assert!(take(&schema(), &mut long, None)
            .unwrap_err()
            .contains("at most 12 characters"));
    }

    #[test]
    fn generated_names_are_the_prefix_and_eight_hex_digits() {
        let name = generate("lab-");
        assert!(holds(&name, "lab-"), "{name}");
        assert_ne!(generate("lab-"), generate("lab-"));
    }
}
