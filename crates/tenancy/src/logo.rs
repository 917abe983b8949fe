//! A tenant's logo: which uploads are accepted, checked before anything is stored.
//!
//! Logos are served to browsers from our own origin. A PNG or JPEG is inert
//! data, so for those it is enough that the bytes really are the declared
//! format and of a sane size. An SVG, though, is an active document: opened
//! directly it can run scripts, follow links, load remote stylesheets and
//! images, all with our origin's cookies. So an SVG is parsed and held to an
//! allow-list of drawing elements and local (`#id`) references; anything
//! else is refused rather than cleaned, so what is stored is exactly what
//! the tenant uploaded.
//!
//! Only headers are read: a PNG's IHDR chunk and a JPEG's frame header give
//! the dimensions, and the image itself is left to the browser to decode.
//!
//! ```
//! use portico_tenancy::logo::{LogoError, LogoFormat, inspect};
//!
//! let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="48" height="24"><rect width="48" height="24"/></svg>"#;
//! let logo = inspect(svg, "image/svg+xml").unwrap();
//! assert_eq!((logo.format, logo.width, logo.height), (LogoFormat::Svg, Some(48), Some(24)));
//!
//! let hostile = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#;
//! assert_eq!(inspect(hostile, "image/svg+xml").unwrap_err().code(), "tenancy.logo_unsafe_svg");
//! ```

use std::fmt;

use portico_kernel::{DomainError, ErrorKind};
use serde::Serialize;

/// Largest logo accepted, in bytes.
pub const LOGO_MAX_BYTES: usize = 512 * 1024;

/// Longest side a logo may have, in pixels (for an SVG, in its own units).
pub const LOGO_MAX_DIMENSION: u32 = 4096;

/// The formats a logo may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogoFormat {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF or Exif).
    Jpeg,
    /// Scalable Vector Graphics, restricted to drawing (see the module docs).
    Svg,
}

impl LogoFormat {
    /// The media type the logo is served with.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Svg => "image/svg+xml",
        }
    }

    /// The file extension, without the dot.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Svg => "svg",
        }
    }

    /// The format a declared media type names, ignoring case and parameters
    /// (`image/svg+xml; charset=utf-8`); `image/jpg` is taken for JPEG.
    #[must_use]
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let essence = media_type(ct);
        [
            ("image/png", Self::Png),
            ("image/jpeg", Self::Jpeg),
            ("image/jpg", Self::Jpeg),
            ("image/svg+xml", Self::Svg),
        ]
        .into_iter()
        .find_map(|(name, format)| essence.eq_ignore_ascii_case(name).then_some(format))
    }
}

impl fmt::Display for LogoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Svg => "SVG",
        })
    }
}

/// A logo that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logo {
    /// What the bytes are (and were declared as).
    pub format: LogoFormat,
    /// Width in pixels; for an SVG, only when it states one.
    pub width: Option<u32>,
    /// Height in pixels; for an SVG, only when it states one.
    pub height: Option<u32>,
    /// Size of the upload in bytes.
    pub size: usize,
}

/// Why a logo is refused; each variant has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoError {
    /// Bigger than [`LOGO_MAX_BYTES`].
    #[error("the logo is {size} bytes; the most is {max}")]
    TooLarge {
        /// The upload's size in bytes.
        size: usize,
        /// The most accepted.
        max: usize,
    },
    /// No bytes at all.
    #[error("the logo is empty")]
    Empty,
    /// The declared media type is not PNG, JPEG or SVG.
    #[error("a logo must be PNG, JPEG or SVG, not `{0}`")]
    UnsupportedType(String),
    /// The bytes are not the declared format (a text file sent as `image/png`).
    #[error("the content is not {declared}")]
    ContentMismatch {
        /// The format the upload claimed to be.
        declared: LogoFormat,
    },
    /// The declared format, but broken: a truncated header, an SVG that does
    /// not parse, a side of 0 or over [`LOGO_MAX_DIMENSION`].
    #[error("the logo is malformed: {0}")]
    Malformed(String),
    /// An SVG with active or external content; names what was found
    /// (`element <script>`, `attribute onload`, `external reference in href`).
    #[error("the SVG is not safe to serve: {0}")]
    UnsafeSvg(String),
}

impl LogoError {
    /// The stable, machine-readable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "tenancy.logo_too_large",
            Self::Empty => "tenancy.logo_empty",
            Self::UnsupportedType(_) => "tenancy.logo_unsupported_type",
            Self::ContentMismatch { .. } => "tenancy.logo_content_mismatch",
            Self::Malformed(_) => "tenancy.logo_malformed",
            Self::UnsafeSvg(_) => "tenancy.logo_unsafe_svg",
        }
    }
}

impl DomainError for LogoError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Validation
    }

    fn code(&self) -> &'static str {
        Self::code(self)
    }
}

/// Checks `bytes` declared as `content_type`: the size, that the content
/// really is that format, and for SVG that it is safe to serve.
pub fn inspect(bytes: &[u8], content_type: &str) -> Result<Logo, LogoError> {
    if bytes.is_empty() {
        return Err(LogoError::Empty);
    }
    if bytes.len() > LOGO_MAX_BYTES {
        return Err(LogoError::TooLarge { size: bytes.len(), max: LOGO_MAX_BYTES });
    }
    let format = LogoFormat::from_content_type(content_type)
        .ok_or_else(|| LogoError::UnsupportedType(shown(media_type(content_type))))?;
    let (width, height) = match format {
        LogoFormat::Png => png_dimensions(bytes).map(|(w, h)| (Some(w), Some(h)))?,
        LogoFormat::Jpeg => jpeg_dimensions(bytes).map(|(w, h)| (Some(w), Some(h)))?,
        LogoFormat::Svg => svg_dimensions(bytes)?,
    };
    Ok(Logo { format, width, height, size: bytes.len() })
}

/// The media type without its parameters.
fn media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or_default().trim()
}

/// At most 64 characters of something the uploader chose, for a message.
fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

fn malformed(reason: &str) -> LogoError {
    LogoError::Malformed(reason.to_owned())
}

fn unsafe_svg(reason: String) -> LogoError {
    LogoError::UnsafeSvg(reason)
}

/// Both sides within 1..=[`LOGO_MAX_DIMENSION`].
fn checked_size(width: u32, height: u32) -> Result<(u32, u32), LogoError> {
    let side = 1..=LOGO_MAX_DIMENSION;
    if side.contains(&width) && side.contains(&height) {
        Ok((width, height))
    } else {
        Err(LogoError::Malformed(format!(
            "it is {width}x{height}; each side must be 1 to {LOGO_MAX_DIMENSION} pixels"
        )))
    }
}

/// `bytes` must start with `magic`; a shorter upload that is a start of it
/// was cut off (malformed), anything else is another kind of file.
fn expect_magic(bytes: &[u8], magic: &[u8], declared: LogoFormat) -> Result<(), LogoError> {
    if bytes.starts_with(magic) {
        Ok(())
    } else if magic.starts_with(bytes) {
        Err(LogoError::Malformed(format!("the {declared} signature is cut off")))
    } else {
        Err(LogoError::ContentMismatch { declared })
    }
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    Some(u16::from_be_bytes(bytes.get(at..end)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_be_bytes(bytes.get(at..end)?.try_into().ok()?))
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_SOI: &[u8] = b"\xFF\xD8\xFF";

/// A PNG's size from its first chunk, which must be a well-formed IHDR. The
/// chunk's CRC is not checked: a corrupt image is the browser's to refuse.
fn png_dimensions(bytes: &[u8]) -> Result<(u32, u32), LogoError> {
    expect_magic(bytes, PNG_SIGNATURE, LogoFormat::Png)?;
    // Length (4), type (4), 13 bytes of data, CRC (4).
    let ihdr = bytes.get(8..33).ok_or_else(|| malformed("the PNG header chunk is cut off"))?;
    if be_u32(ihdr, 0) != Some(13) || ihdr.get(4..8) != Some(b"IHDR") {
        return Err(malformed("the PNG does not start with a header (IHDR) chunk"));
    }
    let field = |at: usize| ihdr.get(at).copied().unwrap_or_default();
    let (bit_depth, colour_type) = (field(16), field(17));
    let depth_fits = match colour_type {
        0 => matches!(bit_depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(bit_depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(bit_depth, 8 | 16),
        _ => false,
    };
    if !depth_fits || field(18) != 0 || field(19) != 0 || field(20) > 1 {
        return Err(malformed("the PNG header has an invalid pixel format"));
    }
    let width = be_u32(ihdr, 8).unwrap_or_default();
    let height = be_u32(ihdr, 12).unwrap_or_default();
    checked_size(width, height)
}

/// A JPEG's size from its frame header (SOFn), found by walking the
/// segments before the first scan by their lengths.
fn jpeg_dimensions(bytes: &[u8]) -> Result<(u32, u32), LogoError> {
    expect_magic(bytes, JPEG_SOI, LogoFormat::Jpeg)?;
    let cut_off = || malformed("the JPEG ends before its frame header");
    // Every step moves forward by at least one byte, so this ends.
    let mut at = 2;
    loop {
        if *bytes.get(at).ok_or_else(cut_off)? != 0xFF {
            return Err(malformed("the JPEG has data where a marker should be"));
        }
        // A marker may be preceded by any number of 0xFF fill bytes.
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or_else(cut_off)?;
        at += 1;
        match marker {
            // Markers that stand alone, without a length.
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 => return Err(malformed("the JPEG ends without a frame header")),
            0xDA => return Err(malformed("the JPEG's scan starts before its frame header")),
            0x00 => return Err(malformed("the JPEG has an invalid marker")),
            _ => {}
        }
        // The length counts its own two bytes.
        let length = usize::from(be_u16(bytes, at).ok_or_else(cut_off)?);
        let segment = at
            .checked_add(length)
            .and_then(|end| bytes.get(at..end))
            .filter(|segment| segment.len() >= 2)
            .ok_or_else(cut_off)?;
        let is_frame_header = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame_header {
            // Length (2), sample precision (1), height (2), width (2), components (1).
            let (Some(height), Some(width)) = (be_u16(segment, 3), be_u16(segment, 5)) else {
                return Err(malformed("the JPEG frame header is too short"));
            };
            return checked_size(u32::from(width), u32::from(height));
        }
        at += length;
    }
}

/// Deepest element nesting accepted in an SVG; drawings need a few levels.
const MAX_NESTING: usize = 256;
const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// Namespaces whose elements a browser makes active (scripts, links, forms)
/// even inside an SVG, so they are refused even inside `<metadata>`.
const ACTIVE_NAMESPACES: &[&str] = &["http://www.w3.org/1999/xhtml", "http://www.w3.org/1998/Math/MathML"];

/// SVG elements that only draw. Everything else is refused, notably
/// `script`, `foreignObject`, `image`, `a`, `iframe`, `embed`, `object`,
/// `feImage` and the animation elements (`animate`, `set`, ...), which can
/// rewrite an `href` to `javascript:` after these checks.
const ALLOWED_ELEMENTS: &[&str] = &[
    "svg",
    "g",
    "defs",
    "title",
    "desc",
    "symbol",
    "use",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "textPath",
    "linearGradient",
    "radialGradient",
    "stop",
    "clipPath",
    "mask",
    "marker",
    "pattern",
    "filter",
    "feGaussianBlur",
    "feOffset",
    "feBlend",
    "feColorMatrix",
    "feComponentTransfer",
    "feFuncR",
    "feFuncG",
    "feFuncB",
    "feFuncA",
    "feComposite",
    "feFlood",
    "feMerge",
    "feMergeNode",
    "feMorphology",
    "feDropShadow",
    "feTile",
    "feTurbulence",
    "style",
    "metadata",
];

/// Checks an upload declared as SVG and gives its size, if it states one.
fn svg_dimensions(bytes: &[u8]) -> Result<(Option<u32>, Option<u32>), LogoError> {
    if bytes.starts_with(PNG_SIGNATURE) || bytes.starts_with(JPEG_SOI) {
        return Err(LogoError::ContentMismatch { declared: LogoFormat::Svg });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("an SVG must be UTF-8 text"))?;
    check_encoding_declaration(text)?;
    // Before parsing: entity definitions are how a few bytes expand into
    // gigabytes, and a DTD can pull in external files.
    let folded = text.to_ascii_lowercase();
    if folded.contains("<!doctype") || folded.contains("<!entity") {
        return Err(unsafe_svg("document type declaration (<!DOCTYPE> or <!ENTITY>)".to_owned()));
    }
    // roxmltree parses nested elements by recursion, without a limit: a
    // deep enough upload would overflow the stack and abort the process.
    if nesting_exceeds(text, MAX_NESTING) {
        return Err(unsafe_svg(format!("elements nested more than {MAX_NESTING} deep")));
    }
    let document = roxmltree::Document::parse(text)
        .map_err(|error| LogoError::Malformed(format!("the SVG is not well-formed XML: {error}")))?;
    let root = document.root_element();
    if root.tag_name().name() != "svg" {
        return Err(LogoError::ContentMismatch { declared: LogoFormat::Svg });
    }
    if root.tag_name().namespace() != Some(SVG_NS) {
        return Err(malformed(
            "the root <svg> is not in the SVG namespace (xmlns=\"http://www.w3.org/2000/svg\")",
        ));
    }
    check_tree(document.root())?;
    svg_size(root)
}

/// Whether elements open more than `limit` deep, by a scan of the markup
/// that is exact for well-formed XML and never counts too few for the rest.
fn nesting_exceeds(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let after = |from: usize, end: &[u8]| {
        bytes
            .get(from..)
            .and_then(|rest| rest.windows(end.len()).position(|window| window == end))
            .map_or(bytes.len(), |found| from + found + end.len())
    };
    let mut depth = 0_usize;
    let mut at = 0;
    while let Some(found) = bytes.get(at..).and_then(|rest| rest.iter().position(|&byte| byte == b'<')) {
        let start = at + found;
        let tag = bytes.get(start..).unwrap_or_default();
        at = if tag.starts_with(b"<!--") {
            after(start, b"-->")
        } else if tag.starts_with(b"<![CDATA[") {
            after(start, b"]]>")
        } else if tag.starts_with(b"<?") {
            after(start, b"?>")
        } else if tag.starts_with(b"<!") {
            after(start, b">")
        } else if tag.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            start + 2
        } else {
            // A start tag ends at the first `>` outside a quoted attribute value.
            let mut quote = None;
            let mut end = bytes.len();
            for (offset, &byte) in tag.iter().enumerate().skip(1) {
                match (quote, byte) {
                    (None, b'"' | b'\'') => quote = Some(byte),
                    (Some(open), _) if open == byte => quote = None,
                    (None, b'>') => {
                        end = start + offset;
                        break;
                    }
                    _ => {}
                }
            }
            let self_closing = end > 0 && bytes.get(end - 1) == Some(&b'/');
            if !self_closing {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            end + 1
        };
    }
    false
}

/// Browsers decode by the XML declaration's encoding, and some encodings
/// (ISO-2022-JP, UTF-7) turn plain ASCII into different markup than the one
/// checked here: only UTF-8 may be declared.
fn check_encoding_declaration(text: &str) -> Result<(), LogoError> {
    let Some(declaration) = text.strip_prefix("<?xml").and_then(|rest| rest.split("?>").next()) else {
        return Ok(());
    };
    let Some((_, after)) = declaration.split_once("encoding") else {
        return Ok(());
    };
    let value = after.trim_start().trim_start_matches('=').trim_start();
    let value = value.trim_start_matches(['"', '\'']);
    let name = value.split(['"', '\'']).next().unwrap_or_default();
    if name.eq_ignore_ascii_case("utf-8") || name.eq_ignore_ascii_case("utf8") {
        Ok(())
    } else {
        Err(LogoError::Malformed(format!(
            "the SVG declares the encoding `{}`; only UTF-8 is accepted",
            shown(name)
        )))
    }
}

/// Walks every node (iteratively: nesting depth is the uploader's choice).
fn check_tree(root: roxmltree::Node<'_, '_>) -> Result<(), LogoError> {
    let mut pending = vec![(root, false)];
    while let Some((node, in_metadata)) = pending.pop() {
        if let Some(instruction) = node.pi() {
            // `<?xml-stylesheet?>` loads a remote stylesheet (or XSLT).
            return Err(unsafe_svg(format!("processing instruction <?{}?>", shown(instruction.target))));
        }
        if !node.is_element() && !node.is_root() {
            continue;
        }
        let mut inside_metadata = in_metadata;
        if node.is_element() {
            check_element(node, in_metadata)?;
            check_attributes(node)?;
            let name = node.tag_name();
            if name.namespace() == Some(SVG_NS) && name.name() == "style" {
                let css: String = node.children().filter_map(|child| child.text()).collect();
                check_css(&css, "<style>")?;
            }
            inside_metadata |= name.namespace() == Some(SVG_NS) && name.name() == "metadata";
        }
        let children: Vec<_> = node.children().collect();
        pending.extend(children.into_iter().rev().map(|child| (child, inside_metadata)));
    }
    Ok(())
}

/// An element must be an allowed SVG element; inside `<metadata>`, elements
/// of other vocabularies (RDF, Dublin Core) are tolerated as inert.
fn check_element(node: roxmltree::Node<'_, '_>, in_metadata: bool) -> Result<(), LogoError> {
    let name = node.tag_name();
    let local = name.name();
    match name.namespace() {
        Some(SVG_NS) if ALLOWED_ELEMENTS.contains(&local) => Ok(()),
        Some(SVG_NS) => Err(unsafe_svg(format!("element <{}>", shown(local)))),
        Some(namespace) if in_metadata && !ACTIVE_NAMESPACES.contains(&namespace) => Ok(()),
        Some(namespace) => {
            Err(unsafe_svg(format!("element <{}> in the namespace {}", shown(local), shown(namespace))))
        }
        None => Err(unsafe_svg(format!("element <{}> outside the SVG namespace", shown(local)))),
    }
}

fn check_attributes(node: roxmltree::Node<'_, '_>) -> Result<(), LogoError> {
    for attribute in node.attributes() {
        let local = attribute.name();
        let value = attribute.value();
        let shown_name = shown(local);
        if local.get(..2).is_some_and(|prefix| prefix.eq_ignore_ascii_case("on")) {
            return Err(unsafe_svg(format!("attribute {shown_name}")));
        }
        // `xml:base` would make even `#id` references point elsewhere.
        if attribute.namespace() == Some(XML_NS) && local == "base" {
            return Err(unsafe_svg("attribute xml:base".to_owned()));
        }
        if local.eq_ignore_ascii_case("href") && !value.trim_start().starts_with('#') {
            return Err(unsafe_svg(format!("external reference in {shown_name}")));
        }
        if let Some(found) = active_url(value) {
            return Err(unsafe_svg(format!("{found} in attribute {shown_name}")));
        }
        // Attributes without a namespace are CSS to the browser (presentation
        // attributes), where escapes could spell `url(` unseen.
        if attribute.namespace().is_none() && value.contains('\\') {
            return Err(unsafe_svg(format!("CSS escape in attribute {shown_name}")));
        }
        if local == "style" && attribute.namespace().is_none() {
            check_css(value, "the style attribute")?;
        }
    }
    Ok(())
}

/// Style sheets and `style` attributes may not import, run script or load
/// anything; escapes are refused because they could spell any of those.
fn check_css(css: &str, place: &str) -> Result<(), LogoError> {
    let folded = css.to_ascii_lowercase();
    let forbidden = ["@import", "expression(", "image-set(", "\\"];
    if let Some(found) = forbidden.into_iter().find(|needle| folded.contains(needle)) {
        let found = if found == "\\" { "CSS escape" } else { found };
        return Err(unsafe_svg(format!("{found} in {place}")));
    }
    if let Some(found) = active_url(css) {
        return Err(unsafe_svg(format!("{found} in {place}")));
    }
    Ok(())
}

/// What makes `value` load or run something: a `javascript:`/`vbscript:`/
/// `data:` URL, or a `url(...)` that is not a local `url(#id)`.
fn active_url(value: &str) -> Option<&'static str> {
    // URL parsers drop tabs and line breaks, so `java\tscript:` counts too.
    let folded: String =
        value.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).map(|c| c.to_ascii_lowercase()).collect();
    if let Some(scheme) =
        ["javascript:", "vbscript:", "data:"].into_iter().find(|scheme| folded.contains(scheme))
    {
        return Some(scheme);
    }
    let mut rest = folded.as_str();
    while let Some(start) = rest.find("url(") {
        rest = rest.get(start + "url(".len()..).unwrap_or_default();
        let target = rest.trim_start().trim_start_matches(['"', '\'']).trim_start();
        if !target.starts_with('#') {
            return Some("external reference in url()");
        }
    }
    None
}

/// `width` and `height` when both are plain numbers (or `px`), else the
/// `viewBox` size, else whichever side is a plain number.
fn svg_size(root: roxmltree::Node<'_, '_>) -> Result<(Option<u32>, Option<u32>), LogoError> {
    let width = root.attribute("width").and_then(plain_length);
    let height = root.attribute("height").and_then(plain_length);
    let view_box = root.attribute("viewBox").and_then(view_box_size);
    let (width, height) = match (width, height, view_box) {
        (Some(width), Some(height), _) | (_, _, Some((width, height))) => (Some(width), Some(height)),
        (width, height, None) => (width, height),
    };
    let side = |length: Option<f64>| length.map(pixels).transpose();
    Ok((side(width)?, side(height)?))
}

/// A number, optionally in `px`; anything else (`%`, `mm`, `em`) is not a
/// fixed size in pixels.
fn plain_length(text: &str) -> Option<f64> {
    let text = text.trim();
    let number = text.strip_suffix("px").unwrap_or(text).trim_end();
    number.parse::<f64>().ok().filter(|value| value.is_finite())
}

/// The width and height of a `viewBox` (`min-x min-y width height`).
fn view_box_size(text: &str) -> Option<(f64, f64)> {
    let numbers: Vec<f64> = text
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<f64>().ok().filter(|value| value.is_finite()))
        .collect::<Option<_>>()?;
    match numbers.as_slice() {
        [_, _, width, height] => Some((*width, *height)),
        _ => None,
    }
}

/// A stated length as whole pixels (rounded up), within the allowed sides.
fn pixels(length: f64) -> Result<u32, LogoError> {
    let rounded = length.ceil();
    if rounded >= 1.0 && rounded <= f64::from(LOGO_MAX_DIMENSION) {
        // In range, so the conversion is exact.
        Ok(rounded as u32)
    } else {
        Err(LogoError::Malformed(format!(
            "the SVG's size {length} is out of range; each side must be 1 to {LOGO_MAX_DIMENSION}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = "image/svg+xml";

    /// Only the signature and the IHDR chunk, with a zero CRC and no image
    /// data: [`inspect`] reads headers only, it does not decode.
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend_from_slice(&13u32.to_be_bytes());
        bytes.extend_from_slice(b"IHDR");
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        // Bit depth 8, colour type 6 (RGBA), compression, filter, interlace.
        bytes.extend_from_slice(&[8, 6, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 4]);
        bytes
    }

    /// SOI, a JFIF APP0, a baseline frame header (20 high, 40 wide), EOI.
    fn jpeg() -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
        bytes.extend_from_slice(b"JFIF\0");
        bytes.extend_from_slice(&[1, 1, 0, 0, 1, 0, 1, 0, 0]);
        bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8, 0x00, 20, 0x00, 40, 1, 1, 0x11, 0]);
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        bytes
    }

    const CLEAN_SVG: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="120" height="60px" viewBox="0 0 240 120">
  <title>Acme</title>
  <defs>
    <linearGradient id="g" x1="0" x2="1"><stop offset="0" stop-color="#f60"/><stop offset="1" stop-color="#06f"/></linearGradient>
    <path id="p" d="M0 0 L10 10"/>
  </defs>
  <style>.mark { fill: url( "#g" ); }</style>
  <path class="mark" fill="url(#g)" style="stroke: url('#g')" d="M10 10 H 230 V 110 H 10 Z"/>
  <use href="#p"/>
  <use xlink:href="#p"/>
</svg>"##;

    /// The reason an SVG was refused as unsafe; fails on any other outcome.
    fn unsafe_reason(svg: &str) -> String {
        match inspect(svg.as_bytes(), SVG) {
            Err(LogoError::UnsafeSvg(reason)) => reason,
            other => panic!("expected UnsafeSvg, got {other:?}"),
        }
    }

    fn wrapped(body: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{body}</svg>"#
        )
    }

    fn is_malformed<T: fmt::Debug>(result: Result<T, LogoError>) -> bool {
        matches!(result, Err(LogoError::Malformed(_)))
    }

    #[test]
    fn png_is_accepted_with_its_dimensions() {
        let logo = inspect(&png(64, 32), "image/png").unwrap();
        assert_eq!(logo, Logo { format: LogoFormat::Png, width: Some(64), height: Some(32), size: 33 });
    }

    #[test]
    fn jpeg_is_accepted_with_its_dimensions() {
        let bytes = jpeg();
        let logo = inspect(&bytes, "image/jpeg").unwrap();
        assert_eq!(
            logo,
            Logo { format: LogoFormat::Jpeg, width: Some(40), height: Some(20), size: bytes.len() }
        );
    }

    #[test]
    fn jpeg_frame_header_is_found_after_fill_bytes_and_other_segments() {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x05, b'h', b'i', b'!', 0xFF, 0xFF];
        bytes.extend_from_slice(&[0xC2, 0x00, 0x0B, 8, 0x01, 0x00, 0x00, 0x80, 1, 1, 0x11, 0]);
        assert_eq!(
            inspect(&bytes, "image/jpg").map(|logo| (logo.width, logo.height)),
            Ok((Some(128), Some(256)))
        );
    }

    #[test]
    fn clean_svg_with_gradient_and_local_references_is_accepted() {
        let logo = inspect(CLEAN_SVG.as_bytes(), SVG).unwrap();
        assert_eq!(
            logo,
            Logo { format: LogoFormat::Svg, width: Some(120), height: Some(60), size: CLEAN_SVG.len() }
        );
    }

    #[test]
    fn svg_size_comes_from_the_view_box_when_width_is_not_in_pixels() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0,0 300.5 150"/>"#;
        let logo = inspect(svg.as_bytes(), SVG).unwrap();
        assert_eq!((logo.width, logo.height), (Some(301), Some(150)));
    }

    #[test]
    fn svg_without_a_stated_size_has_no_dimensions() {
        let logo = inspect(br#"<svg xmlns="http://www.w3.org/2000/svg" width="10mm"/>"#, SVG).unwrap();
        assert_eq!((logo.width, logo.height), (None, None));
    }

    #[test]
    fn svg_with_a_zero_or_huge_size_is_malformed() {
        for size in [r#"width="0" height="10""#, r#"width="5000" height="10""#, r#"viewBox="0 0 -5 10""#] {
            let svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" {size}/>"#);
            assert!(is_malformed(inspect(svg.as_bytes(), SVG)), "{size}");
        }
    }

    #[test]
    fn svg_with_a_utf8_byte_order_mark_is_accepted() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(CLEAN_SVG.as_bytes());
        assert_eq!(inspect(&bytes, SVG).map(|logo| logo.size), Ok(bytes.len()));
    }

    #[test]
    fn svg_metadata_may_hold_other_vocabularies() {
        let svg = wrapped(
            r#"<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description/></rdf:RDF></metadata><rect width="1" height="1"/>"#,
        );
        assert!(inspect(svg.as_bytes(), SVG).is_ok());
    }

    #[test]
    fn text_declared_as_png_is_a_content_mismatch() {
        assert_eq!(
            inspect(b"hello, this is not an image\n", "image/png"),
            Err(LogoError::ContentMismatch { declared: LogoFormat::Png })
        );
    }

    #[test]
    fn png_declared_as_jpeg_is_a_content_mismatch() {
        assert_eq!(
            inspect(&png(64, 32), "image/jpeg"),
            Err(LogoError::ContentMismatch { declared: LogoFormat::Jpeg })
        );
    }

    #[test]
    fn png_declared_as_svg_is_a_content_mismatch() {
        assert_eq!(inspect(&png(64, 32), SVG), Err(LogoError::ContentMismatch { declared: LogoFormat::Svg }));
    }

    #[test]
    fn xml_that_is_not_an_svg_is_a_content_mismatch() {
        assert_eq!(
            inspect(b"<html><body/></html>", SVG),
            Err(LogoError::ContentMismatch { declared: LogoFormat::Svg })
        );
    }

    #[test]
    fn svg_outside_the_svg_namespace_is_malformed() {
        assert!(is_malformed(inspect(b"<svg width=\"10\" height=\"10\"/>", SVG)));
    }

    #[test]
    fn gif_is_an_unsupported_type() {
        assert_eq!(inspect(b"GIF89a", "image/gif"), Err(LogoError::UnsupportedType("image/gif".to_owned())));
    }

    #[test]
    fn a_logo_over_the_limit_is_too_large() {
        let mut bytes = png(64, 32);
        bytes.resize(LOGO_MAX_BYTES + 1, 0);
        assert_eq!(
            inspect(&bytes, "image/png"),
            Err(LogoError::TooLarge { size: LOGO_MAX_BYTES + 1, max: LOGO_MAX_BYTES })
        );
    }

    #[test]
    fn a_logo_of_exactly_the_limit_is_accepted() {
        let mut bytes = png(64, 32);
        bytes.resize(LOGO_MAX_BYTES, 0);
        assert_eq!(inspect(&bytes, "image/png").map(|logo| logo.size), Ok(LOGO_MAX_BYTES));
    }

    #[test]
    fn an_empty_upload_is_refused_before_its_type() {
        assert_eq!(inspect(b"", "image/gif"), Err(LogoError::Empty));
    }

    #[test]
    fn truncated_png_is_malformed() {
        let bytes = png(64, 32);
        assert!(is_malformed(inspect(&bytes[..20], "image/png")));
        assert!(is_malformed(inspect(&bytes[..5], "image/png")));
    }

    #[test]
    fn png_with_a_broken_header_chunk_is_malformed() {
        let mut bytes = png(64, 32);
        bytes[12..16].copy_from_slice(b"IDAT");
        assert!(is_malformed(inspect(&bytes, "image/png")));
        let mut bytes = png(64, 32);
        bytes[24] = 3; // Bit depth 3 does not exist.
        assert!(is_malformed(inspect(&bytes, "image/png")));
    }

    #[test]
    fn truncated_jpeg_is_malformed() {
        let bytes = jpeg();
        assert!(is_malformed(inspect(&bytes[..bytes.len() - 8], "image/jpeg")));
        assert!(is_malformed(inspect(&bytes[..2], "image/jpeg")));
    }

    #[test]
    fn jpeg_without_a_frame_header_is_malformed() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0, 0xFF, 0xD9];
        assert!(is_malformed(inspect(&bytes, "image/jpeg")));
    }

    #[test]
    fn png_with_width_zero_or_over_the_limit_is_malformed() {
        assert!(is_malformed(inspect(&png(0, 32), "image/png")));
        assert!(is_malformed(inspect(&png(5000, 32), "image/png")));
        assert!(inspect(&png(LOGO_MAX_DIMENSION, 1), "image/png").is_ok());
    }

    #[test]
    fn svg_with_a_script_is_unsafe() {
        let reason = unsafe_reason(&wrapped("<script>alert(1)</script>"));
        assert_eq!(reason, "element <script>");
    }

    #[test]
    fn svg_with_an_event_handler_is_unsafe() {
        let reason = unsafe_reason(r#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#);
        assert_eq!(reason, "attribute onload");
        assert_eq!(unsafe_reason(&wrapped(r#"<rect ONCLICK="x()"/>"#)), "attribute ONCLICK");
    }

    #[test]
    fn svg_with_a_javascript_link_is_unsafe() {
        let reason = unsafe_reason(&wrapped(r#"<a href="javascript:alert(1)"><rect/></a>"#));
        assert_eq!(reason, "element <a>");
    }

    #[test]
    fn svg_with_a_remote_image_is_unsafe() {
        let reason = unsafe_reason(&wrapped(r#"<image href="https://evil.example/x.png"/>"#));
        assert_eq!(reason, "element <image>");
    }

    #[test]
    fn svg_using_a_remote_symbol_is_unsafe() {
        let reason = unsafe_reason(&wrapped(r#"<use href="https://evil/x.svg#a"/>"#));
        assert_eq!(reason, "external reference in href");
        let reason = unsafe_reason(&wrapped(r#"<use xlink:href="https://evil/x.svg#a"/>"#));
        assert_eq!(reason, "external reference in href");
    }

    #[test]
    fn svg_with_a_remote_url_in_a_style_attribute_is_unsafe() {
        let reason = unsafe_reason(&wrapped(r#"<rect style="background:url(https://evil)"/>"#));
        assert!(reason.starts_with("external reference in url()"), "{reason}");
        let reason = unsafe_reason(&wrapped(r#"<rect fill="URL( 'https://evil' )"/>"#));
        assert!(reason.starts_with("external reference in url()"), "{reason}");
    }

    #[test]
    fn svg_with_an_import_in_a_style_element_is_unsafe() {
        let reason = unsafe_reason(&wrapped("<style>@import url(x)</style>"));
        assert_eq!(reason, "@import in <style>");
        let reason = unsafe_reason(&wrapped("<style><![CDATA[@\\69mport 'x';]]></style>"));
        assert_eq!(reason, "CSS escape in <style>");
    }

    #[test]
    fn svg_with_a_foreign_object_is_unsafe() {
        let reason = unsafe_reason(&wrapped("<foreignObject><p>hi</p></foreignObject>"));
        assert_eq!(reason, "element <foreignObject>");
    }

    #[test]
    fn svg_with_a_doctype_or_entities_is_unsafe() {
        let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE svg [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&lol3;</text></svg>"#;
        assert!(unsafe_reason(billion_laughs).starts_with("document type declaration"));
        assert!(unsafe_reason("<!doctype svg><svg/>").starts_with("document type declaration"));
    }

    #[test]
    fn svg_with_an_element_of_another_namespace_is_unsafe() {
        let reason = unsafe_reason(&wrapped(r#"<div xmlns="http://www.w3.org/1999/xhtml">hi</div>"#));
        assert_eq!(reason, "element <div> in the namespace http://www.w3.org/1999/xhtml");
    }

    #[test]
    fn svg_metadata_cannot_hide_active_elements() {
        let reason = unsafe_reason(&wrapped("<metadata><script>alert(1)</script></metadata>"));
        assert_eq!(reason, "element <script>");
        let reason = unsafe_reason(&wrapped(
            r#"<metadata><h:script xmlns:h="http://www.w3.org/1999/xhtml">alert(1)</h:script></metadata>"#,
        ));
        assert!(reason.starts_with("element <script> in the namespace"), "{reason}");
    }

    #[test]
    fn svg_with_an_animation_is_unsafe() {
        let reason = unsafe_reason(&wrapped(r#"<animate attributeName="href" to="javascript:alert(1)"/>"#));
        assert_eq!(reason, "element <animate>");
    }

    #[test]
    fn svg_with_a_javascript_or_data_url_in_any_attribute_is_unsafe() {
        let reason = unsafe_reason(&wrapped("<rect fill=\"java&#9;script:alert(1)\"/>"));
        assert_eq!(reason, "javascript: in attribute fill");
        let reason = unsafe_reason(&wrapped(r#"<rect mask="data:image/svg+xml,x"/>"#));
        assert_eq!(reason, "data: in attribute mask");
    }

    #[test]
    fn svg_with_a_stylesheet_instruction_is_unsafe() {
        let svg = format!(r#"<?xml-stylesheet href="https://evil/x.css"?>{}"#, wrapped(""));
        assert_eq!(unsafe_reason(&svg), "processing instruction <?xml-stylesheet?>");
    }

    #[test]
    fn svg_with_xml_base_is_unsafe() {
        assert_eq!(unsafe_reason(&wrapped(r#"<g xml:base="https://evil/"/>"#)), "attribute xml:base");
    }

    #[test]
    fn svg_that_does_not_parse_is_malformed() {
        assert!(is_malformed(inspect(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><g></svg>", SVG)));
    }

    #[test]
    fn svg_that_is_not_utf8_is_malformed() {
        let latin1 = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><title>Caf\xE9</title></svg>";
        assert!(is_malformed(inspect(latin1, SVG)));
    }

    #[test]
    fn svg_declaring_another_encoding_is_malformed() {
        let svg = format!(r#"<?xml version="1.0" encoding='ISO-2022-JP'?>{}"#, wrapped(""));
        assert!(is_malformed(inspect(svg.as_bytes(), SVG)));
    }

    #[test]
    fn deeply_nested_svg_is_refused_without_overflowing_the_stack() {
        let depth = 70_000;
        let svg = wrapped(&format!("{}{}", "<g>".repeat(depth), "</g>".repeat(depth)));
        assert!(svg.len() <= LOGO_MAX_BYTES);
        assert_eq!(unsafe_reason(&svg), format!("elements nested more than {MAX_NESTING} deep"));
    }

    #[test]
    fn nesting_counts_only_open_elements() {
        let depth = MAX_NESTING - 1;
        let nested = format!("{}{}", "<g>".repeat(depth), "</g>".repeat(depth));
        let siblings =
            r#"<rect title="a > b" width='1'/><!-- <g> --><style><![CDATA[ <g> ]]></style>"#.repeat(1_000);
        assert!(inspect(wrapped(&format!("{nested}{siblings}")).as_bytes(), SVG).is_ok());
        let too_deep = format!("{0}<g/>{1}", "<g>".repeat(MAX_NESTING), "</g>".repeat(MAX_NESTING));
        assert!(unsafe_reason(&wrapped(&too_deep)).starts_with("elements nested more than"));
    }

    #[test]
    fn content_type_parameters_and_case_are_ignored() {
        assert_eq!(LogoFormat::from_content_type("image/svg+xml; charset=utf-8"), Some(LogoFormat::Svg));
        assert_eq!(LogoFormat::from_content_type(" Image/PNG "), Some(LogoFormat::Png));
        assert_eq!(LogoFormat::from_content_type("image/jpg"), Some(LogoFormat::Jpeg));
        assert_eq!(LogoFormat::from_content_type("image/svg"), None);
        assert_eq!(LogoFormat::from_content_type(""), None);
    }

    #[test]
    fn formats_name_their_content_type_and_extension() {
        let names: Vec<_> = [LogoFormat::Png, LogoFormat::Jpeg, LogoFormat::Svg]
            .map(|f| (f.content_type(), f.extension()))
            .into();
        assert_eq!(names, [("image/png", "png"), ("image/jpeg", "jpg"), ("image/svg+xml", "svg")]);
        assert_eq!(serde_json::to_value(LogoFormat::Svg).unwrap(), "svg");
    }

    #[test]
    fn error_codes_are_stable() {
        let codes = [
            LogoError::TooLarge { size: 2, max: 1 },
            LogoError::Empty,
            LogoError::UnsupportedType("image/gif".to_owned()),
            LogoError::ContentMismatch { declared: LogoFormat::Png },
            LogoError::Malformed(String::new()),
            LogoError::UnsafeSvg(String::new()),
        ]
        .map(|error| error.code());
        assert_eq!(
            codes,
            [
                "tenancy.logo_too_large",
                "tenancy.logo_empty",
                "tenancy.logo_unsupported_type",
                "tenancy.logo_content_mismatch",
                "tenancy.logo_malformed",
                "tenancy.logo_unsafe_svg",
            ]
        );
        assert_eq!(DomainError::code(&LogoError::Empty), "tenancy.logo_empty");
    }

    /// A linear congruential generator: enough to vary bytes, no dependency.
    struct Lcg(u64);

    impl Lcg {
        fn next_byte(&mut self) -> u8 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 56) as u8
        }
    }

    #[test]
    fn inspect_never_panics() {
        let fixtures =
            [(png(64, 32), "image/png"), (jpeg(), "image/jpeg"), (CLEAN_SVG.as_bytes().to_vec(), SVG)];
        for (bytes, content_type) in &fixtures {
            for end in 0..=bytes.len() {
                let _ = inspect(&bytes[..end], content_type);
            }
        }
        let mut random = Lcg(0x5EED);
        for round in 0..300 {
            let (fixture, content_type) = &fixtures[round % fixtures.len()];
            // Noise, and the fixture with a few bytes changed.
            let length = usize::from(random.next_byte()) + 1;
            let noise: Vec<u8> = (0..length).map(|_| random.next_byte()).collect();
            let mut mutated = fixture.clone();
            for _ in 0..4 {
                let at =
                    usize::from(u16::from_be_bytes([random.next_byte(), random.next_byte()])) % mutated.len();
                mutated[at] = random.next_byte();
            }
            for bytes in [&noise, &mutated] {
                for content_type in [*content_type, "image/png", "image/jpeg", SVG] {
                    let _ = inspect(bytes, content_type);
                }
            }
        }
    }
}
