//! Sites: a tree per tenant (property, building, unit, any depth) that
//! meters hang from.

use portico_kernel::SiteId;

use crate::MeteringError;
use portico_kernel::text::{plain_text, plain_text_opt};

/// What a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    /// A property (a plot with its buildings).
    Property,
    /// A building.
    Building,
    /// A unit: a flat, an office, a shop.
    Unit,
    /// A charge point, a plant room, anything else.
    Other,
}

/// A place of the tenant's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Site {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: SiteId,
    /// The site it belongs to; none for a top-level site.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub parent_id: Option<SiteId>,
    /// What it is.
    pub kind: SiteKind,
    /// Its name.
    pub name: String,
    /// Its reference in the tenant's other systems.
    pub external_ref: Option<String>,
}

/// Creates a site or changes one (`POST`/`PUT /api/v1/metering/sites`): a
/// change replaces every field, so moving a site is a change of `parentId`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "parentId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f20", "kind": "unit", "name": "Flat 3.2",
    "externalRef": "HV-0032"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteDraft {
    /// The site it belongs to; none for a top-level site.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub parent_id: Option<SiteId>,
    /// What it is.
    #[garde(skip)]
    pub kind: SiteKind,
    /// 1 to 200 characters, not blank.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub name: String,
    /// Its reference in the tenant's other systems: 1 to 128 characters,
    /// unique among the tenant's sites.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 128), custom(plain_text_opt))]
    pub external_ref: Option<String>,
}

impl SiteDraft {
    /// The site `id` as the draft describes it, checked (its place in the
    /// tree is checked by [`check_parent`] against the stored sites).
    pub fn validated(self, id: SiteId) -> Result<Site, MeteringError> {
        garde::Validate::validate(&self).map_err(|report| MeteringError::Invalid(report.into()))?;
        if self.parent_id == Some(id) {
            return Err(MeteringError::SiteCycle);
        }
        Ok(Site {
            id,
            parent_id: self.parent_id,
            kind: self.kind,
            name: self.name,
            external_ref: self.external_ref,
        })
    }
}

/// Checks that placing `site` below `new_parent` keeps the tree a tree:
/// `parent_of` answers each site's current parent. A site may not sit below
/// itself or any of its descendants.
pub fn check_parent(
    site: SiteId,
    new_parent: Option<SiteId>,
    parent_of: impl Fn(SiteId) -> Option<SiteId>,
) -> Result<(), MeteringError> {
    let mut next = new_parent;
    // A tree of any depth, but a finite one: a cycle already stored cannot loop forever.
    for _ in 0..10_000 {
        match next {
            None => return Ok(()),
            Some(ancestor) if ancestor == site => return Err(MeteringError::SiteCycle),
            Some(ancestor) => next = parent_of(ancestor),
        }
    }
    Err(MeteringError::SiteCycle)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_site_cannot_sit_below_itself_or_its_descendants() {
        let (property, building, unit, other) = (SiteId::new(), SiteId::new(), SiteId::new(), SiteId::new());
        let parents = HashMap::from([(building, property), (unit, building)]);
        let parent_of = |id: SiteId| parents.get(&id).copied();
        assert!(check_parent(unit, Some(property), parent_of).is_ok(), "moving up the tree");
        assert!(check_parent(other, Some(unit), parent_of).is_ok(), "a new branch");
        assert!(check_parent(property, None, parent_of).is_ok());
        assert!(matches!(check_parent(property, Some(unit), parent_of), Err(MeteringError::SiteCycle)));
        assert!(matches!(check_parent(unit, Some(unit), parent_of), Err(MeteringError::SiteCycle)));
    }
}
