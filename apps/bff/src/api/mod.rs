//! The `/api/v1` routes.

pub mod tenants;

use actix_web::web;

use crate::error;

/// Registers every `/api/v1` route; each resource answers 405 for other methods.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .service(
                web::resource("/tenants")
                    .route(web::get().to(tenants::list))
                    .route(web::post().to(tenants::create))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/tenants/{id}")
                    .route(web::get().to(tenants::get))
                    .route(web::put().to(tenants::update))
                    .route(web::delete().to(tenants::delete))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/tenants/{id}/suspend")
                    .route(web::post().to(tenants::suspend))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/tenants/{id}/activate")
                    .route(web::post().to(tenants::activate))
                    .default_service(web::to(error::method_not_allowed)),
            ),
    );
}
