//! `GET /api/contacts`: finding contacts by name, number, email, postal
//! code or a value in the account's own fields, a page at a time.

use axum::extract::{Query, State};
use axum::Json;
use crm::model::{Contact, Role};
use crm::search::{ContactQuery, Field, Sort};
use crm::store::SearchScope;
use schemars::JsonSchema;
use serde::Serialize;

use super::account_fields::{hide_off_card, visible_fields};
use crate::auth::CurrentUser;
use crate::{ApiError, AppState};

/// The query string, read by hand so a bad value is a 400 that says which.
#[derive(Debug, Default)]
pub(super) struct SearchParams {
    q: Option<String>,
    field: Option<String>,
    sort: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
    /// `field.<key>=value`: the key and the value asked for.
    filters: Vec<(String, String)>,
}

impl SearchParams {
    /// Reads the parameters; other names are ignored, as before.
    fn read(pairs: Vec<(String, String)>) -> Self {
        let mut p = SearchParams::default();
        for (name, value) in pairs {
            match name.as_str() {
                "q" => p.q = Some(value),
                "field" => p.field = Some(value),
                "sort" => p.sort = Some(value),
                "page" => p.page = Some(value),
                "per_page" => p.per_page = Some(value),
                other => {
                    if let Some(key) = other.strip_prefix("field.") {
                        p.filters.push((key.to_owned(), value));
                    }
                }
            }
        }
        p
    }
}

/// A page of the contacts found.
#[derive(Serialize, JsonSchema)]
pub(crate) struct SearchResults {
    /// How the text was read: number, name, email, postal_code or all.
    matched_by: &'static str,
    page: u32,
    per_page: u32,
    has_more: bool,
    contacts: Vec<Contact>,
}

/// Returns a page of the contacts the caller may see that match `q` and
/// every `field.<key>=value` filter, audited as `contact.search` (never
/// with the text searched). Supervisors and admins search the whole
/// account; an agent searches only the leads of the campaigns they are
/// assigned to, as the card allows them to read, and only in the fields
/// the card shows.
pub(super) async fn search(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<SearchResults>, ApiError> {
    let params = SearchParams::read(pairs);
    let account = me.account();
    let field: Field = enumerated("field", params.field.as_deref())?;
    let sort: Sort = enumerated("sort", params.sort.as_deref())?;
    let page = number("page", params.page.as_deref())?;
    let per_page = number("per_page", params.per_page.as_deref())?;
    let regions = state.store.search_regions(account).await?;
    let mut query = ContactQuery::parse(
        params.q.as_deref().unwrap_or_default(),
        field,
        &regions,
        sort,
        page,
        per_page,
    )?;
    if !params.filters.is_empty() {
        // An agent filters only by the fields the card shows them.
        let fields = visible_fields(&state, &me).await?;
        for (key, value) in &params.filters {
            let def = fields.iter().find(|f| f.key == *key).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "field.{key}: no such field in the account (see GET /api/account/fields)"
                ))
            })?;
            query = query.filter(def, value)?;
        }
    }
    let scope = match me.user.role {
        Role::Agent => SearchScope::Agent(me.user.id),
        Role::Supervisor | Role::Admin => SearchScope::Account,
    };
    let mut found = state.store.search_contacts(account, scope, &query).await?;
    let mut values: Vec<_> = found.contacts.iter_mut().map(|c| &mut c.values).collect();
    hide_off_card(&state, account, me.user.role, &mut values).await?;
    state
        .store
        .audit(&me.actor(), "contact.search", None, state.clock.now())
        .await?;
    Ok(Json(SearchResults {
        matched_by: query.criterion.as_str(),
        page: query.page,
        per_page: query.per_page,
        has_more: found.has_more,
        contacts: found.contacts,
    }))
}

/// Reads an optional enumerated parameter by its serde name.
fn enumerated<T: serde::de::DeserializeOwned + Default>(
    name: &str,
    value: Option<&str>,
) -> Result<T, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(T::default()),
        Some(v) => serde_json::from_value(serde_json::Value::String(v.to_owned()))
            .map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))),
    }
}

fn number(name: &str, value: Option<&str>) -> Result<Option<u32>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name} must be a whole number, not {v:?}"))),
    }
}
