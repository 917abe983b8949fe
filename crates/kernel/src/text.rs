//! The garde rules for text people type, shared by every domain's commands.

/// One line (names, titles, subjects, reasons): not blank, no control
/// characters (PostgreSQL refuses NUL; names end up in logs and CSV files).
/// An empty value is left to the field's length rule, so a field gets one error.
pub fn plain_text(value: &str, _: &()) -> garde::Result {
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
pub fn plain_text_opt(value: &Option<String>, ctx: &()) -> garde::Result {
    value.as_deref().map_or(Ok(()), |value| plain_text(value, ctx))
}

/// Text in paragraphs (descriptions, comments, notes): line breaks and tabs,
/// but no other control characters.
pub fn paragraphs(value: &str, _: &()) -> garde::Result {
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        Err(garde::Error::new("must not contain control characters other than line breaks and tabs"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_refuses_blanks_and_control_characters_and_paragraphs_keep_line_breaks() {
        assert!(plain_text("Acme", &()).is_ok() && plain_text("", &()).is_ok());
        assert!(plain_text("  ", &()).is_err() && plain_text("a\nb", &()).is_err());
        assert!(plain_text_opt(&None, &()).is_ok() && plain_text_opt(&Some("a\u{0}".into()), &()).is_err());
        assert!(paragraphs("line one\r\n\tline two", &()).is_ok());
        assert!(paragraphs("nul\u{0}", &()).is_err() && paragraphs("bell\u{7}", &()).is_err());
    }
}
