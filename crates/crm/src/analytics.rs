//! Sales figures (`GET /api/v1/crm/analytics`): value and weighted value per
//! stage, win rate, time to close, and conversion from lead to deal to won.
//!
//! A summary is in one currency. The domain has no exchange rates, so deal
//! values are never converted: deals in other currencies are left out of
//! the stages and counted apart, per currency, in `otherCurrencies`, so no
//! value disappears unseen. Rates are percentages with two decimals and
//! every rounding is half to even.

use chrono::{DateTime, Utc};
use portico_kernel::{Currency, Money, PipelineId, StageId};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::{CrmError, Deal, DealStatus, Pipeline, StageKind};

/// One stage's deals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StageSummary {
    /// The stage.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub stage_id: StageId,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: StageKind,
    /// How many deals are in it.
    pub deals: u64,
    /// Their value.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: Money,
    /// Their value times their probability, each deal rounded to the minor unit.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub weighted_value: Money,
}

/// Deals of a pipeline in a currency other than the summary's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CurrencyTotal {
    /// How many deals.
    pub deals: u64,
    /// Their value, in their currency.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: Money,
}

/// A pipeline's deals, stage by stage, in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PipelineSummary {
    /// The pipeline.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub pipeline_id: PipelineId,
    /// Its name.
    pub name: String,
    /// The currency of every value in the stages and totals.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// Every stage, in order, with or without deals.
    pub stages: Vec<StageSummary>,
    /// How many deals are open.
    pub open_deals: u64,
    /// The value of the open deals: what the pipeline holds.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub open_value: Money,
    /// The weighted value of the open deals: what the pipeline is expected to bring.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub weighted_value: Money,
    /// The deals in other currencies, one entry per currency (by code), not in the figures above.
    pub other_currencies: Vec<CurrencyTotal>,
}

/// Conversion through the funnel, in percent; `null` when nothing entered a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConversionRates {
    /// Leads whose conversion made a deal (still there; with a pipeline asked
    /// for, a deal on it), of all the tenant's leads. A lead converted without
    /// a deal did not become one.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "25.00"))]
    pub lead_to_deal: Option<Decimal>,
    /// Deals won, of all deals.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "33.33"))]
    pub deal_to_won: Option<Decimal>,
}

/// What `GET /api/v1/crm/analytics` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "pipelines": [{
        "pipelineId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e10", "name": "Sales", "currency": "EUR",
        "stages": [{"stageId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e11", "name": "Proposal", "kind": "open",
                    "deals": 2, "value": {"amountMinor": 300000, "currency": "EUR"},
                    "weightedValue": {"amountMinor": 150000, "currency": "EUR"}}],
        "openDeals": 2, "openValue": {"amountMinor": 300000, "currency": "EUR"},
        "weightedValue": {"amountMinor": 150000, "currency": "EUR"},
        "otherCurrencies": [{"deals": 1, "value": {"amountMinor": 500000, "currency": "USD"}}]
    }],
    "winRate": "60.00", "averageDaysToClose": "23.5",
    "conversion": {"leadToDeal": "25.00", "dealToWon": "33.33"}
})))]
#[serde(rename_all = "camelCase")]
pub struct CrmAnalytics {
    /// Each pipeline's summary.
    pub pipelines: Vec<PipelineSummary>,
    /// See [`win_rate`].
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub win_rate: Option<Decimal>,
    /// See [`average_days_to_close`].
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub average_days_to_close: Option<Decimal>,
    /// See [`conversion_rates`].
    pub conversion: ConversionRates,
}

/// `value` times `probability` percent, rounded half to even to the minor unit.
#[must_use]
pub fn weighted_value(value: Money, probability: u8) -> Money {
    let exact =
        Decimal::from(value.amount_minor()) * Decimal::from(probability.min(100)) / Decimal::ONE_HUNDRED;
    let rounded = exact.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    // At most 100 %, so never larger than `value` itself.
    Money::from_minor(i64::try_from(rounded).unwrap_or(value.amount_minor()), value.currency())
}

/// `pipeline`'s deals in `currency`, stage by stage. Deals of other
/// pipelines, or of a stage the pipeline no longer has, are not counted;
/// deals in other currencies are counted apart.
pub fn pipeline_summary(
    pipeline: &Pipeline,
    deals: &[Deal],
    currency: Currency,
) -> Result<PipelineSummary, CrmError> {
    let zero = Money::zero(currency);
    let mut stages: Vec<StageSummary> = pipeline
        .stages
        .iter()
        .map(|stage| StageSummary {
            stage_id: stage.id,
            name: stage.name.clone(),
            kind: stage.kind,
            deals: 0,
            value: zero,
            weighted_value: zero,
        })
        .collect();
    let mut other_currencies: Vec<CurrencyTotal> = Vec::new();
    for deal in deals.iter().filter(|deal| deal.pipeline_id == pipeline.id) {
        let Some(stage) = stages.iter_mut().find(|stage| stage.stage_id == deal.stage_id) else { continue };
        if deal.value.currency() != currency {
            match other_currencies.iter_mut().find(|total| total.value.currency() == deal.value.currency()) {
                Some(total) => {
                    total.deals += 1;
                    total.value = add(total.value, deal.value)?;
                }
                None => other_currencies.push(CurrencyTotal { deals: 1, value: deal.value }),
            }
            continue;
        }
        stage.deals += 1;
        stage.value = add(stage.value, deal.value)?;
        stage.weighted_value =
            add(stage.weighted_value, weighted_value(deal.value, deal.probability(pipeline)))?;
    }
    other_currencies.sort_by_key(|total| total.value.currency());
    let (mut open_deals, mut open_value, mut weighted_value) = (0, zero, zero);
    for stage in stages.iter().filter(|stage| stage.kind == StageKind::Open) {
        open_deals += stage.deals;
        open_value = add(open_value, stage.value)?;
        weighted_value = add(weighted_value, stage.weighted_value)?;
    }
    Ok(PipelineSummary {
        pipeline_id: pipeline.id,
        name: pipeline.name.clone(),
        currency,
        stages,
        open_deals,
        open_value,
        weighted_value,
        other_currencies,
    })
}

/// Deals won, of the deals won or lost, in percent; `None` when none is closed.
#[must_use]
pub fn win_rate(deals: &[Deal]) -> Option<Decimal> {
    let won = deals.iter().filter(|deal| matches!(deal.status, DealStatus::Won { .. })).count();
    let lost = deals.iter().filter(|deal| matches!(deal.status, DealStatus::Lost { .. })).count();
    percent(won as u64, (won + lost) as u64)
}

/// The average time from creation to winning, over the won deals, in days
/// with one decimal; `None` when none is won. Lost deals do not count: this
/// is how long a sale takes.
#[must_use]
pub fn average_days_to_close(deals: &[Deal]) -> Option<Decimal> {
    let seconds: Vec<i64> = deals
        .iter()
        .filter_map(|deal| match deal.status {
            DealStatus::Won { closed_at, .. } => Some(seconds_between(deal.created_at, closed_at)),
            _ => None,
        })
        .collect();
    if seconds.is_empty() {
        return None;
    }
    let total: Decimal = seconds.iter().copied().map(Decimal::from).sum();
    let days = total / Decimal::from(seconds.len() as u64) / Decimal::from(86_400);
    Some(days.round_dp_with_strategy(1, RoundingStrategy::MidpointNearestEven))
}

/// Conversion from `leads_total` leads, `leads_with_deal` of them converted
/// into a deal, and `deals_total` deals, `deals_won` of them won.
#[must_use]
pub fn conversion_rates(
    leads_total: u64,
    leads_with_deal: u64,
    deals_total: u64,
    deals_won: u64,
) -> ConversionRates {
    ConversionRates {
        lead_to_deal: percent(leads_with_deal, leads_total),
        deal_to_won: percent(deals_won, deals_total),
    }
}

/// One stage's deals in one currency, added up where they are stored (a
/// store sums in SQL rather than loading every deal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageTotals {
    /// The stage.
    pub stage_id: StageId,
    /// How many deals.
    pub deals: u64,
    /// Their value; its currency is the deals' currency.
    pub value: Money,
    /// The sum of each deal's [`weighted_value`] at its probability.
    pub weighted_value: Money,
}

/// [`pipeline_summary`] from totals already added up per stage and
/// currency: the same figures, without the deals themselves. Totals of
/// stages the pipeline no longer has are not counted.
pub fn summarise_pipeline(
    pipeline: &Pipeline,
    totals: &[StageTotals],
    currency: Currency,
) -> Result<PipelineSummary, CrmError> {
    let mut summary = pipeline_summary(pipeline, &[], currency)?;
    for total in totals {
        let Some(stage) = summary.stages.iter_mut().find(|stage| stage.stage_id == total.stage_id) else {
            continue;
        };
        if total.value.currency() != currency {
            match summary
                .other_currencies
                .iter_mut()
                .find(|other| other.value.currency() == total.value.currency())
            {
                Some(other) => {
                    other.deals += total.deals;
                    other.value = add(other.value, total.value)?;
                }
                None => {
                    summary.other_currencies.push(CurrencyTotal { deals: total.deals, value: total.value })
                }
            }
            continue;
        }
        stage.deals += total.deals;
        stage.value = add(stage.value, total.value)?;
        stage.weighted_value = add(stage.weighted_value, total.weighted_value)?;
        if stage.kind == StageKind::Open {
            summary.open_deals += total.deals;
            summary.open_value = add(summary.open_value, total.value)?;
            summary.weighted_value = add(summary.weighted_value, total.weighted_value)?;
        }
    }
    summary.other_currencies.sort_by_key(|other| other.value.currency());
    Ok(summary)
}

/// [`win_rate`] from counts: `won` of `won + lost`, in percent.
#[must_use]
pub fn win_rate_of(won: u64, lost: u64) -> Option<Decimal> {
    percent(won, won.saturating_add(lost))
}

/// [`average_days_to_close`] from the whole seconds each won deal took
/// (added up) and how many were won.
#[must_use]
pub fn average_days_of(total_seconds: Decimal, won: u64) -> Option<Decimal> {
    if won == 0 {
        return None;
    }
    let days = total_seconds / Decimal::from(won) / Decimal::from(86_400);
    Some(days.round_dp_with_strategy(1, RoundingStrategy::MidpointNearestEven))
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds().max(0)
}

fn percent(part: u64, whole: u64) -> Option<Decimal> {
    if whole == 0 {
        return None;
    }
    let rate = Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole);
    Some(rate.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven))
}

fn add(a: Money, b: Money) -> Result<Money, CrmError> {
    a.checked_add(b).map_err(|_| CrmError::TotalOutOfRange)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::{Duration, TimeZone};
    use portico_kernel::{DealId, UserId};

    use super::*;

    fn day(d: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, hour, 0, 0).unwrap()
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn stage(pipeline: &Pipeline, name: &str) -> StageId {
        pipeline.stages.iter().find(|stage| stage.name == name).unwrap().id
    }

    fn deal(pipeline: &Pipeline, stage_name: &str, value: Money) -> Deal {
        let status = match pipeline.stage(stage(pipeline, stage_name)).unwrap().kind {
            StageKind::Open => DealStatus::Open,
            StageKind::Won => DealStatus::Won { closed_at: day(20, 9), reason: None },
            StageKind::Lost => DealStatus::Lost { closed_at: day(20, 9), reason: "Price".into() },
        };
        Deal {
            id: DealId::new(),
            title: "Deal".into(),
            value,
            pipeline_id: pipeline.id,
            stage_id: stage(pipeline, stage_name),
            probability_override: None,
            expected_close_date: None,
            owner_id: UserId::new(),
            contact_id: None,
            company_id: None,
            status,
            created_at: day(1, 9),
            updated_at: day(1, 9),
        }
    }

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, currency("EUR"))
    }

    fn won_after(created_at: DateTime<Utc>, closed_at: DateTime<Utc>) -> Deal {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let status = DealStatus::Won { closed_at, reason: None };
        Deal { created_at, status, ..deal(&pipeline, "Won", eur(100)) }
    }

    #[test]
    fn totals_per_stage_summarise_like_the_deals_themselves() {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let deals = [
            deal(&pipeline, "Lead in", eur(1005)),
            deal(&pipeline, "Lead in", eur(2_000)),
            deal(&pipeline, "Proposal", eur(1015)),
            deal(&pipeline, "Won", eur(50_000)),
            deal(&pipeline, "Lost", eur(70_000)),
            deal(&pipeline, "Proposal", Money::from_minor(700, currency("USD"))),
            deal(&pipeline, "Won", Money::from_minor(300, currency("USD"))),
        ];
        let mut totals: Vec<StageTotals> = Vec::new();
        for deal in &deals {
            let weighted = weighted_value(deal.value, deal.probability(&pipeline));
            match totals
                .iter_mut()
                .find(|t| t.stage_id == deal.stage_id && t.value.currency() == deal.value.currency())
            {
                Some(t) => {
                    t.deals += 1;
                    t.value = t.value.checked_add(deal.value).unwrap();
                    t.weighted_value = t.weighted_value.checked_add(weighted).unwrap();
                }
                None => totals.push(StageTotals {
                    stage_id: deal.stage_id,
                    deals: 1,
                    value: deal.value,
                    weighted_value: weighted,
                }),
            }
        }
        let expected = pipeline_summary(&pipeline, &deals, currency("EUR")).unwrap();
        assert_eq!(summarise_pipeline(&pipeline, &totals, currency("EUR")).unwrap(), expected);
        assert_eq!(
            expected.other_currencies,
            vec![CurrencyTotal { deals: 2, value: Money::from_minor(1000, currency("USD")) }]
        );
    }

    #[test]
    fn rates_from_counts_match_the_rates_from_deals() {
        assert_eq!(win_rate_of(3, 2), Some(dec("60.00")));
        assert_eq!(win_rate_of(1, 2), Some(dec("33.33")));
        assert_eq!(win_rate_of(0, 0), None);
        assert_eq!(average_days_of(Decimal::from(3 * 86_400 + 43_200), 1), Some(dec("3.5")));
        assert_eq!(average_days_of(Decimal::from(86_400 + 8_640 / 2), 2), Some(dec("0.5")));
        assert_eq!(average_days_of(Decimal::ZERO, 0), None);
    }

    #[test]
    fn weighting_rounds_each_deal_half_to_even_in_minor_units() {
        assert_eq!(weighted_value(eur(1005), 50), eur(502)); // 502.5 -> 502
        assert_eq!(weighted_value(eur(1015), 50), eur(508)); // 507.5 -> 508
        assert_eq!(weighted_value(eur(333), 25), eur(83)); // 83.25 -> 83
        assert_eq!(weighted_value(eur(999), 100), eur(999));
        assert_eq!(weighted_value(eur(999), 0), eur(0));
        let jpy = Money::from_minor(1001, currency("JPY"));
        assert_eq!(weighted_value(jpy, 50), Money::from_minor(500, currency("JPY"))); // 500.5 -> 500
    }

    #[test]
    fn a_summary_adds_up_each_stage_and_the_open_deals() {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let overridden = Deal { probability_override: Some(40), ..deal(&pipeline, "Proposal", eur(1015)) };
        let deals = [
            deal(&pipeline, "Lead in", eur(1005)),  // 10 %: 100.5 -> 100
            deal(&pipeline, "Lead in", eur(2_000)), // 10 %: 200
            deal(&pipeline, "Proposal", eur(1015)), // 50 %: 507.5 -> 508
            overridden,                             // 40 %: 406
            deal(&pipeline, "Won", eur(50_000)),    // 100 %
            deal(&pipeline, "Lost", eur(70_000)),   // 0 %
        ];
        let summary = pipeline_summary(&pipeline, &deals, currency("EUR")).unwrap();
        let rows: Vec<(&str, u64, Money, Money)> =
            summary.stages.iter().map(|s| (s.name.as_str(), s.deals, s.value, s.weighted_value)).collect();
        assert_eq!(
            rows,
            [
                ("Lead in", 2, eur(3005), eur(300)),
                ("Qualified", 0, eur(0), eur(0)),
                ("Proposal", 2, eur(2030), eur(914)),
                ("Negotiation", 0, eur(0), eur(0)),
                ("Won", 1, eur(50_000), eur(50_000)),
                ("Lost", 1, eur(70_000), eur(0)),
            ]
        );
        assert_eq!(
            (summary.open_deals, summary.open_value, summary.weighted_value),
            (4, eur(5035), eur(1214))
        );
        assert!(summary.other_currencies.is_empty());
    }

    #[test]
    fn deals_in_other_currencies_are_counted_apart_per_currency() {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let usd = |minor| Money::from_minor(minor, currency("USD"));
        let chf = |minor| Money::from_minor(minor, currency("CHF"));
        let deals = [
            deal(&pipeline, "Proposal", eur(1000)),
            deal(&pipeline, "Proposal", usd(300)),
            deal(&pipeline, "Won", usd(200)),
            deal(&pipeline, "Lead in", chf(50)),
        ];
        let summary = pipeline_summary(&pipeline, &deals, currency("EUR")).unwrap();
        assert_eq!(
            (summary.open_deals, summary.open_value, summary.weighted_value),
            (1, eur(1000), eur(500))
        );
        assert_eq!(
            summary.other_currencies,
            [CurrencyTotal { deals: 1, value: chf(50) }, CurrencyTotal { deals: 2, value: usd(500) }]
        );
    }

    #[test]
    fn deals_of_other_pipelines_are_not_counted() {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let other = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let summary =
            pipeline_summary(&pipeline, &[deal(&other, "Proposal", eur(1000))], currency("EUR")).unwrap();
        assert_eq!(summary.open_deals, 0);
        assert!(summary.stages.iter().all(|stage| stage.deals == 0));
    }

    #[test]
    fn a_total_beyond_64_bits_is_an_error_not_a_wrap() {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let deals = [deal(&pipeline, "Won", eur(i64::MAX)), deal(&pipeline, "Won", eur(1))];
        assert!(matches!(
            pipeline_summary(&pipeline, &deals, currency("EUR")),
            Err(CrmError::TotalOutOfRange)
        ));
    }

    #[test]
    fn the_win_rate_is_won_of_closed_deals() {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let deals = [
            deal(&pipeline, "Won", eur(1)),
            deal(&pipeline, "Lost", eur(1)),
            deal(&pipeline, "Lost", eur(1)),
            deal(&pipeline, "Proposal", eur(1)),
        ];
        assert_eq!(win_rate(&deals), Some(dec("33.33")));
        assert_eq!(win_rate(&deals[..2]), Some(dec("50.00")));
        assert_eq!(win_rate(&deals[3..]), None, "no closed deal");
    }

    #[test]
    fn the_average_time_to_close_counts_won_deals_in_days() {
        let pipeline = Pipeline::default_sales(PipelineId::new(), day(1, 0));
        let deals = [
            won_after(day(1, 9), day(11, 21)),   // 10.5 days
            won_after(day(1, 9), day(3, 9)),     // 2 days
            deal(&pipeline, "Lost", eur(1)),     // not counted
            deal(&pipeline, "Proposal", eur(1)), // not counted
        ];
        // (10.5 + 2) / 2 = 6.25 -> 6.2 (half to even)
        assert_eq!(average_days_to_close(&deals), Some(dec("6.2")));
        assert_eq!(average_days_to_close(&deals[2..]), None);
        let same_day = won_after(day(5, 9), day(5, 9) + Duration::hours(6));
        assert_eq!(average_days_to_close(&[same_day]), Some(dec("0.2"))); // 0.25 -> 0.2
    }

    #[test]
    fn conversion_rates_follow_the_funnel() {
        let rates = conversion_rates(200, 50, 30, 10);
        assert_eq!(
            rates,
            ConversionRates { lead_to_deal: Some(dec("25.00")), deal_to_won: Some(dec("33.33")) }
        );
        let empty = conversion_rates(0, 0, 3, 2);
        assert_eq!(empty, ConversionRates { lead_to_deal: None, deal_to_won: Some(dec("66.67")) });
    }

    #[test]
    fn rates_serialise_as_decimal_strings() {
        let json = serde_json::to_value(conversion_rates(3, 1, 0, 0)).unwrap();
        assert_eq!(json, serde_json::json!({"leadToDeal": "33.33", "dealToWon": null}));
    }
}
