"""The Slack adapter's settings (``MEETNOW_SLACK_*``), and what ``meetnow serve`` says about them.

Read with the rest of meetnow's settings (the environment or ``.env``); the composition root
(``meetnow``) decides from :meth:`SlackSettings.chat_enabled` whether to install the adapter. This
module imports neither slack-bolt nor slack-sdk: reading settings must stay cheap.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SLACK_LIBRARY_LOGGERS", "SlackSettings"]

SLACK_LIBRARY_LOGGERS = ("slack_bolt", "slack_sdk")
"""slack-bolt (request verification logs refused bodies at INFO) and slack-sdk (retried
``response_url`` posts at INFO; whole requests and answers at DEBUG): held at WARNING or above by
the adapter and by ``meetnow serve`` (:func:`signaling.logging_setup.restrain`)."""


class SlackSettings(BaseSettings):
    """The Slack adapter's configuration. Each field is read from ``MEETNOW_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="MEETNOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    slack_bot_token: SecretStr | None = None
    """Slack bot token (``xoxb-...``): turns the Slack adapter on."""
    slack_signing_secret: SecretStr | None = None
    """Slack signing secret: verifies every request to ``POST /slack/events``."""
    slack_app_token: SecretStr | None = None
    """Slack app-level token (``xapp-...``): use Socket Mode instead of a public URL."""
    slack_api_url: str = "https://slack.com/api/"
    """Slack Web API base (GovSlack, tests). slack_sdk joins URLs: keep the trailing slash."""

    def slack_enabled(self) -> bool:
        """Whether the Slack adapter runs: a bot token is set."""
        return self.slack_bot_token is not None

    def slack_summary(self) -> str | None:
        """The ``chat:`` part of the start-up summary for Slack; None when it is off."""
        if not self.slack_enabled():
            return None
        ways = [
            way
            for way, on in (
                ("events at /slack/events", self.slack_signing_secret is not None),
                ("Socket Mode", self.slack_app_token is not None),
            )
            if on
        ]
        return f"Slack ({', '.join(ways) or 'no way to receive commands'})"

    def slack_warnings(self) -> list[str]:
        """Slack settings that will not do what they seem to, each naming the variable to set."""
        if self.slack_bot_token is not None and not (
            self.slack_signing_secret or self.slack_app_token
        ):
            return [
                "Slack has a bot token but no way to receive commands: set "
                "MEETNOW_SLACK_SIGNING_SECRET (events over HTTPS) or MEETNOW_SLACK_APP_TOKEN "
                "(Socket Mode)"
            ]
        if self.slack_bot_token is None and (self.slack_signing_secret or self.slack_app_token):
            return ["Slack is off: set MEETNOW_SLACK_BOT_TOKEN (xoxb-...) to turn it on"]
        return []
