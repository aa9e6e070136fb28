"""Configuration from the environment (and a .env file): the names are part of the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.limits import (
    CHECKPOINTS,
    IMPORT_BYTES,
    INPUTS,
    MULTILINE_CHARS,
    PIPELINE_BYTES,
    TEXT_CHARS,
    Limits,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    base_pipelines_path: Path = Path("./pipelines")
    database_url: str | None = None  # default: SQLite file under base_pipelines_path

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"

    discord_token: str | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None  # default: the one Discord's REST API names
    discord_guild_ids: str | None = None  # comma-separated, for instant command sync

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    default_model: str = "gpt-4o"
    default_max_tokens: int = 8000
    default_temperature: float = 0.7

    pipebot_http_port: int = 3000
    pipebot_max_upload_bytes: int = 10 * 1024 * 1024
    pipebot_worker_stale_seconds: float = 30.0  # a claim without heartbeat this long is taken over
    # `pipebot serve`: the engine (inbox handling, outbox, worker) in a process of its own, so
    # answering the platforms never waits for engine work (false: one process for everything).
    pipebot_engine_process: bool = True
    pipebot_engine_nice: int = 10  # the engine process's niceness over the front's
    # The front as a real-time thread (SCHED_FIFO, lowest priority) when the system allows it
    # (CAP_SYS_NICE, or RLIMIT_RTPRIO >= 1: systemd's LimitRTPRIO=1): see bot.scheduling.realtime.
    pipebot_front_realtime: bool = False
    pipebot_inbox_hold_seconds: float = 0.0  # test hook: inbox rows wait this long before handling
    # What this replica runs (comma-separated): slack, discord, outbox, worker, schedule. Discord's
    # gateway and the schedule are held by one replica at a time whatever this says.
    pipebot_services: str = "slack,discord,outbox,worker,schedule"
    pipebot_ready_max_outbox_lag: float = 120.0  # seconds; /readyz fails beyond it
    pipebot_script_sandbox: Literal["bwrap", "none"] = "bwrap"  # none: scripts run as the bot's user
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, with run/execution ids

    # Who may do what (engine.roles): comma-separated principals, e.g. "slack:U012ABC,discord:role:42".
    # Unset: nobody is an admin in chat, but in `pipebot console` the local user is.
    pipebot_admins: str | None = None

    # Size limits (engine.limits); text limits are also overridable per input with max_length.
    pipebot_max_text_chars: int = TEXT_CHARS
    pipebot_max_multiline_chars: int = MULTILINE_CHARS
    pipebot_max_import_bytes: int = IMPORT_BYTES
    pipebot_max_pipeline_bytes: int = PIPELINE_BYTES
    pipebot_max_checkpoints: int = CHECKPOINTS
    pipebot_max_inputs: int = INPUTS

    @property
    def limits(self) -> Limits:
        return Limits(
            text_chars=self.pipebot_max_text_chars,
            multiline_chars=self.pipebot_max_multiline_chars,
            import_bytes=self.pipebot_max_import_bytes,
            pipeline_bytes=self.pipebot_max_pipeline_bytes,
            checkpoints=self.pipebot_max_checkpoints,
            inputs=self.pipebot_max_inputs,
        )

    @property
    def guild_ids(self) -> list[int]:
        return [int(g) for g in (self.discord_guild_ids or "").replace(" ", "").split(",") if g]

    @property
    def services(self) -> set[str]:
        return {r.strip() for r in self.pipebot_services.split(",") if r.strip()}

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def discord_enabled(self) -> bool:
        return bool(self.discord_token)
