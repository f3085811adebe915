//! Where a team's notifications go: the `channels` of `[teams.<name>]` in weir.toml, each
//! `kind:target`. Three kinds are delivered; the others (`slack:#name`, `email:addr`) name a
//! place for people and are shown, not sent to.

use weir_model::Project;
pub use weir_model::{Channel, Target};

/// The URL a target names, read from the environment when it names a variable (at delivery,
/// so a secret never has to be written in the project).
pub fn resolve(target: &Target) -> Result<String, String> {
    match target {
        Target::Url(url) => Ok(url.clone()),
        Target::Env(name) => std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("the environment variable {name} is not set")),
    }
}

/// The scheme, host and port of a URL: webhook URLs carry secrets in their paths, which must
/// not reach logs or the state store.
pub(crate) fn host_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

/// How a channel is shown (timelines, the API, `--json`): its kind and host, never a URL's
/// path or query, where webhook secrets live.
pub fn channel_label(channel: &str) -> String {
    let target = |t: &Target| match t {
        Target::Url(url) => host_of(url),
        Target::Env(name) => format!("${name}"),
    };
    match Channel::parse(channel) {
        Channel::Webhook(t) => format!("webhook:{}", target(&t)),
        Channel::Slack(t) => format!("slack:{}", target(&t)),
        Channel::Command(c) => format!("command:{c}"),
        Channel::Label(l) => l,
    }
}

/// The channels of `team` that weir delivers to, as written in weir.toml.
pub fn deliverable_channels(project: &Project, team: Option<&str>) -> Vec<String> {
    let Some(team) = team else {
        return Vec::new();
    };
    project
        .team_channels(team)
        .iter()
        .filter(|c| Channel::parse(c).is_deliverable())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_by_kind() {
        let url = |u: &str| Target::Url(u.into());
        assert_eq!(
            Channel::parse("webhook:http://127.0.0.1:9/hook"),
            Channel::Webhook(url("http://127.0.0.1:9/hook"))
        );
        assert_eq!(
            Channel::parse("https://alerts.example.com/in"),
            Channel::Webhook(url("https://alerts.example.com/in"))
        );
        assert_eq!(
            Channel::parse("slack:$SALES_SLACK_WEBHOOK"),
            Channel::Slack(Target::Env("SALES_SLACK_WEBHOOK".into()))
        );
        assert_eq!(
            Channel::parse("command: scripts/page.sh --team sales"),
            Channel::Command("scripts/page.sh --team sales".into())
        );
        for label in [
            "slack:#sales-data",
            "email:sales@example.com",
            "webhook:",
            "slack:$",
        ] {
            assert!(!Channel::parse(label).is_deliverable(), "{label}");
        }
    }

    #[test]
    fn secrets_in_webhook_paths_stay_out_of_messages() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            host_of("http://user:pw@127.0.0.1:9/x"),
            "http://127.0.0.1:9/…"
        );
    }

    #[test]
    fn an_unset_variable_is_named() {
        let target = Target::Env("WEIR_TEST_SURELY_UNSET_VARIABLE".into());
        let error = resolve(&target).expect_err("unset");
        assert!(error.contains("WEIR_TEST_SURELY_UNSET_VARIABLE"), "{error}");
    }
}
