//! The rule for free text people type (names, subjects, serial numbers).

/// Not blank, and no control characters: PostgreSQL refuses NUL, and no
/// name needs a line break or an escape sequence (they end up in logs and
/// CSV files). An empty value is left to the field's length rule, so a
/// field gets one error.
pub(crate) fn plain_text(value: &str, _: &()) -> garde::Result {
    if !value.is_empty() && value.trim().is_empty() {
        Err(garde::Error::new("must not be blank"))
    } else if value.chars().any(char::is_control) {
        Err(garde::Error::new("must not contain control characters"))
    } else {
        Ok(())
    }
}

/// [`plain_text`] for an optional field.
#[allow(clippy::ref_option)] // garde hands optional fields over as `&Option<T>`
pub(crate) fn plain_text_opt(value: &Option<String>, ctx: &()) -> garde::Result {
    value.as_deref().map_or(Ok(()), |value| plain_text(value, ctx))
}
