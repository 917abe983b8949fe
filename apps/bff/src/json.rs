//! JSON request bodies: `Json<T>` reads the body (within the route's size
//! limit) and names the failing field of every error, wrong types included,
//! in `details.fields` as the client wrote it (`metadata.blob`, `items[2].name`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use portico_kernel::{FieldError, ValidationErrors};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

/// The largest body a route reads unless it sets its own (registered as app
/// data beside `web::PayloadConfig`, whose limit it mirrors, for the
/// middleware that reads bodies before the handler does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// 1 MiB.
    pub const DEFAULT: Self = Self(1024 * 1024);
}

/// A JSON body deserialized into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(unsupported_media_type());
            }
            parse(&bytes.await.map_err(unreadable)?).map(Json)
        })
    }
}

/// A JSON body that may be left out: an empty body (whatever its content
/// type) and `null` are `None`; any other is read as [`Json`] reads it.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T> OptionalJson<T> {
    /// The body, if one was sent.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(unreadable)?;
            if bytes.is_empty() {
                return Ok(Self(None));
            }
            if !is_json {
                return Err(unsupported_media_type());
            }
            parse(&bytes).map(Self)
        })
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
    })
}

fn unsupported_media_type() -> ApiError {
    ApiError::with_status(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "request.unsupported_media_type",
        "Send the body as application/json.",
    )
}

fn unreadable(error: actix_web::Error) -> ApiError {
    if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.body_too_large",
            "The body is larger than this route accepts.",
        )
    } else {
        ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "request.unreadable_body",
            "The body could not be read.",
        )
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(describe)
}

/// Syntax errors are 400; errors of content name their field and are 422.
fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if !inner.is_data() {
        return ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "request.malformed_json",
            format!("The body is not valid JSON: {inner}."),
        );
    }
    let message = strip_position(&inner.to_string());
    let field = field_of(&path, &message);
    let errors = ValidationErrors(vec![FieldError { field, message: message.clone() }]);
    ApiError::with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "request.invalid_body",
        format!("The body is not valid: {message}."),
    )
    .details(json!({ "fields": errors }))
}

/// The failing field's path; a missing field is reported at its parent, so
/// its name is taken from the message.
fn field_of(path: &str, message: &str) -> String {
    let named = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
    let parent = if path == "." { "" } else { path };
    match named {
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "body".to_owned(),
        None => parent.to_owned(),
    }
}

/// "… at line 1 column 40" says nothing a client needs once the field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        contact_email: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        count: u32,
    }

    fn fields_of(body: &str) -> (String, String) {
        let deserializer = &mut serde_json::Deserializer::from_str(body);
        let error = serde_path_to_error::deserialize::<_, Body>(deserializer).unwrap_err();
        let api = describe(error);
        let body = api.body(&portico_kernel::RequestId::generate());
        (
            body["error"]["code"].as_str().unwrap().to_owned(),
            body["error"]["details"]["fields"][0]["field"].as_str().unwrap_or("").to_owned(),
        )
    }

    #[test]
    fn each_kind_of_bad_content_names_its_field() {
        assert_eq!(
            fields_of(r#"{"contactEmail": 42, "items": []}"#),
            ("request.invalid_body".into(), "contactEmail".into())
        );
        assert_eq!(fields_of(r#"{"items": []}"#), ("request.invalid_body".into(), "contactEmail".into()));
        assert_eq!(
            fields_of(r#"{"contactEmail": "a", "items": [], "owner": 1}"#),
            ("request.invalid_body".into(), "owner".into())
        );
        assert_eq!(
            fields_of(r#"{"contactEmail": "a", "items": [{"count": 1}, {"count": "x"}]}"#),
            ("request.invalid_body".into(), "items[1].count".into())
        );
        assert_eq!(
            fields_of(r#"{"contactEmail": "a", "items": [{}]}"#),
            ("request.invalid_body".into(), "items[0].count".into())
        );
    }

    async fn optional(req: actix_web::test::TestRequest) -> Result<Option<Item>, ApiError> {
        let (req, mut payload) = req.to_http_parts();
        OptionalJson::<Item>::from_request(&req, &mut payload).await.map(OptionalJson::into_inner)
    }

    #[actix_web::test]
    async fn an_optional_body_may_be_left_out_or_null() {
        use actix_web::http::header::ContentType;
        use actix_web::test::TestRequest;
        assert!(optional(TestRequest::post()).await.unwrap().is_none(), "no body");
        let null = TestRequest::post().insert_header(ContentType::json()).set_payload("null");
        assert!(optional(null).await.unwrap().is_none());
        let given = TestRequest::post().insert_header(ContentType::json()).set_payload(r#"{"count": 2}"#);
        assert_eq!(optional(given).await.unwrap().map(|item| item.count), Some(2));
        let wrong = TestRequest::post().insert_header(ContentType::json()).set_payload(r#"{"count": "x"}"#);
        assert_eq!(optional(wrong).await.unwrap_err().code(), "request.invalid_body");
        let untyped = TestRequest::post().set_payload(r#"{"count": 2}"#);
        assert_eq!(optional(untyped).await.unwrap_err().code(), "request.unsupported_media_type");
    }

    #[test]
    fn broken_json_is_a_syntax_error() {
        assert_eq!(fields_of(r#"{"contactEmail": "#).0, "request.malformed_json");
    }
}
