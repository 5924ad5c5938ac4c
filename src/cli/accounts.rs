//! Students' own AWS accounts: a roster line's `account=` or `role_arn=`, reached through
//! `sts:AssumeRole` with the caller's credentials.

use std::sync::Arc;

use plinth_aws::{Aws, RoleToAssume};
use plinth_core::roster::{AccountAccess, DEFAULT_ROLE_NAME};

use super::{fail, CliError};

/// The role a roster line's account is reached through; the session's name (`parts` joined)
/// says in the account's CloudTrail who worked there and for what.
pub fn role_for(access: &AccountAccess, role_name: &str, parts: &[&str]) -> RoleToAssume {
    RoleToAssume {
        role_arn: access.role_arn(role_name),
        session_name: RoleToAssume::session_name_of(parts),
        external_id: access.external_id.clone(),
    }
}

/// A connection working in `access`'s account through `role`, checked with one
/// `GetCallerIdentity`: a role that cannot be assumed fails here, clearly, before anything is
/// read or changed, and so would one that leads somewhere else.
pub async fn reach(
    aws: &Aws,
    role: &RoleToAssume,
    access: &AccountAccess,
) -> Result<Arc<Aws>, CliError> {
    let assumed = aws.assuming(role).await;
    let region = aws
        .default_region()
        .unwrap_or_else(|| "us-east-1".to_string());
    let expected = access.account_id();
    let reached = assumed.account_id(&region).await.map_err(|e| {
        CliError::Message(format!(
            "cannot work in account {expected} as {}: {e}. The role must exist in that account and trust yours (AWS Organizations makes {DEFAULT_ROLE_NAME} in the accounts it creates; --role-name names another, a line's role_arn= any role)",
            role.role_arn
        ))
    })?;
    if reached != expected {
        return fail(format!(
            "assuming {} reached account {reached}, not {expected}",
            role.role_arn
        ));
    }
    Ok(Arc::new(assumed))
}
