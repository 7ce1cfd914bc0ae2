//! The SMTP envelope of a message, as the MTA reported it. A leaf.

use serde::Serialize;
use std::net::IpAddr;

/// SMTP envelope and connection data as the MTA reported them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Envelope {
    pub client_ip: Option<IpAddr>,
    pub client_name: Option<String>,
    pub helo: Option<String>,
    /// MAIL FROM address without angle brackets; empty for the null sender.
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    pub queue_id: Option<String>,
    /// `{auth_authen}`: the SASL login of an authenticated submission.
    pub auth_authen: Option<String>,
}
