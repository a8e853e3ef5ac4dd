//! The connect flows, as plain routes (they redirect to providers and back,
//! and work without JavaScript):
//!
//! * `POST /connect/{rail}/start` (admin; form `client_id`, empty for "add a
//!   client from QuickBooks") → 303 to the provider's consent page (QBO,
//!   Ramp, Stripe) or Plaid's Hosted Link ([`start`]).
//! * `GET /connect/{rail}/callback` → checks the `state` (known, unused,
//!   unexpired, same user and browser session), exchanges the code, names
//!   the account, stores the grant sealed → 303 to `/connections`
//!   ([`callback`], Plaid's return in [`plaid`], the grant in [`store`]).
//! * `POST /connect/stripe/key` (admin; `client_id`, `key`): a pasted
//!   restricted key instead of OAuth; `POST /connections/{client}/{rail}/disconnect`:
//!   revoke at the provider, then forget the tokens;
//!   `POST /connections/{client}/sync` ([`manage`]).
//!
//! Every refusal is a page that says why, stores nothing, and is audited
//! (a state RowCol never issued is a security event: it has no firm). Every
//! failure is a [`ConnectError`], whose cause is logged.

mod callback;
mod error;
mod give_back;
mod guard;
mod manage;
mod page;
mod plaid;
mod start;
mod store;

pub use callback::callback;
pub use error::ConnectError;
pub use guard::redirect_uri;
pub use manage::{disconnect, stripe_key, sync_now};
pub use start::start;
