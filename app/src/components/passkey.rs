//! The browser's half of a passkey ceremony: the server's options go to
//! `navigator.credentials` (read by `PublicKeyCredential.parse…OptionsFromJSON`), and the
//! credential comes back as its `toJSON()`, for the server to check. Nothing is decided
//! here; a refusal from the browser becomes a sentence for the person.

use leptos::prelude::*;

/// Which ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    /// Make a new passkey (`navigator.credentials.create`).
    Create,
    /// Sign with an existing one (`navigator.credentials.get`).
    Get,
}

/// What to say when the browser has no passkeys.
pub const UNSUPPORTED: &str =
    "This browser cannot use passkeys here: use your authenticator app, or another browser.";

/// Runs `ceremony` with the server's `options` (JSON of `{"publicKey": …}`) and answers
/// the credential as JSON, or what went wrong, for the person.
#[cfg(feature = "hydrate")]
pub async fn perform(ceremony: Ceremony, options: &str) -> Result<String, String> {
    use js_sys::{Function, Object, Promise, Reflect, JSON};
    use wasm_bindgen::{JsCast, JsValue};

    let unsupported = || UNSUPPORTED.to_owned();
    let unreadable = |_| "The console's passkey request did not read: reload the page.".to_owned();
    let window = web_sys::window().ok_or_else(unsupported)?;
    let class = Reflect::get(&window, &JsValue::from_str("PublicKeyCredential"))
        .map_err(|_| unsupported())?;
    if class.is_undefined() {
        return Err(unsupported());
    }
    let (parse, method) = match ceremony {
        Ceremony::Create => ("parseCreationOptionsFromJSON", "create"),
        Ceremony::Get => ("parseRequestOptionsFromJSON", "get"),
    };
    let parse: Function = Reflect::get(&class, &JsValue::from_str(parse))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(unsupported)?;
    let options = JSON::parse(options).map_err(unreadable)?;
    let public_key = Reflect::get(&options, &JsValue::from_str("publicKey")).map_err(unreadable)?;
    let parsed = parse
        .call1(&class, &public_key)
        .map_err(|e| describe(ceremony, &e))?;
    let request = Object::new();
    Reflect::set(&request, &JsValue::from_str("publicKey"), &parsed).map_err(unreadable)?;
    let credentials = Reflect::get(
        window.navigator().as_ref(),
        &JsValue::from_str("credentials"),
    )
    .map_err(|_| unsupported())?;
    let call: Function = Reflect::get(&credentials, &JsValue::from_str(method))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(unsupported)?;
    let promise: Promise = call
        .call1(&credentials, &request)
        .map_err(|e| describe(ceremony, &e))?
        .dyn_into()
        .map_err(|_| unsupported())?;
    let credential = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(|e| describe(ceremony, &e))?;
    if credential.is_null() || credential.is_undefined() {
        return Err(describe(ceremony, &JsValue::NULL));
    }
    // `JSON.stringify` calls the credential's `toJSON()`: base64url fields, as the server
    // reads them.
    JSON::stringify(&credential)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(unsupported)
}

/// Without the browser there is no authenticator: the server render never calls this.
#[cfg(not(feature = "hydrate"))]
pub async fn perform(_ceremony: Ceremony, _options: &str) -> Result<String, String> {
    Err(UNSUPPORTED.to_owned())
}

/// The sentence for a browser's refusal (a `DOMException` by its name).
#[cfg(feature = "hydrate")]
fn describe(ceremony: Ceremony, error: &wasm_bindgen::JsValue) -> String {
    let name = js_sys::Reflect::get(error, &wasm_bindgen::JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    match (name.as_str(), ceremony) {
        ("InvalidStateError", Ceremony::Create) => {
            "This authenticator already holds a passkey of yours for this console: use it, or choose another device.".to_owned()
        }
        ("SecurityError", _) => {
            "The browser refused passkeys for this address: open the console at its usual address (HTTPS, or localhost).".to_owned()
        }
        ("NotSupportedError", _) => {
            "This authenticator cannot make a passkey the console accepts: try another device.".to_owned()
        }
        _ => "The passkey request was cancelled or timed out: try again.".to_owned(),
    }
}

/// A challenge fetched in the browser after the page is live (an effect: never during the
/// server render or hydration, so both render the same), and fetched again on demand.
#[derive(Clone, Copy)]
pub struct Fetched {
    /// The challenge, once fetched, if the person has a passkey to answer it with.
    pub challenge: RwSignal<Option<crate::domain::factors::PasskeyChallenge>>,
    /// What the last fetch answered instead, if it failed.
    pub error: RwSignal<Option<crate::error::AppError>>,
    /// Fetches a new one.
    pub refetch: Callback<()>,
}

impl Fetched {
    /// Fetches with `start` (a server function) now that the page is live, and whenever
    /// [`Fetched::refetch`] runs. `when` gates it (`None`: always).
    pub fn new<F, Fut>(start: F, when: Option<Signal<bool>>) -> Self
    where
        F: Fn() -> Fut + Copy + Send + Sync + 'static,
        Fut: std::future::Future<
                Output = Result<
                    Option<crate::domain::factors::PasskeyChallenge>,
                    crate::error::AppError,
                >,
            > + 'static,
    {
        let challenge = RwSignal::new(None);
        let error = RwSignal::new(None);
        let refetch = Callback::new(move |()| {
            leptos::task::spawn_local(async move {
                let answer = start().await;
                // The page may have gone meanwhile: then there is nothing to show.
                match answer {
                    Ok(found) => {
                        let _ = challenge.try_set(found);
                        let _ = error.try_set(None);
                    }
                    Err(e) => {
                        let _ = challenge.try_set(None);
                        let _ = error.try_set(Some(e));
                    }
                }
            });
        });
        Effect::new(move |_| {
            if when.is_none_or(|w| w.get()) {
                refetch.run(());
            } else {
                challenge.set(None);
            }
        });
        Self {
            challenge,
            error,
            refetch,
        }
    }
}

/// "Use your passkey": shown once `fetched` holds a challenge. A click runs the ceremony
/// and hands `(ceremony, credential)` to `answer`; what the browser refuses is said beside
/// the button (`{id}-error`) and a new challenge is fetched. The caller fetches a new one,
/// too, after the server refused an answer (each is used once).
#[component]
pub fn PasskeyButton(
    /// The challenge to answer.
    fetched: Fetched,
    /// Sends the answer to the server.
    answer: Callback<(String, String)>,
    /// Whether the server is checking an answer.
    #[prop(into)]
    checking: Signal<bool>,
    /// The button's id (its messages are `{id}-error`).
    #[prop(into)]
    id: String,
    /// The server's message about the last answer, if any.
    #[prop(into)]
    error: Signal<Option<String>>,
) -> impl IntoView {
    let refused = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let ready = move || fetched.challenge.get();
    let run = move |_| {
        let Some(ch) = fetched.challenge.get_untracked() else {
            return;
        };
        busy.set(true);
        refused.set(None);
        leptos::task::spawn_local(async move {
            let outcome = perform(Ceremony::Get, &ch.options).await;
            // The page may have gone while the browser asked: then nothing is left to tell.
            if busy.try_set(false).is_some() {
                return;
            }
            match outcome {
                Ok(credential) => answer.run((ch.ceremony, credential)),
                Err(message) => {
                    refused.set(Some(message));
                    fetched.refetch.run(());
                }
            }
        });
    };
    let message = move || refused.get().or_else(|| error.get());
    let ids = StoredValue::new((id.clone(), format!("{id}-error")));
    view! {
        <Show when=move || ready().is_some()>
            <div class="mt-3">
                <button type="button" class="btn-primary w-full" id=move || ids.with_value(|(b, _)| b.clone())
                    aria-describedby=move || ids.with_value(|(_, e)| e.clone())
                    on:click=run disabled=move || busy.get() || checking.get()>
                    {move || if busy.get() { "Waiting for your passkey…" } else if checking.get() { "Checking…" } else { "Use your passkey" }}
                </button>
                <p id=move || ids.with_value(|(_, e)| e.clone()) role="alert" class="mt-1 text-sm text-red-800">
                    {message}
                </p>
            </div>
        </Show>
    }
}
