//! The Auth service (etcdserverpb.Auth), served by hand: etcd-client does not export AuthStatus's
//! messages, so its generated trait cannot be implemented. The messages below are etcd's
//! (rpc.proto, authpb/auth.proto), field for field.
//!
//! Changes go through raft as `Write::Auth` (passwords hashed here first, so no raft entry holds
//! one); the member applying them checks the root role (etcd's needAdminPermission). Reads are
//! linearizable, as etcd serves them through raft.

use std::future::Future;
use std::sync::Arc;

use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::{Request, Response, Status};

use crate::node::auth::{self, AuthOutcome, AuthWrite, Perm, PermKind};
use crate::node::error::NodeError;
use crate::node::raft::write::{Write, WriteResponse};
use crate::node::rpc::ctx::{mismatched, Ctx};

pub use crate::etcd::auth_messages::*;

/// The service, as tonic's generated servers are: a tower service routing by path.
#[derive(Clone)]
pub struct AuthService {
    ctx: Arc<Ctx>,
    max_message: usize,
}

impl AuthService {
    pub fn new(ctx: Ctx, max_message: usize) -> Self {
        AuthService { ctx: Arc::new(ctx), max_message }
    }
}

impl tonic::server::NamedService for AuthService {
    const NAME: &'static str = "etcdserverpb.Auth";
}

struct Unary<F>(F);

impl<Req, Resp, F, Fut> tonic::server::UnaryService<Req> for Unary<F>
where
    F: FnMut(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    type Response = Resp;
    type Future = BoxFuture<Response<Resp>, Status>;

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        Box::pin((self.0)(request))
    }
}

impl<B> Service<http::Request<B>> for AuthService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let ctx = self.ctx.clone();
        let max = self.max_message;
        macro_rules! unary {
            ($handler:ident) => {
                Box::pin(async move {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                        .apply_max_message_size_config(Some(max), None);
                    let method = Unary(move |r| {
                        let ctx = ctx.clone();
                        async move { $handler(&ctx, r).await }
                    });
                    Ok(grpc.unary(method, req).await)
                })
            };
        }
        match req.uri().path() {
            "/etcdserverpb.Auth/AuthEnable" => unary!(auth_enable),
            "/etcdserverpb.Auth/AuthDisable" => unary!(auth_disable),
            "/etcdserverpb.Auth/AuthStatus" => unary!(auth_status),
            "/etcdserverpb.Auth/Authenticate" => unary!(authenticate),
            "/etcdserverpb.Auth/UserAdd" => unary!(user_add),
            "/etcdserverpb.Auth/UserGet" => unary!(user_get),
            "/etcdserverpb.Auth/UserList" => unary!(user_list),
            "/etcdserverpb.Auth/UserDelete" => unary!(user_delete),
            "/etcdserverpb.Auth/UserChangePassword" => unary!(user_change_password),
            "/etcdserverpb.Auth/UserGrantRole" => unary!(user_grant_role),
            "/etcdserverpb.Auth/UserRevokeRole" => unary!(user_revoke_role),
            "/etcdserverpb.Auth/RoleAdd" => unary!(role_add),
            "/etcdserverpb.Auth/RoleGet" => unary!(role_get),
            "/etcdserverpb.Auth/RoleList" => unary!(role_list),
            "/etcdserverpb.Auth/RoleDelete" => unary!(role_delete),
            "/etcdserverpb.Auth/RoleGrantPermission" => unary!(role_grant_permission),
            "/etcdserverpb.Auth/RoleRevokePermission" => unary!(role_revoke_permission),
            _ => Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(Status::GRPC_STATUS, (tonic::Code::Unimplemented as i32).into());
                headers.insert(http::header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
                Ok(response)
            }),
        }
    }
}

/// Proposes an auth change as the sender of `req`; the header carries the KV revision.
async fn header_only<T>(ctx: &Ctx, req: Request<T>, w: AuthWrite) -> Result<Response<HeaderOnly>, Status> {
    let write = ctx.as_caller(req, |_| Write::Auth(w))?;
    match ctx.write(write).await? {
        WriteResponse::Auth { revision, .. } => {
            Ok(Response::new(HeaderOnly { header: ctx.header(revision) }))
        }
        _ => Err(mismatched()),
    }
}

/// A linearizable view of the auth store, and the KV revision for the header.
async fn read(ctx: &Ctx) -> Result<(auth::AuthState, i64), Status> {
    ctx.handle.read_index().await?;
    let store = ctx.handle.read_store()?;
    Ok((store.auth().clone(), store.current_revision()))
}

async fn hash(ctx: &Ctx, password: String) -> Result<String, Status> {
    let cost = ctx.bcrypt_cost;
    tokio::task::spawn_blocking(move || auth::hash_password(&password, cost))
        .await
        .map_err(|_| Status::internal("password hashing stopped"))?
        .map_err(Status::from)
}

async fn auth_enable(ctx: &Ctx, req: Request<Empty>) -> Result<Response<HeaderOnly>, Status> {
    header_only(ctx, req, AuthWrite::Enable).await
}

async fn auth_disable(ctx: &Ctx, req: Request<Empty>) -> Result<Response<HeaderOnly>, Status> {
    header_only(ctx, req, AuthWrite::Disable).await
}

async fn auth_status(ctx: &Ctx, req: Request<Empty>) -> Result<Response<AuthStatusResponse>, Status> {
    ctx.check_admin(&req)?;
    let (state, revision) = read(ctx).await?;
    Ok(Response::new(AuthStatusResponse {
        header: ctx.header(revision),
        enabled: state.enabled,
        auth_revision: state.revision,
    }))
}

/// etcd's Authenticate: the password is checked here against the hash (so it never enters the
/// log), then the token is made by a raft entry every member applies; if the auth store moved
/// on meanwhile, again.
async fn authenticate(
    ctx: &Ctx,
    req: Request<AuthenticateRequest>,
) -> Result<Response<AuthenticateResponse>, Status> {
    let r = req.into_inner();
    for _ in 0..3 {
        let (state, _) = read(ctx).await?;
        if !state.enabled {
            return Err(NodeError::AuthNotEnabled.into());
        }
        let Some(hash) = state.users.get(&r.name).and_then(|u| u.password.clone()) else {
            return Err(NodeError::AuthFailed.into());
        };
        let password = r.password.clone();
        let ok = tokio::task::spawn_blocking(move || auth::check_password(&password, &hash))
            .await
            .map_err(|_| Status::internal("password check stopped"))?;
        if !ok {
            return Err(NodeError::AuthFailed.into());
        }
        let token_prefix = auth::token_prefix()?;
        let w = Write::Auth(AuthWrite::Authenticate { name: r.name.clone(), token_prefix });
        let resp = ctx.write(w).await?;
        let WriteResponse::Auth { outcome: AuthOutcome::Token(token), revision } = resp else {
            return Err(mismatched());
        };
        if ctx.handle.read_store()?.auth().revision == state.revision {
            return Ok(Response::new(AuthenticateResponse { header: ctx.header(revision), token }));
        }
    }
    Err(NodeError::AuthOldRevision.into())
}

async fn user_add(ctx: &Ctx, req: Request<UserAddRequest>) -> Result<Response<HeaderOnly>, Status> {
    ctx.check_admin(&req)?;
    let r = req.get_ref();
    let no_password = r.options.as_ref().is_some_and(|o| o.no_password);
    // As etcd 3.5: the password is hashed here, whatever hash a client sent along.
    let hash = if no_password { None } else { Some(hash(ctx, r.password.clone()).await?) };
    let name = r.name.clone();
    header_only(ctx, req, AuthWrite::UserAdd { name, hash }).await
}

async fn user_get(ctx: &Ctx, req: Request<NameRequest>) -> Result<Response<NamesResponse>, Status> {
    let who = ctx.caller(&req)?;
    let (state, revision) = read(ctx).await?;
    let name = &req.get_ref().name;
    if let Err(e) = state.admin_permitted(who.as_ref()) {
        // A user may read itself (etcd's authApplierV3.UserGet).
        if who.as_ref().is_none_or(|c| c.user != *name) {
            return Err(e.into());
        }
    }
    let Some(user) = state.users.get(name) else { return Err(NodeError::UserNotFound.into()) };
    Ok(Response::new(NamesResponse {
        header: ctx.header(revision),
        names: user.roles.iter().cloned().collect(),
    }))
}

async fn user_list(ctx: &Ctx, req: Request<Empty>) -> Result<Response<NamesResponse>, Status> {
    ctx.check_admin(&req)?;
    let (state, revision) = read(ctx).await?;
    Ok(Response::new(NamesResponse {
        header: ctx.header(revision),
        names: state.users.keys().cloned().collect(),
    }))
}

async fn user_delete(ctx: &Ctx, req: Request<NameRequest>) -> Result<Response<HeaderOnly>, Status> {
    let name = req.get_ref().name.clone();
    header_only(ctx, req, AuthWrite::UserDelete { name }).await
}

async fn user_change_password(
    ctx: &Ctx,
    req: Request<ChangePasswordRequest>,
) -> Result<Response<HeaderOnly>, Status> {
    ctx.check_admin(&req)?;
    let r = req.get_ref();
    // etcd 3.5: a password is hashed here; without one, a client's own bcrypt hash (base64, as
    // etcd's clients send it) is taken; neither (etcd 3.4's empty password) hashes the empty one.
    let hash = if r.password.is_empty() && !r.hashed_password.is_empty() {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&r.hashed_password).ok();
        match bytes.and_then(|b| String::from_utf8(b).ok()).filter(|h| h.starts_with("$2")) {
            Some(h) => h,
            None => {
                return Err(Status::invalid_argument(
                    "etcdserver: hashed password is not a base64 bcrypt hash",
                ))
            }
        }
    } else {
        hash(ctx, r.password.clone()).await?
    };
    let name = r.name.clone();
    header_only(ctx, req, AuthWrite::UserChangePassword { name, hash }).await
}

async fn user_grant_role(ctx: &Ctx, req: Request<UserRoleRequest>) -> Result<Response<HeaderOnly>, Status> {
    let UserRoleRequest { user, role } = req.get_ref().clone();
    header_only(ctx, req, AuthWrite::UserGrantRole { user, role }).await
}

async fn user_revoke_role(ctx: &Ctx, req: Request<UserRoleRequest>) -> Result<Response<HeaderOnly>, Status> {
    let UserRoleRequest { user, role } = req.get_ref().clone();
    header_only(ctx, req, AuthWrite::UserRevokeRole { name: user, role }).await
}

async fn role_add(ctx: &Ctx, req: Request<NameRequest>) -> Result<Response<HeaderOnly>, Status> {
    let name = req.get_ref().name.clone();
    header_only(ctx, req, AuthWrite::RoleAdd { name }).await
}

async fn role_get(ctx: &Ctx, req: Request<NameRequest>) -> Result<Response<RoleGetResponse>, Status> {
    let who = ctx.caller(&req)?;
    let (state, revision) = read(ctx).await?;
    let role = &req.get_ref().name;
    if let Err(e) = state.admin_permitted(who.as_ref()) {
        // A user may read the roles it has (etcd's authApplierV3.RoleGet).
        let has = who.as_ref().and_then(|c| state.users.get(&c.user)).is_some_and(|u| u.roles.contains(role));
        if !has {
            return Err(e.into());
        }
    }
    let Some(perms) = state.roles.get(role) else { return Err(NodeError::RoleNotFound.into()) };
    let perm = perms
        .iter()
        .map(|p| Permission { perm_type: p.kind.to_pb(), key: p.key.clone(), range_end: p.range_end.clone() })
        .collect();
    Ok(Response::new(RoleGetResponse { header: ctx.header(revision), perm }))
}

async fn role_list(ctx: &Ctx, req: Request<Empty>) -> Result<Response<NamesResponse>, Status> {
    ctx.check_admin(&req)?;
    let (state, revision) = read(ctx).await?;
    Ok(Response::new(NamesResponse {
        header: ctx.header(revision),
        names: state.roles.keys().cloned().collect(),
    }))
}

async fn role_delete(ctx: &Ctx, req: Request<NameRequest>) -> Result<Response<HeaderOnly>, Status> {
    let role = req.get_ref().name.clone();
    header_only(ctx, req, AuthWrite::RoleDelete { role }).await
}

async fn role_grant_permission(
    ctx: &Ctx,
    req: Request<GrantPermissionRequest>,
) -> Result<Response<HeaderOnly>, Status> {
    let r = req.get_ref();
    let Some(p) = r.perm.as_ref() else {
        return Err(Status::invalid_argument("etcdserver: permission not given"));
    };
    let Some(kind) = PermKind::from_pb(p.perm_type) else {
        return Err(Status::invalid_argument(format!("etcdserver: unknown permission type {}", p.perm_type)));
    };
    let perm = Perm { kind, key: p.key.clone(), range_end: p.range_end.clone() };
    let name = r.name.clone();
    header_only(ctx, req, AuthWrite::RoleGrantPermission { name, perm }).await
}

async fn role_revoke_permission(
    ctx: &Ctx,
    req: Request<RevokePermissionRequest>,
) -> Result<Response<HeaderOnly>, Status> {
    let RevokePermissionRequest { role, key, range_end } = req.get_ref().clone();
    header_only(ctx, req, AuthWrite::RoleRevokePermission { role, key, range_end }).await
}
