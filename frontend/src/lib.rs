#![recursion_limit = "512"]
//! The browser entry point: hydrate the server-rendered page, then mark it
//! hydrated (`body[data-hydrated=true]`, what the browser tests wait for)
//! only if hydration really completed: the page came from this very build
//! and nothing panicked on the way.

use std::sync::atomic::{AtomicBool, Ordering};

static PANICKED: AtomicBool = AtomicBool::new(false);

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    std::panic::set_hook(Box::new(|info| {
        PANICKED.store(true, Ordering::SeqCst);
        console_error_panic_hook::hook(info);
    }));
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let served = document
        .query_selector(&format!("meta[name=\"{}\"]", app::BUILD_STAMP_META))
        .ok()
        .flatten()
        .and_then(|m| m.get_attribute("content"));
    if served.as_deref() != Some(app::BUILD_STAMP) {
        // Hydrating another build's HTML fails in confusing ways; say why.
        web_sys::console::error_1(
            &format!(
                "RowCol: this page was rendered by build {} but the bundle is {}; not hydrating",
                served.as_deref().unwrap_or("(none)"),
                app::BUILD_STAMP
            )
            .into(),
        );
        return;
    }
    let Some(body) = document.body() else {
        return;
    };
    // Pages are lazy routes (app::pages::lazy): hydration waits for the
    // page's chunk of the bundle, so it completes asynchronously.
    wasm_bindgen_futures::spawn_local(async move {
        let owner = leptos::mount::hydrate_from_async(body.clone(), app::App).await;
        owner.forget();
        // Resources inside <Suspense> finish hydrating in tasks queued by
        // the walk above; mark the page on the next frame, after they ran.
        leptos::prelude::request_animation_frame(move || {
            if PANICKED.load(Ordering::SeqCst) {
                return;
            }
            let _ = body.set_attribute("data-hydrated", "true");
        });
    });
}
