//! The stack file: parsing, variables, references and validation.
//!
//! Loading is two steps, so positions survive: the YAML becomes a positioned tree
//! ([`yaml::Node`]), then each part is decoded by hand against the resource type's schema,
//! collecting every problem with its file, line and column.

pub mod check;
pub mod expr;
pub mod load;
#[cfg(test)]
mod tests;
pub mod vars;
pub mod yaml;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::{SourceFile, Span};
use crate::resource::Timeouts;
use expr::SpannedExpr;

pub use load::{load, LoadOptions};

/// A loaded, checked stack: every variable and built-in bound, only resource references
/// (and `${account_id}` until [`Stack::bind_account_id`]) left in expressions.
#[derive(Clone, Debug)]
pub struct Stack {
    pub file: SourceFile,
    pub name: String,
    pub region: String,
    pub description: Option<String>,
    pub workspace: String,
    pub tags: BTreeMap<String, String>,
    pub expires_after: Option<Expiry>,
    /// Where the state lives when the command line does not say: `s3://BUCKET/PREFIX`, or a
    /// folder.
    pub state: Option<String>,
    /// The AWS account the environment lives in when it is not the caller's own (a
    /// roster's student with `account=`): set by whoever assumed the role, never by the file.
    pub account: Option<String>,
    /// The account of the credentials the command runs with (the instructor's), where a
    /// state that records no account has its resources.
    pub caller_account: Option<String>,
    pub vars: Vec<VarValue>,
    pub resources: Vec<ResourceDecl>,
    pub outputs: Vec<OutputDecl>,
}

/// `expires_after` as written and as a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub text: String,
    pub duration: Duration,
}

/// A variable's final value and whether it must be masked.
#[derive(Clone, Debug)]
pub struct VarValue {
    pub name: String,
    pub value: serde_json::Value,
    pub sensitive: bool,
}

/// One resource as declared.
#[derive(Clone, Debug)]
pub struct ResourceDecl {
    pub name: String,
    pub name_span: Span,
    pub type_name: String,
    pub region: String,
    /// Where `region:` was written, when it was.
    pub region_span: Option<Span>,
    pub depends_on: Vec<(String, Span)>,
    pub lifecycle: Lifecycle,
    /// The properties as one map expression (without the reserved keys).
    pub props: SpannedExpr,
}

/// `lifecycle:` of a resource; kept in state so it still applies after the resource
/// leaves the stack file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_before_destroy: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_changes: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default_timeouts")]
    pub timeouts: Timeouts,
}

fn is_default_timeouts(t: &Timeouts) -> bool {
    *t == Timeouts::default()
}

/// One output as declared.
#[derive(Clone, Debug)]
pub struct OutputDecl {
    pub name: String,
    pub value: SpannedExpr,
    pub description: Option<String>,
    pub sensitive: bool,
}

impl Stack {
    /// A stack that declares nothing, standing for a state file whose stack file is not at
    /// hand (`sweep` destroying an expired environment): a destroy plan against it deletes
    /// everything the state records, with each resource's lifecycle as the state kept it.
    pub fn declaring_nothing(state_file: &std::path::Path, name: &str, workspace: &str) -> Stack {
        Stack {
            file: SourceFile::new(state_file, ""),
            name: name.to_string(),
            region: String::new(),
            description: None,
            workspace: workspace.to_string(),
            tags: BTreeMap::new(),
            expires_after: None,
            state: None,
            account: None,
            caller_account: None,
            vars: Vec::new(),
            resources: Vec::new(),
            outputs: Vec::new(),
        }
    }

    pub fn resource(&self, name: &str) -> Option<&ResourceDecl> {
        self.resources.iter().find(|r| r.name == name)
    }

    /// Whether any expression still needs `${account_id}` (so the caller asks AWS once).
    pub fn needs_account_id(&self) -> bool {
        let uses = |e: &SpannedExpr| e.refs().iter().any(|r| r.target == expr::Target::AccountId);
        self.resources.iter().any(|r| uses(&r.props)) || self.outputs.iter().any(|o| uses(&o.value))
    }

    /// Binds `${account_id}` everywhere.
    pub fn bind_account_id(&mut self, account_id: &str) {
        let value = serde_json::Value::String(account_id.to_string());
        let mut resolve =
            |r: &expr::Ref| (r.target == expr::Target::AccountId).then(|| value.clone());
        for r in &mut self.resources {
            // Binding a scalar never fails: only lists and maps cannot be interpolated.
            let _ = r.props.bind(&mut resolve);
        }
        for o in &mut self.outputs {
            let _ = o.value.bind(&mut resolve);
        }
    }

    /// Values of sensitive variables, so output can mask them wherever they end up.
    pub fn sensitive_values(&self) -> Vec<String> {
        self.vars
            .iter()
            .filter(|v| v.sensitive)
            .filter_map(|v| match &v.value {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect()
    }
}
