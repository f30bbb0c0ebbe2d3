"""The reporting loop (reporter.md §5): report at start, then every period, never give up.

Everything with side effects is injected (waiter, session, token source, random
source, clock), so tests drive the real loop against a local HTTP server.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

import requests

from . import schedule
from .auth import TokenError, TokenSource, token_source
from .config import ConfigError, Settings
from .identity import node_identity
from .send import Outcome, new_session, send_report
from .watch import FileWatcher, Waiter

log = logging.getLogger(__name__)

Reloader = Callable[[], Tuple[Settings, List[str]]]
WaiterFactory = Callable[[Settings], Waiter]


def watcher_for(settings: Settings) -> Waiter:
    return FileWatcher(settings.watched_files(), settings.watch_mode, settings.poll_interval)


class Agent:
    """Reports `bss_token` for `xname` until stopped; reacts to config, token and trigger files."""

    def __init__(self, settings: Settings, params: Dict[str, str], xname: str, bss_token: str, period: float, *,
                 waiter_factory: WaiterFactory = watcher_for, reload: Optional[Reloader] = None,
                 tokens: Optional[TokenSource] = None, session: Optional[requests.Session] = None,
                 rng: Optional[random.Random] = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.params = params
        self.xname = xname
        self.bss_token = bss_token
        self.period = period
        self.waiter_factory = waiter_factory
        self.reload = reload
        self.tokens = tokens or token_source(settings.token_file, settings.token_command, settings.spire_agent_path)
        self.session = session or new_session()
        self.rng = rng or random.Random()
        self.clock = clock
        self.waiter = waiter_factory(settings)
        self._token_error_logged_at: Optional[float] = None

    # --- one report, with back-off ------------------------------------------------------------

    def report_until_success(self, max_attempts: Optional[int] = None) -> bool:
        """§5: attempts with waits 0, 2, 4, ... 30 s; `max_attempts` bounds it for `--once`."""
        attempt = 0
        while True:
            attempt += 1
            delay = schedule.backoff_delay(attempt)
            if delay:
                log.info("Waiting %g seconds before attempt %d.", delay, attempt)
                self.wait(delay)
            if self.attempt(attempt, bounded=max_attempts is not None):
                return True
            if max_attempts is not None and attempt >= max_attempts:
                log.error("Giving up after %d attempts (--once).", attempt)
                return False

    def attempt(self, number: int, bounded: bool = False) -> bool:
        """One attempt; an unexpected local error is logged and counts as a failure (§6)."""
        try:
            return self._attempt(number, bounded)
        except Exception:  # the agent must never crash-loop; the cause is logged
            log.error("Attempt %d failed with an unexpected error.", number, exc_info=True)
            return False

    def _attempt(self, number: int, bounded: bool) -> bool:
        log.info("Attempt %d of contacting BOS...", number)
        bearer = self.obtain_token(bounded)
        if bearer is None:
            return False
        outcome = send_report(self.session, self.settings.endpoint, self.xname, self.bss_token, bearer,
                              self.settings.ca_bundle)
        return self._record(outcome)

    def _record(self, outcome: Outcome) -> bool:
        log.log(outcome.level, outcome.message)
        if outcome.refresh_token:
            self.tokens.invalidate()  # §4: after 401/403 the next attempt gets a fresh token
        return outcome.ok

    def obtain_token(self, bounded: bool = False) -> Optional[str]:
        """§4: retry every 2 s until a token comes, logging at most once a minute.

        Bounded (`--once`): a failure ends the attempt instead.
        """
        while True:
            try:
                token = self.tokens.get()
            except TokenError as exc:
                self._log_token_error(exc)
                if bounded:
                    return None
                self.wait(schedule.TOKEN_RETRY_SECONDS)
                continue
            self._token_error_logged_at = None
            return token

    def _log_token_error(self, exc: TokenError) -> None:
        now = self.clock()
        last = self._token_error_logged_at
        if last is None or now - last >= schedule.TOKEN_ERROR_LOG_SECONDS:
            log.error("Cannot obtain a token from the %s: %s", self.tokens.describe(), exc)
            self._token_error_logged_at = now

    # --- the periodic loop --------------------------------------------------------------------

    def run(self, max_reports: Optional[int] = None) -> None:
        """Report now, then after a random first wait, then every period (`max_reports` for tests)."""
        log.info("Now periodically reporting every ~%d seconds.", round(self.period))
        self.consume_trigger()  # a trigger left from before start-up is served by the start-up report
        reports = 0
        while True:
            self.report_until_success()
            reports += 1
            if max_reports is not None and reports >= max_reports:
                return
            wait = schedule.first_wait(self.period, self.rng) if reports == 1 else self.period
            log.info("Next report in %d seconds.", round(wait))
            self.wait_for_period(wait)

    def wait_for_period(self, seconds: float) -> None:
        """Sleep until the next report; a trigger or a changed config cuts it short."""
        deadline = self.clock() + seconds
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            if self.handle(self.waiter.wait(remaining)) & {"trigger", "config"}:
                return

    def wait(self, seconds: float) -> None:
        """Back-off or token wait; any effective change (trigger, token, config) ends it early."""
        deadline = self.clock() + seconds
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0 or self.handle(self.waiter.wait(remaining)):
                return

    # --- watched files ------------------------------------------------------------------------

    def handle(self, changed: Set[str]) -> Set[str]:
        """Act on changed files; return the changes that matter (a trigger that was pulled, ...)."""
        effective = set()
        if "config" in changed and self.reload_settings():
            effective.add("config")
        if "token" in changed:
            log.info("The token file changed; it will be read again.")
            self.tokens.invalidate()
            effective.add("token")
        if "trigger" in changed and self.consume_trigger():
            log.info("Trigger file %s found: reporting now.", self.settings.trigger_file)
            effective.add("trigger")
        return effective

    def consume_trigger(self) -> bool:
        """Remove the trigger file if present; True when it was there."""
        path = self.settings.trigger_file
        if not os.path.lexists(path):
            return False
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:  # read-only directory: the next touch still changes its times
            log.warning("Cannot remove trigger file %s: %s", path, exc)
        return True

    def reload_settings(self) -> bool:
        """Apply a changed config file; keep the current settings if the new ones are unusable."""
        if self.reload is None:
            return False
        try:
            new, warnings = self.reload()
        except ConfigError as exc:
            log.error("Config file %s: %s; keeping the current settings.", self.settings.config_file, exc)
            return False
        for warning in warnings:
            log.warning("%s", warning)
        if new == self.settings and node_identity(self.params, new.values) == self.xname:
            return False
        self._apply(new)
        return True

    def _apply(self, new: Settings) -> None:
        old = self.settings
        xname = node_identity(self.params, new.values)
        if xname is None:
            log.error("The new settings give no node identity; keeping '%s'.", self.xname)
        elif xname != self.xname:
            log.warning("Node identity changed from '%s' to '%s'.", self.xname, xname)
            self.xname = xname
        if (new.token_file, new.token_command, new.spire_agent_path) != \
                (old.token_file, old.token_command, old.spire_agent_path):
            self.tokens = token_source(new.token_file, new.token_command, new.spire_agent_path)
        if (new.watched_files(), new.watch_mode, new.poll_interval) != \
                (old.watched_files(), old.watch_mode, old.poll_interval):
            self.waiter.close()
            self.waiter = self.waiter_factory(new)
        self.settings = new
        log.info("Settings reloaded from %s: reporting to %s with the %s.", new.config_file, new.endpoint,
                    self.tokens.describe())

    def close(self) -> None:
        self.waiter.close()
        self.session.close()
