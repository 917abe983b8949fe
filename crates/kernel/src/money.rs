//! Money: integer minor units of an ISO-4217 currency. Never floats.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};

/// Why a money value could not be built or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not an active ISO-4217 currency.
    #[error("`{0}` is not an ISO-4217 currency code")]
    UnknownCurrency(String),
    /// Two amounts of different currencies were combined.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch {
        /// The currency of the left operand.
        left: Currency,
        /// The currency of the right operand.
        right: Currency,
    },
    /// The result does not fit in 64-bit minor units.
    #[error("amount out of range")]
    Overflow,
}

/// An ISO-4217 currency with its minor-unit exponent (EUR: 2, JPY: 0, KWD: 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// Active ISO-4217 codes whose minor unit is not 2 decimal places.
const EXPONENTS: &[(&str, u8)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

/// Active ISO-4217 codes with 2 decimal places.
const TWO_DECIMALS: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB \
    BRL BSD BTN BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD \
    FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT \
    LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK \
    NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP \
    STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG";

impl Currency {
    /// Parses an ISO-4217 code such as `EUR` (upper case, as the standard writes it).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let unknown = || MoneyError::UnknownCurrency(code.chars().take(8).collect());
        let bytes: [u8; 3] = code.as_bytes().try_into().map_err(|_| unknown())?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(unknown());
        }
        let exponent = match EXPONENTS.iter().find(|(c, _)| *c == code) {
            Some((_, exponent)) => *exponent,
            None if TWO_DECIMALS.split_ascii_whitespace().any(|c| c == code) => 2,
            None => return Err(unknown()),
        };
        Ok(Self { code: bytes, exponent })
    }

    /// The three-letter code.
    #[must_use]
    pub fn code(&self) -> &str {
        // The bytes were checked to be ASCII upper-case letters in `parse`.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Decimal places of the minor unit (EUR: 2).
    #[must_use]
    pub const fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount of money in integer minor units (cents) of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount given in minor units: `from_minor(1999, EUR)` is 19.99 EUR.
    #[must_use]
    pub const fn from_minor(amount_minor: i64, currency: Currency) -> Self {
        Self { amount_minor, currency }
    }

    /// Zero in `currency`.
    #[must_use]
    pub const fn zero(currency: Currency) -> Self {
        Self::from_minor(0, currency)
    }

    /// Converts a decimal amount in major units, rounding half to even once.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let rounded = amount
            .round_dp_with_strategy(u32::from(currency.exponent), RoundingStrategy::MidpointNearestEven);
        let scale_up = Decimal::from(10_i64.pow(u32::from(currency.exponent)));
        let minor = rounded.checked_mul(scale_up).ok_or(MoneyError::Overflow)?;
        let minor = i64::try_from(minor.trunc()).map_err(|_| MoneyError::Overflow)?;
        Ok(Self::from_minor(minor, currency))
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    #[must_use]
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in major units, exact.
    #[must_use]
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.amount_minor, u32::from(self.currency.exponent))
    }

    /// True when the amount is below zero.
    #[must_use]
    pub const fn is_negative(&self) -> bool {
        self.amount_minor < 0
    }

    /// True when the amount is zero.
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    /// `self + other`; fails on a currency mismatch or overflow.
    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        let sum = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Self::from_minor(sum, self.currency))
    }

    /// `self - other`; fails on a currency mismatch or overflow.
    pub fn checked_sub(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        let diff = self.amount_minor.checked_sub(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Self::from_minor(diff, self.currency))
    }

    /// `self * factor` (a quantity); fails on overflow.
    pub fn checked_mul(self, factor: i64) -> Result<Self, MoneyError> {
        let product = self.amount_minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Self::from_minor(product, self.currency))
    }

    /// `-self`; fails on overflow (`i64::MIN`).
    pub fn checked_neg(self) -> Result<Self, MoneyError> {
        let negated = self.amount_minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Self::from_minor(negated, self.currency))
    }

    fn same_currency(&self, other: Self) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency })
        }
    }
}

impl fmt::Display for Money {
    /// `19.99 EUR`, `-0.05 EUR`, `500 JPY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn currencies_know_their_exponent() {
        assert_eq!(eur().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert_eq!(Currency::parse("CLF").unwrap().exponent(), 4);
    }

    #[test]
    fn unknown_or_malformed_codes_are_refused() {
        for bad in ["", "EU", "eur", "EURO", "ABC", "€€€", "XXX"] {
            assert!(
                matches!(Currency::parse(bad), Err(MoneyError::UnknownCurrency(_))),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn display_uses_the_exponent() {
        assert_eq!(Money::from_minor(1999, eur()).to_string(), "19.99 EUR");
        assert_eq!(Money::from_minor(-5, eur()).to_string(), "-0.05 EUR");
        assert_eq!(Money::from_minor(500, Currency::parse("JPY").unwrap()).to_string(), "500 JPY");
        assert_eq!(Money::from_minor(1, Currency::parse("KWD").unwrap()).to_string(), "0.001 KWD");
    }

    #[test]
    fn addition_and_subtraction_are_exact() {
        let a = Money::from_minor(10, eur());
        let b = Money::from_minor(20, eur());
        assert_eq!(a.checked_add(b).unwrap().amount_minor(), 30);
        assert_eq!(a.checked_sub(b).unwrap().amount_minor(), -10);
        assert!(a.checked_sub(b).unwrap().is_negative());
    }

    #[test]
    fn mixing_currencies_fails() {
        let usd = Currency::parse("USD").unwrap();
        let err = Money::from_minor(1, eur()).checked_add(Money::from_minor(1, usd)).unwrap_err();
        assert_eq!(err, MoneyError::CurrencyMismatch { left: eur(), right: usd });
        assert_eq!(err.to_string(), "cannot combine EUR with USD");
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let max = Money::from_minor(i64::MAX, eur());
        assert_eq!(max.checked_add(Money::from_minor(1, eur())), Err(MoneyError::Overflow));
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(Money::from_minor(i64::MIN, eur()).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(
            Money::from_minor(i64::MIN, eur()).checked_sub(Money::from_minor(1, eur())),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn decimals_round_half_to_even() {
        assert_eq!(Money::from_decimal(dec("0.125"), eur()).unwrap().amount_minor(), 12);
        assert_eq!(Money::from_decimal(dec("0.135"), eur()).unwrap().amount_minor(), 14);
        assert_eq!(Money::from_decimal(dec("-0.125"), eur()).unwrap().amount_minor(), -12);
        assert_eq!(
            Money::from_decimal(dec("2.5"), Currency::parse("JPY").unwrap()).unwrap().amount_minor(),
            2
        );
        assert_eq!(Money::from_decimal(dec("19.99"), eur()).unwrap().to_decimal(), dec("19.99"));
    }

    #[test]
    fn decimals_out_of_range_fail() {
        let huge = dec("100000000000000000000");
        assert_eq!(Money::from_decimal(huge, eur()), Err(MoneyError::Overflow));
    }

    #[test]
    fn serde_shape_is_minor_units_and_code() {
        let money = Money::from_minor(1999, eur());
        let json = serde_json::to_value(money).unwrap();
        assert_eq!(json, serde_json::json!({"amountMinor": 1999, "currency": "EUR"}));
        assert_eq!(serde_json::from_value::<Money>(json).unwrap(), money);
        let bad = serde_json::json!({"amountMinor": 1, "currency": "ZZZ"});
        assert!(serde_json::from_value::<Money>(bad).is_err());
        let fractional = serde_json::json!({"amountMinor": 1.5, "currency": "EUR"});
        assert!(serde_json::from_value::<Money>(fractional).is_err());
    }
}
