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

/// The largest amount a record carries, in minor units (10^15: ten
/// trillion euros), so that sums over a tenant's records never overflow.
pub(crate) const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// An amount of money a person enters: not negative, at most [`MAX_AMOUNT_MINOR`].
pub(crate) fn amount(value: &portico_kernel::Money, _: &()) -> garde::Result {
    if value.is_negative() {
        Err(garde::Error::new("must not be negative"))
    } else if value.amount_minor() > MAX_AMOUNT_MINOR {
        Err(garde::Error::new(format!("must be at most {MAX_AMOUNT_MINOR} minor units")))
    } else {
        Ok(())
    }
}

/// [`amount`] for an optional field.
#[allow(clippy::ref_option)] // garde hands optional fields over as `&Option<T>`
pub(crate) fn amount_opt(value: &Option<portico_kernel::Money>, ctx: &()) -> garde::Result {
    value.as_ref().map_or(Ok(()), |value| amount(value, ctx))
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
    fn an_amount_is_not_negative_and_at_most_ten_to_the_fifteen_minor_units() {
        let eur = portico_kernel::Currency::parse("EUR").unwrap();
        let money = |minor| portico_kernel::Money::from_minor(minor, eur);
        assert!(amount(&money(0), &()).is_ok() && amount(&money(MAX_AMOUNT_MINOR), &()).is_ok());
        assert!(amount(&money(-1), &()).is_err() && amount(&money(MAX_AMOUNT_MINOR + 1), &()).is_err());
        assert!(amount_opt(&None, &()).is_ok() && amount_opt(&Some(money(i64::MAX)), &()).is_err());
    }

    #[test]
    fn paragraphs_may_not_be_blank_either() {
        assert!(paragraphs_not_blank(" \n ", &()).is_err() && paragraphs_not_blank("a\nb", &()).is_ok());
        assert!(paragraphs_not_blank("nul\u{0}", &()).is_err());
    }
}
