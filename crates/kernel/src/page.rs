//! Pagination: what a caller asks for and what a list returns.

/// Why a page request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// Pages are numbered from 1.
    #[error("page must be 1 or more")]
    PageOutOfRange,
    /// `limit` must be between 1 and [`PageRequest::MAX_LIMIT`].
    #[error("limit must be between 1 and {max}")]
    LimitOutOfRange {
        /// The largest limit accepted.
        max: u32,
    },
}

/// A request for one page of a list: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PageRequest {
    page: u32,
    limit: u32,
}

impl PageRequest {
    /// The page size when the caller names none.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// The largest page a caller may ask for.
    pub const MAX_LIMIT: u32 = 100;

    /// A checked page request; a limit above [`Self::MAX_LIMIT`] is refused, not clamped.
    pub fn new(page: u32, limit: u32) -> Result<Self, PageError> {
        if page == 0 {
            return Err(PageError::PageOutOfRange);
        }
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(PageError::LimitOutOfRange { max: Self::MAX_LIMIT });
        }
        Ok(Self { page, limit })
    }

    /// The 1-based page number.
    #[must_use]
    pub const fn page(&self) -> u32 {
        self.page
    }

    /// The page size.
    #[must_use]
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Rows to skip before this page.
    #[must_use]
    pub const fn offset(&self) -> u64 {
        (self.page as u64 - 1) * self.limit as u64
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { page: 1, limit: Self::DEFAULT_LIMIT }
    }
}

/// One page of results with the numbers a client needs to page on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// The 1-based page number.
    pub page: u32,
    /// The page size asked for.
    pub limit: u32,
    /// Rows across all pages.
    pub total: u64,
    /// Pages in all (0 when there are no rows).
    pub total_pages: u64,
}

impl<T> Page<T> {
    /// Wraps the rows of `request`'s page, out of `total` rows in all.
    #[must_use]
    pub fn new(items: Vec<T>, request: PageRequest, total: u64) -> Self {
        Self {
            items,
            page: request.page,
            limit: request.limit,
            total,
            total_pages: total.div_ceil(u64::from(request.limit)),
        }
    }

    /// The same page with each row converted.
    #[must_use]
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            limit: self.limit,
            total: self.total,
            total_pages: self.total_pages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_counts_the_rows_before_the_page() {
        assert_eq!(PageRequest::new(1, 20).unwrap().offset(), 0);
        assert_eq!(PageRequest::new(3, 25).unwrap().offset(), 50);
        assert_eq!(PageRequest::new(u32::MAX, 100).unwrap().offset(), (u64::from(u32::MAX) - 1) * 100);
    }

    #[test]
    fn bad_requests_are_refused_not_clamped() {
        assert_eq!(PageRequest::new(0, 10), Err(PageError::PageOutOfRange));
        assert_eq!(PageRequest::new(1, 0), Err(PageError::LimitOutOfRange { max: 100 }));
        assert_eq!(PageRequest::new(1, 101), Err(PageError::LimitOutOfRange { max: 100 }));
        assert!(PageRequest::new(1, 100).is_ok());
    }

    #[test]
    fn default_is_the_first_page_of_twenty() {
        let request = PageRequest::default();
        assert_eq!((request.page(), request.limit()), (1, 20));
    }

    #[test]
    fn total_pages_rounds_up_and_is_zero_when_empty() {
        let request = PageRequest::new(1, 10).unwrap();
        assert_eq!(Page::new(vec![1; 10], request, 21).total_pages, 3);
        assert_eq!(Page::new(vec![1; 10], request, 20).total_pages, 2);
        assert_eq!(Page::<u8>::new(vec![], request, 0).total_pages, 0);
    }

    #[test]
    fn serialises_with_camel_case_totals() {
        let page = Page::new(vec!["a"], PageRequest::new(2, 1).unwrap(), 2);
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"items": ["a"], "page": 2, "limit": 1, "total": 2, "totalPages": 2})
        );
    }

    #[test]
    fn map_keeps_the_numbers() {
        let page = Page::new(vec![1, 2], PageRequest::new(1, 2).unwrap(), 5).map(|n| n * 10);
        assert_eq!((page.items, page.total, page.total_pages), (vec![10, 20], 5, 3));
    }
}
