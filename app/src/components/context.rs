//! What the console layout provides to every page below it, as context: leaf types, so the
//! pages that read them and the layout that provides them need not import each other (or
//! the route table).

use crate::auth::StaffIdentity;
use crate::domain::tenants::Tenant;
use crate::error::AppError;
use leptos::prelude::*;

/// Who is signed in, as the console layout knows it (see
/// [`ConsoleLayout`](crate::components::layout::ConsoleLayout)).
#[derive(Clone, Copy)]
pub struct StaffResource(pub Resource<Result<Option<StaffIdentity>, AppError>>);

/// The tenants the switcher lists, loaded once the person is signed in.
#[derive(Clone, Copy)]
pub struct TenantsResource(pub Resource<Result<Vec<Tenant>, AppError>>);

/// The freeze on now, as the top bar shows it: read again on every navigation, and by the
/// Freeze page after it turns one on or lifts it.
#[derive(Clone, Copy)]
pub struct FreezeResource(pub Resource<Result<Option<crate::domain::freeze::Freeze>, AppError>>);
