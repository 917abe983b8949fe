//! What evcc's `GET /api/state` sends, reduced to what a reading needs: each
//! loadpoint's title and charge meter register. Everything else in the state
//! (site, tariffs, vehicles, settings) is skipped unread.

use std::collections::HashMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Decimals a register keeps: evcc rounds every float to these before encoding (Wh in kWh).
const REGISTER_DECIMALS: u32 = 3;

/// The body of `/api/state`: the state itself (evcc 0.207 and later) or the
/// state wrapped as `{"result": ...}` (before).
#[derive(Debug, Deserialize)]
struct StateBody {
    #[serde(default)]
    result: Option<State>,
    #[serde(default)]
    loadpoints: Option<Vec<Option<Loadpoint>>>,
}

/// The part of the state that matters here.
#[derive(Debug, Deserialize)]
struct State {
    #[serde(default)]
    loadpoints: Option<Vec<Option<Loadpoint>>>,
}

/// One loadpoint of the state.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Loadpoint {
    #[serde(default)]
    title: Option<String>,
    /// `None` when absent; `Some(Value::Null)` when evcc sent `null`.
    #[serde(default, deserialize_with = "present")]
    charge_total_import: Option<Value>,
}

/// Keeps an explicit `null` apart from an absent field.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A loadpoint's charge meter register, named, not yet stamped with a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Register {
    /// The external meter's name (see [`meter_name`]).
    pub(crate) meter: String,
    /// The register in kWh.
    pub(crate) value: Decimal,
}

/// The registers in an `/api/state` body, in loadpoint order; `Err` carries a
/// message that says what was wrong without quoting the body.
pub(crate) fn registers(body: &[u8]) -> Result<Vec<Register>, String> {
    let state: StateBody = serde_json::from_slice(body).map_err(|err| {
        format!(
            "evcc state is not readable ({:?} error at line {}, column {})",
            err.classify(),
            err.line(),
            err.column()
        )
        .to_lowercase()
    })?;
    let loadpoints = match state.result {
        Some(wrapped) => wrapped.loadpoints,
        None => state.loadpoints,
    }
    .ok_or_else(|| "evcc state has no loadpoints".to_owned())?;
    Ok(registers_of(&loadpoints))
}

/// The name of the external meter for the loadpoint at 1-based `position`:
/// its title, trimmed, if that is not empty, else `loadpoint-{position}`.
pub(crate) fn meter_name(position: usize, title: Option<&str>) -> String {
    match title.map(str::trim) {
        Some(title) if !title.is_empty() => title.to_owned(),
        _ => format!("loadpoint-{position}"),
    }
}

/// Why a loadpoint gives no reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unusable {
    /// `null`: evcc's encoding of NaN and infinity.
    NotFinite,
    /// A string, a boolean, an array or an object.
    NotANumber,
    /// A register never runs backwards below zero.
    Negative,
    /// What evcc publishes when reading the meter failed.
    Zero,
    /// Beyond a `Decimal`'s range.
    TooLarge,
}

impl Unusable {
    fn reason(self) -> &'static str {
        match self {
            Self::NotFinite => "chargeTotalImport is null (not finite)",
            Self::NotANumber => "chargeTotalImport is not a number",
            Self::Negative => "chargeTotalImport is negative",
            Self::Zero => "chargeTotalImport is 0, evcc's value when the meter could not be read",
            Self::TooLarge => "chargeTotalImport is too large",
        }
    }
}

/// A register value in kWh, rounded to [`REGISTER_DECIMALS`].
fn kwh(value: &Value) -> Result<Decimal, Unusable> {
    let Value::Number(number) = value else {
        return Err(if value.is_null() { Unusable::NotFinite } else { Unusable::NotANumber });
    };
    let kwh = if let Some(whole) = number.as_u64() {
        Decimal::from(whole)
    } else if number.is_i64() {
        return Err(Unusable::Negative);
    } else {
        let float = number.as_f64().ok_or(Unusable::NotANumber)?;
        if !float.is_finite() {
            return Err(Unusable::NotFinite);
        }
        if float < 0.0 {
            return Err(Unusable::Negative);
        }
        // The exact binary value, then rounded: evcc sent at most 3 decimals,
        // and the float parsed from them is within far less than 0.0005 of them.
        Decimal::from_f64_retain(float)
            .ok_or(Unusable::TooLarge)?
            .round_dp_with_strategy(REGISTER_DECIMALS, RoundingStrategy::MidpointNearestEven)
    };
    if kwh.is_zero() {
        return Err(Unusable::Zero);
    }
    Ok(kwh.normalize())
}

fn registers_of(loadpoints: &[Option<Loadpoint>]) -> Vec<Register> {
    let named: Vec<(usize, String, &Loadpoint)> = loadpoints
        .iter()
        .enumerate()
        .filter_map(|(index, loadpoint)| {
            let loadpoint = loadpoint.as_ref()?;
            let position = index + 1;
            Some((position, meter_name(position, loadpoint.title.as_deref()), loadpoint))
        })
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, name, _) in &named {
        *uses.entry(name.as_str()).or_default() += 1;
    }

    let mut registers = Vec::with_capacity(named.len());
    for (position, meter, loadpoint) in &named {
        if uses.get(meter.as_str()).copied().unwrap_or_default() > 1 {
            tracing::warn!(
                loadpoint = position,
                meter = meter.as_str(),
                "evcc loadpoint skipped: another loadpoint has the same meter name"
            );
            continue;
        }
        let Some(total) = &loadpoint.charge_total_import else {
            tracing::debug!(
                loadpoint = position,
                meter = meter.as_str(),
                "evcc loadpoint has no total counter"
            );
            continue;
        };
        match kwh(total) {
            Ok(value) => registers.push(Register { meter: meter.clone(), value }),
            Err(Unusable::Zero) => {
                tracing::debug!(loadpoint = position, meter = meter.as_str(), "{}", Unusable::Zero.reason());
            }
            Err(unusable) => {
                tracing::warn!(
                    loadpoint = position,
                    meter = meter.as_str(),
                    reason = unusable.reason(),
                    "evcc loadpoint skipped"
                );
            }
        }
    }
    registers
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde_json::json;

    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn register(meter: &str, value: &str) -> Register {
        Register { meter: meter.to_owned(), value: dec(value) }
    }

    fn registers_in(state: &Value) -> Vec<Register> {
        registers(state.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_current_state_gives_each_counted_loadpoint_its_register() {
        let body = include_bytes!("../testdata/state-0.207.json");
        assert_eq!(
            registers(body).unwrap(),
            vec![register("Garage", "1234.567"), register("Carport", "6539.884")]
        );
    }

    #[test]
    fn the_result_wrapped_state_of_older_versions_is_read_the_same() {
        let body = include_bytes!("../testdata/state-0.133-result.json");
        assert_eq!(
            registers(body).unwrap(),
            vec![register("loadpoint-1", "812.25"), register("Stellplatz", "20101.277")]
        );
    }

    #[test]
    fn a_loadpoint_is_named_by_its_trimmed_title_or_else_its_position() {
        assert_eq!(meter_name(1, Some("Garage")), "Garage");
        assert_eq!(meter_name(2, Some("  Carport ")), "Carport");
        assert_eq!(meter_name(3, Some("   ")), "loadpoint-3");
        assert_eq!(meter_name(4, None), "loadpoint-4");
    }

    #[test]
    fn a_loadpoint_without_a_total_counter_gives_no_register() {
        let state = json!({"loadpoints": [
            {"title": "Gäste", "chargePower": 0, "chargedEnergy": 0},
            {"title": "Garage", "chargeTotalImport": 10.5},
        ]});
        assert_eq!(registers_in(&state), vec![register("Garage", "10.5")]);
    }

    #[test]
    fn a_null_entry_is_passed_over_but_keeps_its_position() {
        let state = json!({"loadpoints": [null, {"chargeTotalImport": 7}]});
        assert_eq!(registers_in(&state), vec![register("loadpoint-2", "7")]);
    }

    #[test]
    fn the_value_keeps_exactly_the_decimals_evcc_sent() {
        for text in ["1234.567", "0.001", "0.1", "6663.93", "99999999.999", "1e3", "123456789012345"] {
            let body = format!(r#"{{"loadpoints":[{{"title":"A","chargeTotalImport":{text}}}]}}"#);
            let got = registers(body.as_bytes()).unwrap();
            let want = Decimal::from_scientific(text).or_else(|_| Decimal::from_str(text)).unwrap();
            assert_eq!(got, vec![Register { meter: "A".to_owned(), value: want }], "{text}");
        }
    }

    #[test]
    fn float_noise_beyond_a_watt_hour_is_rounded_away() {
        let state = json!({"loadpoints": [{"title": "A", "chargeTotalImport": 20101.277000000002}]});
        let got = registers_in(&state);
        assert_eq!(got, vec![register("A", "20101.277")]);
        assert_eq!(got[0].value.to_string(), "20101.277");
    }

    #[test]
    fn values_that_are_not_a_register_are_skipped() {
        assert_eq!(kwh(&json!(null)), Err(Unusable::NotFinite));
        assert_eq!(kwh(&json!("1234.5")), Err(Unusable::NotANumber));
        assert_eq!(kwh(&json!(true)), Err(Unusable::NotANumber));
        assert_eq!(kwh(&json!({"value": 1})), Err(Unusable::NotANumber));
        assert_eq!(kwh(&json!(-1)), Err(Unusable::Negative));
        assert_eq!(kwh(&json!(-0.5)), Err(Unusable::Negative));
        assert_eq!(kwh(&json!(0)), Err(Unusable::Zero));
        assert_eq!(kwh(&json!(0.0)), Err(Unusable::Zero));
        assert_eq!(kwh(&json!(1e300)), Err(Unusable::TooLarge));
    }

    #[test]
    fn skipped_loadpoints_do_not_hide_the_others() {
        let state = json!({"loadpoints": [
            {"title": "A", "chargeTotalImport": null},
            {"title": "B", "chargeTotalImport": -3.2},
            {"title": "C", "chargeTotalImport": 0},
            {"title": "D", "chargeTotalImport": "12"},
            {"title": "E", "chargeTotalImport": 42.042},
        ]});
        assert_eq!(registers_in(&state), vec![register("E", "42.042")]);
    }

    #[test]
    fn loadpoints_sharing_a_name_give_no_register() {
        let state = json!({"loadpoints": [
            {"title": "Garage", "chargeTotalImport": 100},
            {"title": " Garage", "chargeTotalImport": 200},
            {"title": "", "chargeTotalImport": 300},
            {"title": "loadpoint-3", "chargeTotalImport": 400},
            {"title": "Carport", "chargeTotalImport": 500},
        ]});
        assert_eq!(registers_in(&state), vec![register("Carport", "500")]);
    }

    #[test]
    fn a_state_without_loadpoints_is_not_evcc_state() {
        assert!(registers(br#"{"version":"0.207.0"}"#).is_err());
        assert!(registers(br#"{"result":{"version":"0.133.0"}}"#).is_err());
        assert_eq!(registers(br#"{"loadpoints":[]}"#).unwrap(), vec![]);
    }

    #[test]
    fn an_unreadable_body_is_described_without_quoting_it() {
        let err = registers(b"<html>secret-token</html>").unwrap_err();
        assert!(err.contains("line 1, column 1"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = registers(br#"{"loadpoints":[{"title":{"password":"hunter2"}}]}"#).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
