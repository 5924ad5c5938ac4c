//! What a resource type accepts and exports, declared as plain data.
//!
//! One declaration serves three readers: the stack loader checks a stack file against it
//! (with file:line:column errors), the planner learns which properties force replacement
//! or are sensitive, and `plinth schema` turns it into a JSON Schema for editors.

use serde_json::{json, Map, Value};

use crate::value::{PathSeg, Props};

/// Whether a type manages something or only looks something up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// Created, updated and deleted by plinth.
    Managed,
    /// Read-only lookup (Terraform's data source): read at plan time, never changed.
    Lookup,
}

/// How a change to a property is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    InPlace,
    /// A change destroys the resource and creates it anew.
    Replace,
}

/// The type of a value in a stack file.
#[derive(Clone, Debug)]
pub enum Shape {
    String,
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Number,
    Bool,
    Enum(&'static [&'static str]),
    List(Box<Shape>),
    /// A map from free-form string keys to values of one shape (tags, attributes).
    Map(Box<Shape>),
    /// A map with a closed set of keys.
    Object(Vec<Prop>),
    /// Any YAML value (seed items, policy documents).
    Any,
    /// The first shape that fits (e.g. ports: `80` or `"8000-8100"`).
    OneOf(Vec<Shape>),
}

impl Shape {
    pub fn integer() -> Shape {
        Shape::Integer {
            min: None,
            max: None,
        }
    }
    pub fn int_range(min: i64, max: i64) -> Shape {
        Shape::Integer {
            min: Some(min),
            max: Some(max),
        }
    }
    pub fn list(item: Shape) -> Shape {
        Shape::List(Box::new(item))
    }
    pub fn map(value: Shape) -> Shape {
        Shape::Map(Box::new(value))
    }

    /// A short human description used in "expected …" messages.
    pub fn describe(&self) -> String {
        match self {
            Shape::String => "a string".into(),
            Shape::Integer { min, max } => match (min, max) {
                (Some(lo), Some(hi)) => format!("an integer from {lo} to {hi}"),
                (Some(lo), None) => format!("an integer of at least {lo}"),
                (None, Some(hi)) => format!("an integer of at most {hi}"),
                (None, None) => "an integer".into(),
            },
            Shape::Number => "a number".into(),
            Shape::Bool => "true or false".into(),
            Shape::Enum(values) => format!("one of {}", values.join(", ")),
            Shape::List(item) => format!("a list of {}", plural(&item.describe())),
            Shape::Map(_) => "a map".into(),
            Shape::Object(_) => "a map".into(),
            Shape::Any => "any value".into(),
            Shape::OneOf(shapes) => shapes
                .iter()
                .map(Shape::describe)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

fn plural(desc: &str) -> String {
    desc.strip_prefix("a ")
        .or_else(|| desc.strip_prefix("an "))
        .map(|s| format!("{s}s"))
        .unwrap_or_else(|| desc.to_string())
}

/// One property of a resource type, or one key of an object-shaped value.
#[derive(Clone, Debug)]
pub struct Prop {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
    pub change: Change,
    /// Masked in plan output, `show` and logs.
    pub sensitive: bool,
    /// Left out of the stack, the property takes whatever AWS chose (a group's VPC is the
    /// default VPC): an absent value is never a difference. Terraform's "optional+computed".
    pub computed: bool,
    /// For list properties: elements that refer to a resource which itself (directly or not)
    /// refers back may be applied in a second step after both exist, instead of being a
    /// dependency cycle (security-group rules that name each other).
    pub deferrable: bool,
    /// A resource this property refers to lives in this region whatever the stack's region
    /// (a CloudFront distribution's certificate and Lambda@Edge functions: us-east-1).
    pub pins_region: Option<&'static str>,
    /// What the AWS API or the Terraform provider call this property (`num_cache_nodes`,
    /// `hash_key`): a stack that uses one of them is told the plinth name.
    pub aliases: &'static [&'static str],
    /// AWS refuses to delete what this property refers to while it refers to it (a
    /// certificate a distribution serves, a security group a cache sits in): when that is
    /// replaced, the new one is made first and this moves to it before the old one goes.
    pub holds_referent: bool,
    /// AWS allows one resource of the type with this value at a time (together with the
    /// values of the properties listed, e.g. a group name within its VPC), so the old and
    /// the new one cannot exist at once with the same value.
    pub unique_within: Option<&'static [&'static str]>,
    /// A long text (an instance's user data) that plans show as its SHA-256 and size.
    pub shown_as_hash: bool,
    /// A unique name a stack may give as a prefix instead (`name_prefix`): plinth appends
    /// a random suffix once, and the whole name has at most this many characters.
    pub prefix_max: Option<usize>,
    pub description: &'static str,
}

impl Prop {
    pub fn new(name: &'static str, shape: Shape) -> Prop {
        Prop {
            name,
            shape,
            required: false,
            change: Change::InPlace,
            sensitive: false,
            computed: false,
            deferrable: false,
            pins_region: None,
            aliases: &[],
            holds_referent: false,
            unique_within: None,
            shown_as_hash: false,
            prefix_max: None,
            description: "",
        }
    }
    pub fn required(mut self) -> Prop {
        self.required = true;
        self
    }
    pub fn replaces(mut self) -> Prop {
        self.change = Change::Replace;
        self
    }
    pub fn sensitive(mut self) -> Prop {
        self.sensitive = true;
        self
    }
    pub fn computed(mut self) -> Prop {
        self.computed = true;
        self
    }
    pub fn deferrable(mut self) -> Prop {
        self.deferrable = true;
        self
    }
    /// What this property refers to is created in `region`, whatever the stack says.
    pub fn pins_referent_region(mut self, region: &'static str) -> Prop {
        self.pins_region = Some(region);
        self
    }
    /// The AWS API's or Terraform's names for this property.
    pub fn known_as(mut self, aliases: &'static [&'static str]) -> Prop {
        self.aliases = aliases;
        self
    }
    pub fn holds_referent(mut self) -> Prop {
        self.holds_referent = true;
        self
    }
    /// Unique in the account and region.
    pub fn unique(self) -> Prop {
        self.unique_within(&[])
    }
    /// Unique together with these other properties' values.
    pub fn unique_within(mut self, scope: &'static [&'static str]) -> Prop {
        self.unique_within = Some(scope);
        self
    }
    pub fn shown_as_hash(mut self) -> Prop {
        self.shown_as_hash = true;
        self
    }
    /// The stack may give `<name>_prefix` instead (see [`with_name_prefixes`]); `max` is the
    /// longest name AWS takes.
    pub fn prefixable(mut self, max: usize) -> Prop {
        self.prefix_max = Some(max);
        self
    }
    pub fn doc(mut self, description: &'static str) -> Prop {
        self.description = description;
        self
    }
}

/// An attribute other resources and outputs can reference as `${name.attribute}`.
#[derive(Clone, Debug)]
pub struct Attr {
    pub name: &'static str,
    pub shape: Shape,
    pub description: &'static str,
}

impl Attr {
    pub fn new(name: &'static str, shape: Shape, description: &'static str) -> Attr {
        Attr {
            name,
            shape,
            description,
        }
    }
}

/// Everything the core knows about a resource type.
#[derive(Clone, Debug)]
pub struct TypeSchema {
    /// `service.kind`, e.g. `dynamodb.table`.
    pub type_name: &'static str,
    pub description: &'static str,
    pub kind: TypeKind,
    /// Taggable types get the stack's tags and the `plinth:*` tags merged into `tags`.
    pub taggable: bool,
    pub properties: Vec<Prop>,
    pub attributes: Vec<Attr>,
}

impl TypeSchema {
    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.properties.iter().find(|p| p.name == name)
    }
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attributes.iter().find(|a| a.name == name)
    }
    /// The property declaration at `path` (through nested objects and lists), if any.
    pub fn prop_at(&self, path: &[PathSeg]) -> Option<&Prop> {
        let (PathSeg::Key(first), rest) = path.split_first()? else {
            return None;
        };
        let mut prop = self.prop(first)?;
        let mut shape = &prop.shape;
        for seg in rest {
            match (shape, seg) {
                (Shape::List(item), PathSeg::Index(_)) => shape = item,
                (Shape::Object(props), PathSeg::Key(k)) => {
                    prop = props.iter().find(|p| p.name == k)?;
                    shape = &prop.shape;
                }
                _ => return None,
            }
        }
        Some(prop)
    }
    /// The properties marked `Replace` whose values differ between `before` and `after`.
    pub fn replaced_properties(&self, before: &Props, after: &Props) -> Vec<String> {
        self.properties
            .iter()
            .filter(|p| p.change == Change::Replace && before.get(p.name) != after.get(p.name))
            .map(|p| p.name.to_string())
            .collect()
    }
}

/// The key a stack gives a prefixable property's prefix under (`name_prefix`).
pub fn prefix_key(prop: &str) -> Option<&'static str> {
    match prop {
        "name" => Some("name_prefix"),
        "cluster_id" => Some("cluster_id_prefix"),
        "replication_group_id" => Some("replication_group_id_prefix"),
        "user_id" => Some("user_id_prefix"),
        "user_group_id" => Some("user_group_id_prefix"),
        _ => None,
    }
}

/// `properties` with a `<name>_prefix` property after each prefixable one: what a type's
/// schema lists, so stacks, `validate` and the JSON schema know the key.
pub fn with_name_prefixes(properties: Vec<Prop>) -> Vec<Prop> {
    let mut out = Vec::with_capacity(properties.len() + 1);
    for prop in properties {
        let prefix = prop.prefix_max.and(prefix_key(prop.name));
        out.push(prop);
        if let Some(key) = prefix {
            out.push(Prop::new(key, Shape::String).doc(
                "instead of the name: a prefix plinth completes with 8 random characters once, kept in state",
            ));
        }
    }
    out
}

/// The reserved keys every resource accepts besides its properties.
pub const RESERVED_KEYS: &[&str] = &["type", "region", "depends_on", "lifecycle"];

/// Keys of `lifecycle:`.
pub const LIFECYCLE_KEYS: &[&str] = &[
    "prevent_destroy",
    "ignore_changes",
    "create_before_destroy",
    "timeouts",
];

/// A JSON Schema (draft 2020-12) of the whole stack format for the given types.
pub fn stack_json_schema(types: &[&TypeSchema]) -> Value {
    let reference = json!({"type": "string", "pattern": "^\\$\\{[^}]+\\}$"});
    let resource_variants: Vec<Value> = types
        .iter()
        .map(|t| resource_json_schema(t, &reference))
        .collect();
    let type_names: Vec<&str> = types.iter().map(|t| t.type_name).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "plinth stack file",
        "type": "object",
        "additionalProperties": false,
        "required": ["stack", "resources"],
        "properties": {
            "stack": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,39}$", "description": "names state and tags"},
            "region": {"type": "string", "description": "default region of every resource"},
            "description": {"type": "string"},
            "vars": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "default": {}, "description": {"type": "string"},
                    "type": {"enum": ["string", "number", "bool", "list", "map", "any"]},
                    "sensitive": {"type": "boolean"}
                }
            }},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "expires_after": {"type": "string", "pattern": "^([0-9]+\\s*[a-z]+|.*\\$\\{.*)$", "description": "e.g. 8h, 3d, or made of variables"},
            "state": {"type": "string", "description": "where the state lives: s3://BUCKET/PREFIX, or a folder"},
            "resources": {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
                "additionalProperties": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"enum": type_names}},
                    "allOf": resource_variants
                }
            },
            "outputs": {"type": "object", "additionalProperties": {
                "anyOf": [
                    {"type": ["string", "number", "boolean", "array"]},
                    {"type": "object", "additionalProperties": false, "required": ["value"],
                     "properties": {"value": {}, "description": {"type": "string"}, "sensitive": {"type": "boolean"}}}
                ]
            }}
        }
    })
}

fn resource_json_schema(t: &TypeSchema, reference: &Value) -> Value {
    let mut properties = Map::new();
    properties.insert("type".into(), json!({"const": t.type_name}));
    properties.insert("region".into(), json!({"type": "string"}));
    properties.insert(
        "depends_on".into(),
        json!({"type": "array", "items": {"type": "string"}}),
    );
    properties.insert(
        "lifecycle".into(),
        json!({"type": "object", "additionalProperties": false, "properties": {
            "prevent_destroy": {"type": "boolean"},
            "create_before_destroy": {"type": "boolean"},
            "ignore_changes": {"type": "array", "items": {"type": "string"}},
            "timeouts": {"type": "object", "additionalProperties": false, "properties": {
                "create": {"type": "string"}, "update": {"type": "string"}, "delete": {"type": "string"}
            }}
        }}),
    );
    let mut required = vec![];
    for p in &t.properties {
        properties.insert(p.name.into(), prop_json_schema(p, reference));
        // A prefixable name may be given by its prefix instead.
        if p.required && p.prefix_max.is_none() {
            required.push(p.name);
        }
    }
    json!({
        "if": {"properties": {"type": {"const": t.type_name}}},
        "then": {
            "description": t.description,
            "additionalProperties": false,
            "required": required,
            "properties": properties
        }
    })
}

fn prop_json_schema(p: &Prop, reference: &Value) -> Value {
    let mut schema = shape_json_schema(&p.shape, reference);
    if let Value::Object(map) = &mut schema {
        if !p.description.is_empty() {
            map.insert("description".into(), json!(p.description));
        }
    }
    schema
}

fn shape_json_schema(shape: &Shape, reference: &Value) -> Value {
    let plain = match shape {
        Shape::String => return json!({"type": "string"}),
        Shape::Integer { min, max } => {
            let mut m = Map::new();
            m.insert("type".into(), json!("integer"));
            if let Some(lo) = min {
                m.insert("minimum".into(), json!(lo));
            }
            if let Some(hi) = max {
                m.insert("maximum".into(), json!(hi));
            }
            Value::Object(m)
        }
        Shape::Number => json!({"type": "number"}),
        Shape::Bool => json!({"type": "boolean"}),
        Shape::Enum(values) => json!({"enum": values}),
        Shape::List(item) => json!({"type": "array", "items": shape_json_schema(item, reference)}),
        Shape::Map(value) => {
            json!({"type": "object", "additionalProperties": shape_json_schema(value, reference)})
        }
        Shape::Object(props) => {
            let mut properties = Map::new();
            let mut required = vec![];
            for p in props {
                properties.insert(p.name.into(), prop_json_schema(p, reference));
                if p.required {
                    required.push(p.name);
                }
            }
            json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
        }
        Shape::Any => return json!({}),
        Shape::OneOf(shapes) => {
            return json!({"anyOf": shapes.iter().map(|s| shape_json_schema(s, reference)).collect::<Vec<_>>()})
        }
    };
    // Any non-string value may also be written as a whole reference.
    json!({"anyOf": [plain, reference]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_shapes_as_a_person_reads_them() {
        assert_eq!(
            Shape::int_range(1, 65535).describe(),
            "an integer from 1 to 65535"
        );
        assert_eq!(Shape::list(Shape::String).describe(), "a list of strings");
        assert_eq!(Shape::Enum(&["S", "N", "B"]).describe(), "one of S, N, B");
    }
}
