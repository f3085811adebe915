//! A team's notification channels, as written in `[teams.<name>] channels` of weir.toml:
//! `kind:target`. Three kinds are delivered (by `weir-observe`); the others (`slack:#name`,
//! `email:addr`) name a place for people and are shown, not sent to. A delivered kind with an
//! unusable target is an error of the project, never a channel that silently sends nothing.

/// A URL, or the environment variable that holds it (`$NAME`), so that a webhook's secret
/// never has to be written in the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Url(String),
    Env(String),
}

impl Target {
    fn parse(text: &str) -> Option<Target> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix('$') {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return valid.then(|| Target::Env(name.to_string()));
        }
        (text.starts_with("http://") || text.starts_with("https://"))
            .then(|| Target::Url(text.to_string()))
    }
}

/// One channel of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `webhook:URL` (or a bare `http(s)://` URL): the alert document as JSON, POSTed.
    Webhook(Target),
    /// `slack:URL`: a Slack incoming-webhook payload (`text` and `blocks`), POSTed.
    Slack(Target),
    /// `command:CMD`: run with `sh -c` in the project folder, the alert document on stdin.
    Command(String),
    /// Anything else: a place for people, not delivered by weir.
    Label(String),
}

impl Channel {
    pub fn parse(text: &str) -> Channel {
        let text = text.trim();
        if let Some(target) = Target::parse(text) {
            return Channel::Webhook(target);
        }
        let Some((kind, rest)) = text.split_once(':') else {
            return Channel::Label(text.to_string());
        };
        match (
            kind.trim().to_ascii_lowercase().as_str(),
            Target::parse(rest),
        ) {
            ("webhook", Some(target)) => Channel::Webhook(target),
            ("slack", Some(target)) => Channel::Slack(target),
            ("command", _) if !rest.trim().is_empty() => Channel::Command(rest.trim().to_string()),
            _ => Channel::Label(text.to_string()),
        }
    }

    pub fn is_deliverable(&self) -> bool {
        !matches!(self, Channel::Label(_))
    }
}

/// Why `text` looks like a channel weir delivers to but cannot be one (`webhook:htps://...`,
/// `command:` with nothing after it).
pub(crate) fn channel_problem(text: &str) -> Option<String> {
    if Channel::parse(text).is_deliverable() {
        return None;
    }
    let (kind, rest) = text.trim().split_once(':')?;
    let rest = rest.trim();
    match kind.trim().to_ascii_lowercase().as_str() {
        "webhook" => Some(format!(
            "`{text}`: a webhook channel needs an http:// or https:// URL, or $VARIABLE holding one"
        )),
        "slack" if !rest.starts_with('#') => Some(format!(
            "`{text}`: a slack channel is an incoming-webhook URL (or $VARIABLE holding one) to deliver to, or #name to show"
        )),
        "command" => Some(format!(
            "`{text}`: a command channel needs a command to run"
        )),
        _ => None,
    }
}
