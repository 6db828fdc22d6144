//! Pagination as AWS list operations do it ([`awscore::page`]): the key a request's
//! `nextToken` (or `marker`) continues after, refused with InvalidRequestException when it is
//! not a token Ferrite gave out.

use crate::ApiError;

/// The key a `nextToken` continues after (`None`: the first page).
pub fn after(token: Option<&str>) -> Result<Option<String>, ApiError> {
    awscore::page::after(token).map_err(|e| ApiError::invalid(e.to_string()))
}
