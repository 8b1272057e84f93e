//! The Auth API's listing for the users and roles view.

use crate::app::auth::AuthListing;

use super::errors::with_timeout;
use super::pool::Pool;

impl Pool {
    /// Users with their roles and roles with their permissions. A list the user may not read is
    /// etcd's error in its place; a user may still read itself and its own roles, as etcd allows.
    pub(super) async fn auth_listing(
        &self,
        endpoint: &str,
        user: Option<&str>,
    ) -> Result<AuthListing, String> {
        let client = self.client(endpoint).await?;
        let mut auth = client.auth_client();
        let timeout = self.config.command_timeout;
        let users = match with_timeout(timeout, auth.user_list()).await {
            Ok(resp) => {
                let mut out = Vec::new();
                for name in resp.users() {
                    let roles = with_timeout(timeout, auth.user_get(name.clone())).await;
                    out.push((name.clone(), roles.map(|r| r.roles().to_vec())));
                }
                Ok(out)
            }
            Err(e) => Err(e),
        };
        // Whether the API is there at all: an unreachable endpoint is the caller's to retry.
        if let Err(e) = &users {
            if e.contains("deadline") || e.contains("connect") || e.contains("transport") {
                return Err(e.clone());
            }
        }
        let own_roles = match (&users, user) {
            (Err(_), Some(me)) => {
                with_timeout(timeout, auth.user_get(me.to_string())).await.ok().map(|r| r.roles().to_vec())
            }
            _ => None,
        };
        let role_names = match with_timeout(timeout, auth.role_list()).await {
            Ok(resp) => Ok(resp.roles().to_vec()),
            Err(e) => match &own_roles {
                Some(own) => Ok(own.clone()),
                None => Err(e),
            },
        };
        let roles = match role_names {
            Ok(names) => {
                let mut out = Vec::new();
                for name in names {
                    let perms = with_timeout(timeout, auth.role_get(name.clone())).await.map(|resp| {
                        resp.permissions()
                            .iter()
                            .map(|p| crate::app::auth::Permission {
                                kind: match p.get_type() {
                                    1 => crate::app::auth::PermKind::Write,
                                    2 => crate::app::auth::PermKind::ReadWrite,
                                    _ => crate::app::auth::PermKind::Read,
                                },
                                key: p.key().to_vec(),
                                range_end: p.range_end().to_vec(),
                            })
                            .collect()
                    });
                    out.push((name, perms));
                }
                Ok(out)
            }
            Err(e) => Err(e),
        };
        Ok(AuthListing { users, roles, own_roles })
    }
}
