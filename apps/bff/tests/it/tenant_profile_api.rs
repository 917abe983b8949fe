//! The tenancy routes over HTTP: onboarding and sign-up, settings, the
//! effective configuration and feature gates, branding and logos, tenant
//! views and the platform's overview.

/// The header of a PNG of `width` x `height` pixels: its signature and IHDR
/// chunk, which is what the logo check reads (no image data follows).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 6 (RGBA), compression, filter, interlace; then a CRC (not checked).
    bytes.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}
