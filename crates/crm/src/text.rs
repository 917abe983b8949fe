//! The rules for text people type, and running a command's garde rules.

use portico_kernel::ValidationErrors;

use crate::CrmError;

/// One line (names, titles, reasons): not blank, no control characters
/// (PostgreSQL refuses NUL; names end up in logs and CSV files). An empty
/// value is left to the field's length rule, so a field gets one error.
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

/// Text in paragraphs (descriptions, comments, notes): line breaks and tabs,
/// but no other control characters.
pub(crate) fn paragraphs(value: &str, _: &()) -> garde::Result {
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        Err(garde::Error::new("must not contain control characters other than line breaks and tabs"))
    } else {
        Ok(())
    }
}

/// [`paragraphs`], and not blank.
pub(crate) fn paragraphs_not_blank(value: &str, ctx: &()) -> garde::Result {
    if !value.is_empty() && value.trim().is_empty() {
        return Err(garde::Error::new("must not be blank"));
    }
    paragraphs(value, ctx)
}

/// Runs a command's garde rules.
pub(crate) fn check<T: garde::Validate<Context = ()>>(command: T) -> Result<T, CrmError> {
    command.validate().map_err(|report| CrmError::Invalid(ValidationErrors::from(report)))?;
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_refuses_blanks_and_control_characters_and_paragraphs_keep_line_breaks() {
        assert!(plain_text("Acme", &()).is_ok() && plain_text("", &()).is_ok());
        assert!(plain_text("  ", &()).is_err() && plain_text("a\nb", &()).is_err());
        assert!(paragraphs("line one\r\n\tline two", &()).is_ok());
        assert!(paragraphs("nul\u{0}", &()).is_err() && paragraphs("bell\u{7}", &()).is_err());
        assert!(paragraphs_not_blank(" \n ", &()).is_err() && paragraphs("", &()).is_ok());
    }
}
