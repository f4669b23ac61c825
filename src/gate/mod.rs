//! The gate's decision: what a request proves (its credentials and the
//! second-factor cookie), who the app says is logged in (identity and the
//! answer rules), what that makes the request (standing), and what to do
//! with it (decision). Nothing here writes a response.

pub mod answer;
pub mod credentials;
pub mod decision;
pub mod factor;
pub mod identity;
pub mod standing;
