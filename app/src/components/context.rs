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

/// The freeze notice of the top bar, once it changed since the frame was drawn: `None`
/// until then (the frame shows what `whoami` said when it was drawn); `Some(None)` when no
/// freeze is on. Set after every navigation, and by the Freeze page after a change, so a
/// freeze never rebuilds the frame.
#[derive(Clone, Copy)]
pub struct FreezeNotice(pub RwSignal<Option<Option<String>>>);
