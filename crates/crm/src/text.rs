//! The kernel's rules for text people type, one of the CRM's own, and
//! running a command's garde rules.

use portico_kernel::ValidationErrors;
pub(crate) use portico_kernel::text::{paragraphs, plain_text, plain_text_opt};

use crate::CrmError;

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
    fn paragraphs_may_not_be_blank_either() {
        assert!(paragraphs_not_blank(" \n ", &()).is_err() && paragraphs_not_blank("a\nb", &()).is_ok());
        assert!(paragraphs_not_blank("nul\u{0}", &()).is_err());
    }
}
