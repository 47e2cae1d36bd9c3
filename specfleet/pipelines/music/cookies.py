"""YouTube cookies, optional: a Netscape ``cookies.txt`` from Secrets Manager.

yt-dlp's advice for "Sign in to confirm you're not a bot" on datacenter IPs
is account cookies (``--cookies``; yt-dlp wiki "Extractors -> Exporting
YouTube cookies"), and YouTube rotates them within days: yt-dlp then warns
"The provided YouTube account cookies are no longer valid"
(``yt_dlp/extractor/youtube/_base.py``, ``_request_webpage``: LOGIN_INFO was
cleared). So:

* the file comes from a Secrets Manager secret (``SPECFLEET_MUSIC_COOKIES_SECRET_ID``)
  read at worker start, never from user-data or the image; it is written to
  a private temp file (0600) and each download gets its own copy (yt-dlp
  writes the jar back on close);
* its age (the secret version's creation date) and its last success are
  reported: at start in the log and in each done row's reason;
* when yt-dlp says they were refused, the worker says so once and carries
  on as a guest (no cookies for later jobs).

A secret that is set but cannot be read, or is not a cookies file, is a
configuration mistake: the pre-flight check stops the worker.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ...aws import client
from ...runtime.preflight import ConfigError
from ...settings import Settings
from .settings import MusicSettings

log = logging.getLogger("specfleet.music.cookies")

#: What yt-dlp warns when YouTube rotated (refused) the account cookies.
REFUSED_TEXT = "cookies are no longer valid"


def check_cookies_text(text: str) -> int:
    """Number of cookies in a Netscape cookies.txt (7 tab-separated fields a
    line); raises ``ValueError`` when it is not one."""
    n = 0
    for line in text.splitlines():
        if not line.strip() or (line.startswith("#") and not line.startswith("#HttpOnly_")):
            continue
        if len(line.split("\t")) != 7:
            raise ValueError("not a Netscape cookies.txt (each cookie line has 7 tab-separated fields)")
        n += 1
    if n == 0:
        raise ValueError("the cookies file holds no cookie")
    return n


@dataclass
class Cookies:
    secret_id: str
    path: Path
    #: When the secret's version was made (the cookies' export).
    created: dt.datetime
    count: int
    last_success: dt.datetime | None = None
    refused: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def copy_into(self, workdir: Path) -> str | None:
        """A private copy for one download (None once refused: guest)."""
        with self._lock:
            if self.refused:
                return None
        target = workdir / "cookies.txt"
        shutil.copyfile(self.path, target)
        os.chmod(target, 0o600)
        return str(target)

    def succeeded(self) -> None:
        with self._lock:
            if not self.refused:
                self.last_success = dt.datetime.now(dt.UTC)

    def refuse(self, message: str) -> bool:
        """Record YouTube's refusal; True the first time (say it once)."""
        with self._lock:
            if self.refused:
                return False
            self.refused = True
        log.warning("YouTube refused the cookies of secret %s (%s): carrying on as a guest", self.secret_id,
                    message[:200])
        return True

    def describe(self, now: dt.datetime | None = None) -> str:
        now = now or dt.datetime.now(dt.UTC)
        age_d = (now - self.created).total_seconds() / 86400
        if self.refused:
            return f"cookies refused by YouTube (secret {self.secret_id}, {age_d:.1f} days old): guest"
        last = self.last_success.strftime("%Y-%m-%d %H:%M:%S UTC") if self.last_success else "none yet"
        return f"cookies {age_d:.1f} days old, last success {last}"

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def load_cookies(settings: Settings, config: MusicSettings) -> Cookies | None:
    """The cookies of ``config.cookies_secret_id`` (None when not set).
    Raises ``ConfigError`` when the secret cannot be read or is not a cookies file."""
    if not config.cookies_secret_id:
        return None
    try:
        answer = client("secretsmanager", settings).get_secret_value(SecretId=config.cookies_secret_id)
    except Exception as err:  # noqa: BLE001 - any failure to read a configured secret is a setup mistake
        code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
        raise ConfigError(f"cannot read the cookies secret {config.cookies_secret_id!r} ({code})",
                          "check SPECFLEET_MUSIC_COOKIES_SECRET_ID and secretsmanager:GetSecretValue") from None
    text = answer.get("SecretString") or ""
    try:
        count = check_cookies_text(text)
    except ValueError as err:
        raise ConfigError(f"the cookies secret {config.cookies_secret_id!r} is unusable: {err}",
                          "store a cookies.txt exported as yt-dlp's wiki describes") from None
    created = answer.get("CreatedDate") or dt.datetime.now(dt.UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    fd, name = tempfile.mkstemp(prefix="specfleet-cookies-", suffix=".txt", dir=config.tmp_dir or None)
    with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: 0600, this user only
        f.write(text)
    cookies = Cookies(config.cookies_secret_id, Path(name), created, count)
    log.info("YouTube cookies from secret %s: %d cookies, %s", cookies.secret_id, count, cookies.describe())
    return cookies


def preflight_cookies(settings: Settings, config: MusicSettings) -> None:
    """Pre-flight: a configured cookies secret can be read and is a cookies file."""
    cookies = load_cookies(settings, config)
    if cookies is not None:
        cookies.close()
