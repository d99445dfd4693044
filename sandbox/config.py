"""The sandbox's fixed credentials, and the environment that points every channel at it.

The provider apps are built with these values (``sandbox.server``), and
``channel_environment`` hands the same ones to broadcaster as ``BROADCASTER_*`` variables,
so the two always agree. None of them is a secret: they open nothing but the sandbox.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SMTP_FROM = "status@example.com"

TWILIO_ACCOUNT_SID = "AC" + "5a" * 16
TWILIO_AUTH_TOKEN = "sandbox-twilio-auth-token"
TWILIO_FROM = "+15005550006"  # Twilio's own test number for a valid sender

MASTODON_TOKEN = "sandbox-mastodon-token"

BLUESKY_HANDLE = "status.example.com"
BLUESKY_APP_PASSWORD = "sand-box0-app0-pass"

X_TOKEN = "sandbox-x-token"

ZENDESK_EMAIL = "agent@example.com"
ZENDESK_API_TOKEN = "sandbox-zendesk-token"
ZENDESK_SECTION_ID = 360001
ZENDESK_PERMISSION_GROUP_ID = 1501

FRESHDESK_API_KEY = "sandbox-freshdesk-key"
FRESHDESK_FOLDER_ID = 73000012

WEBHOOK_DEMO_PATH = "/webhook/demo"
"""Where the demo's webhook subscriber points, under the sandbox's base URL."""

SLACK_BOT_TOKEN = "xoxb-sandbox-bot-token"
SLACK_CHANNEL = "C0STATUS"  # the bot's channel, "#status"
DISCORD_FORUM_WEBHOOK = "/api/webhooks/1300000000000000001/sandbox-forum-token"
DISCORD_FORUM_ID = "1300000000000000001"
# Where the demo's chat subscribers point, under the sandbox's base URL (broadcaster.demo spells them too).
SLACK_DEMO_PATH = "/slack/services/T0SANDBOX/B0DEMO/sandbox-demo-secret"
TEAMS_DEMO_PATH = "/teams/workflows/demo/triggers/manual/paths/invoke?api-version=2016-06-01&sig=sandbox"
DISCORD_DEMO_PATH = "/discord/api/webhooks/1300000000000000002/sandbox-demo-token"
GOOGLE_CHAT_DEMO_PATH = "/google-chat/v1/spaces/DEMO/messages?key=sandbox-key&token=sandbox-token"

# Each HTTP provider's path prefix on the sandbox server.
PREFIXES = {
    "twilio": "/twilio",
    "mastodon": "/mastodon",
    "bluesky": "/bluesky",
    "x": "/x",
    "zendesk": "/zendesk",
    "freshdesk": "/freshdesk",
    "webhook": "/webhook",
    "slack": "/slack",
    "teams": "/teams",
    "discord": "/discord",
    "google_chat": "/google-chat",
}


def channel_environment(base_url: str, smtp_port: int) -> dict[str, str]:
    """The ``BROADCASTER_*`` variables that configure every channel at the sandbox on ``base_url``
    (``http://127.0.0.1:8025``) with its SMTP catcher on ``smtp_port`` (same host)."""
    base_url = base_url.rstrip("/")
    smtp_host = urlsplit(base_url).hostname or "127.0.0.1"
    at = {name: base_url + prefix for name, prefix in PREFIXES.items()}
    return {
        "BROADCASTER_SANDBOX_URL": base_url,
        "BROADCASTER_SMTP_HOST": smtp_host,
        "BROADCASTER_SMTP_PORT": str(smtp_port),
        "BROADCASTER_SMTP_STARTTLS": "false",
        "BROADCASTER_EMAIL_FROM": SMTP_FROM,
        "BROADCASTER_TWILIO_BASE_URL": at["twilio"],
        "BROADCASTER_TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT_SID,
        "BROADCASTER_TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
        "BROADCASTER_TWILIO_FROM": TWILIO_FROM,
        "BROADCASTER_MASTODON_BASE_URL": at["mastodon"],
        "BROADCASTER_MASTODON_ACCESS_TOKEN": MASTODON_TOKEN,
        "BROADCASTER_BLUESKY_BASE_URL": at["bluesky"],
        "BROADCASTER_BLUESKY_HANDLE": BLUESKY_HANDLE,
        "BROADCASTER_BLUESKY_APP_PASSWORD": BLUESKY_APP_PASSWORD,
        "BROADCASTER_X_BASE_URL": at["x"],
        "BROADCASTER_X_ACCESS_TOKEN": X_TOKEN,
        "BROADCASTER_ZENDESK_BASE_URL": at["zendesk"],
        "BROADCASTER_ZENDESK_EMAIL": ZENDESK_EMAIL,
        "BROADCASTER_ZENDESK_API_TOKEN": ZENDESK_API_TOKEN,
        "BROADCASTER_ZENDESK_SECTION_ID": str(ZENDESK_SECTION_ID),
        "BROADCASTER_ZENDESK_PERMISSION_GROUP_ID": str(ZENDESK_PERMISSION_GROUP_ID),
        "BROADCASTER_FRESHDESK_BASE_URL": at["freshdesk"],
        "BROADCASTER_FRESHDESK_API_KEY": FRESHDESK_API_KEY,
        "BROADCASTER_FRESHDESK_FOLDER_ID": str(FRESHDESK_FOLDER_ID),
        "BROADCASTER_SLACK_BASE_URL": at["slack"] + "/api",
        "BROADCASTER_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
        "BROADCASTER_SLACK_CHANNEL": SLACK_CHANNEL,
        "BROADCASTER_DISCORD_FORUM_WEBHOOK_URL": at["discord"] + DISCORD_FORUM_WEBHOOK,
        # The demo's webhook and chat subscribers are the sandbox itself, on loopback.
        "BROADCASTER_WEBHOOK_ALLOW_PRIVATE": "true",
    }
