//! Sites: a tree per tenant (property, building, unit, any depth) that
//! meters hang from.

use portico_kernel::SiteId;

use crate::MeteringError;

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
